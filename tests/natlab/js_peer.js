'use strict'
// js_peer.js: the lab's peer program, JS HyperDHT side (the contract is in peer.py).
//   node js_peer.js --role=server --bootstrap=H:P,H:P --seed=HEX32 [--timeout-ms=N]
//     prints {"event":"listening","publicKey":HEX,...}, echoes every connection's bytes, and
//     prints {"event":"connection","remote":{host,port}} for each one.
//   node js_peer.js --role=client --bootstrap=H:P,H:P --key=HEX32 [--timeout-ms=N]
//     connects, sends "natlab-ping", waits for the echo, prints one
//     {"event":"result","connected":true|false,"ms":N,"remote":{host,port},...} and exits.
const DHT = require('hyperdht')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v === undefined ? true : v]
  })
)
const out = (m) => process.stdout.write(JSON.stringify(m) + '\n')
const bootstrap = String(args.bootstrap)
  .split(',')
  .map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) }))
const PING = 'natlab-ping'

function natInfo(dht) {
  return { firewalled: dht.firewalled, randomized: dht.randomized, punches: dht.stats.punches }
}

function remoteOf(socket) {
  const raw = socket.rawStream
  return raw ? { host: raw.remoteHost, port: raw.remotePort } : null
}

async function server() {
  const dht = new DHT({ bootstrap })
  await dht.fullyBootstrapped()
  const keyPair = DHT.keyPair(Buffer.from(args.seed, 'hex'))
  const srv = dht.createServer((socket) => {
    out({ event: 'connection', remote: remoteOf(socket) })
    socket.on('data', (d) => socket.write(d))
    socket.on('end', () => socket.end())
    socket.on('error', () => {})
  })
  await srv.listen(keyPair)
  out({ event: 'listening', publicKey: keyPair.publicKey.toString('hex'), ...natInfo(dht) })
}

async function client() {
  const dht = new DHT({ bootstrap })
  await dht.fullyBootstrapped()
  const t0 = performance.now()
  const socket = dht.connect(Buffer.from(args.key, 'hex'))
  let got = ''
  let done = false
  const finish = (m) => {
    if (done) return
    done = true
    out({ event: 'result', ms: Math.round(performance.now() - t0), ...m, ...natInfo(dht) })
    socket.destroy()
    dht.destroy().then(() => process.exit(0), () => process.exit(0))
  }
  socket.on('open', () => socket.write(PING))
  socket.on('data', (d) => {
    got += d.toString()
    if (got === PING) finish({ connected: true, remote: remoteOf(socket) })
  })
  socket.on('error', (err) =>
    finish({ connected: false, error: err.code || err.message, stack: String(err.stack).slice(0, 600) })
  )
  socket.on('close', () => finish({ connected: false, error: 'closed' }))
}

setTimeout(() => {
  out({ event: 'result', connected: false, error: 'timeout' })
  process.exit(0)
}, Number(args['timeout-ms'] || 30000)).unref()
// The lab holds our stdin: when it goes away, so do we.
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
const role = args.role === 'server' ? server : client
role().catch((err) => {
  out({ event: 'error', message: String(err.stack) })
  process.exit(1)
})
