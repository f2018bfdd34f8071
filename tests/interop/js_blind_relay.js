'use strict'
// js_blind_relay.js: the real blind-relay 1.6.1 (over protomux, @hyperswarm/secret-stream on
// TCP 127.0.0.1, udx-native for the relayed streams), driven by tests/interop/test_blind_relay_js.py.
//
//   node js_blind_relay.js server
//     A blind-relay Server: prints {"event":"listening","port":TCP,"udx":UDP}, accepts each
//     TCP secret stream with id = the client's key, relays pairs on its UDX socket; prints
//     {"event":"paired"} per matched pair. Runs until killed.
//
//   node js_blind_relay.js clients TCP_PORT UDP_PORT SIZE
//     Two blind-relay Clients on two connections to a relay, one token, initiator and not;
//     once paired each UDX stream connects to the relay, writes SIZE bytes (a known pattern)
//     and ends. Prints {"event":"result","a":sha,"b":sha,"sent":sha} and exits.
//
//   node js_blind_relay.js client TCP_PORT UDP_PORT TOKEN_HEX INITIATOR SIZE
//     One Client (for a Python peer on the other side): pairs, writes SIZE bytes, ends,
//     prints {"event":"result","got":sha_of_what_it_read,"sent":sha}.

const net = require('net')
const crypto = require('crypto')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const UDX = require('udx-native')
const relay = require('blind-relay')

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}
function fail (err) {
  emit({ event: 'error', message: String((err && err.stack) || err) })
  process.exit(1)
}
setTimeout(() => fail(new Error('timeout')), 60000).unref()

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex')
const pattern = (size, seed) => {
  const buf = Buffer.alloc(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 7 + seed) & 0xff
  return buf
}

const udx = new UDX()
const mode = process.argv[2]

if (mode === 'server') {
  const socket = udx.createSocket()
  socket.bind(0, '127.0.0.1')
  // udx-native routes a packet to its stream by id on any socket: the relay's streams adopt
  // their client's address in the firewall hook (blind-relay's _onfirewall)
  const server = new relay.Server({ createStream: (opts) => udx.createStream(udxId(), opts) })
  const tcp = net.createServer((raw) => {
    const stream = new NoiseSecretStream(false, raw)
    stream.on('error', () => {})
    stream.on('open', () => {
      const session = server.accept(stream, { id: stream.remotePublicKey })
      session.on('error', () => {})
      session.on('pair', () => emit({ event: 'paired' }))
    })
  })
  tcp.listen(0, '127.0.0.1', () => {
    emit({ event: 'listening', port: tcp.address().port, udx: socket.address().port })
  })
} else if (mode === 'clients' || mode === 'client') {
  run().catch(fail)
}

let nextId = 1
function udxId () { return nextId++ }

async function pairOne (tcpPort, udpPort, socket, token, isInitiator) {
  const raw = net.connect(tcpPort, '127.0.0.1')
  const ss = new NoiseSecretStream(true, raw)
  ss.on('error', () => {})
  await new Promise((resolve) => ss.once('open', resolve))
  const client = relay.Client.from(ss, { id: ss.publicKey })
  const stream = udx.createStream(udxId())
  const remoteId = await new Promise((resolve, reject) => {
    client.pair(isInitiator, token, stream).on('error', reject).on('data', resolve)
  })
  stream.connect(socket, remoteId, udpPort, '127.0.0.1')
  return { stream, ss }
}

function exchange (stream, data) {
  return new Promise((resolve, reject) => {
    const chunks = []
    stream.on('data', (d) => chunks.push(d))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
    stream.write(data)
    stream.end()
  })
}

async function run () {
  const tcpPort = Number(process.argv[3])
  const udpPort = Number(process.argv[4])
  const socket = udx.createSocket()
  socket.bind(0, '127.0.0.1')
  if (mode === 'clients') {
    const size = Number(process.argv[5])
    const token = relay.token()
    const [a, b] = await Promise.all([
      pairOne(tcpPort, udpPort, socket, token, true),
      pairOne(tcpPort, udpPort, socket, token, false)
    ])
    const da = pattern(size, 1)
    const db = pattern(size, 2)
    const [gotA, gotB] = await Promise.all([exchange(a.stream, da), exchange(b.stream, db)])
    emit({ event: 'result', ok: sha(gotA) === sha(db) && sha(gotB) === sha(da), a: gotA.length, b: gotB.length })
    a.ss.destroy()
    b.ss.destroy()
  } else {
    const token = Buffer.from(process.argv[5], 'hex')
    const isInitiator = process.argv[6] === '1'
    const size = Number(process.argv[7])
    const one = await pairOne(tcpPort, udpPort, socket, token, isInitiator)
    const data = pattern(size, isInitiator ? 1 : 2)
    const got = await exchange(one.stream, data)
    emit({ event: 'result', got: sha(got), length: got.length, sent: sha(data) })
    one.ss.destroy()
  }
  await socket.close()
  process.exit(0)
}
