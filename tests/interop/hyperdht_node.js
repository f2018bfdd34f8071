'use strict'
// hyperdht_node.js: real JS HyperDHT nodes on 127.0.0.1, driven by the Python interop tests
// and the benchmark through JSON lines on stdin/stdout.
//
// It starts --testnet=N nodes shaped like hyperdht/testnet.js (the first one bootstraps the
// others and, as in JS's own testnet, never becomes persistent), or, with --bootstrap, N nodes
// joining an existing network (e.g. a Python one). Every socket is bound to a port the kernel
// picks (port [0, 0]), never to HyperDHT's default 49737, so runs never collide. With
// --client it also starts one ephemeral node that runs the commands; without, node 0 runs
// them (the first --bootstrap node when joining). Then it prints
//   {"event":"ready","bootstrap":[{host,port}],"nodes":[{host,port,id}],"client":{host,port}}
// and answers each command line {"id":N,"op":...} with {"id":N,"ok":true,...} or
// {"id":N,"ok":false,"error":"..."}. Ops:
//   announce {topic, seed, relays?}       unannounce {topic, seed}
//   lookup {topic}  -> peers [{publicKey, relayAddresses}], replies [{host, port, peers}]
//   findPeer {publicKey} -> peer or null
//   mutablePut {seed, value, seq}  -> {publicKey, seq, signature}
//   mutableGet {publicKey, seq?}   -> {seq, value, signature} or null
//   immutablePut {value} -> {hash}    immutableGet {hash} -> {value} or null
//   tables {host, port} -> for each node, whether its routing table holds host:port
//   bench {op, topic, seed, count} -> one latency in ms per run
//   listen {seed, relayThrough?} -> {publicKey}: an echo server    memory -> {rss}   stop
//   connect {publicKey, seed, message, relayThrough?} -> {data, openMs, echoMs}: the first
//     data echoed back
//   relay {seed} -> {publicKey}: a blind-relay server    relayStats -> {matched}
// All binary values are hex. It exits by itself after --timeout-ms.

const DHT = require('hyperdht')
const BlindRelay = require('blind-relay')
let relayServer = null
const readline = require('readline')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v === undefined ? true : v]
  })
)
const HOST = '127.0.0.1'
const hex = (s) => Buffer.from(s, 'hex')
const toHex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const addr = (a) => ({ host: a.host, port: a.port })
const out = (m) => process.stdout.write(JSON.stringify(m) + '\n')
const peerJson = (p) => ({
  publicKey: toHex(p.publicKey),
  relayAddresses: p.relayAddresses.map(({ host, port }) => ({ host, port }))
})

const nodes = []
let client = null
const servers = []

async function start() {
  const size = Number(args.testnet || args.nodes || 0)
  let bootstrap = []
  if (args.bootstrap) {
    bootstrap = String(args.bootstrap)
      .split(',')
      .map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) }))
  }
  for (let i = 0; i < size; i++) {
    const node = new DHT({
      ephemeral: false,
      firewalled: false,
      bootstrap,
      port: [0, 0],
      host: HOST
    })
    await node.fullyBootstrapped()
    if (bootstrap.length === 0) bootstrap = [{ host: HOST, port: node.address().port }]
    nodes.push(node)
  }
  if (args.client) {
    client = new DHT({ ephemeral: true, bootstrap, port: [0, 0], host: HOST })
    await client.fullyBootstrapped()
  }
  out({
    event: 'ready',
    bootstrap,
    nodes: nodes.map((n) => ({ host: HOST, port: n.address().port, id: toHex(n.id) })),
    client: client ? { host: HOST, port: client.address().port } : null
  })
}

function runner() {
  return client || nodes[0]
}

const ops = {
  async announce(dht, x) {
    const relays = (x.relays || []).map(({ host, port }) => ({ host, port }))
    const q = dht.announce(hex(x.topic), DHT.keyPair(hex(x.seed)), relays)
    await q.finished()
    return { closestNodes: q.closestReplies.length }
  },
  async unannounce(dht, x) {
    await dht.unannounce(hex(x.topic), DHT.keyPair(hex(x.seed)))
    return {}
  },
  async lookup(dht, x) {
    const peers = []
    const replies = []
    for await (const reply of dht.lookup(hex(x.topic))) {
      replies.push({ host: reply.from.host, port: reply.from.port, peers: reply.peers.length })
      for (const p of reply.peers) peers.push(peerJson(p))
    }
    return { peers, replies }
  },
  async findPeer(dht, x) {
    for await (const reply of dht.findPeer(hex(x.publicKey))) {
      if (reply.peer) return { peer: peerJson(reply.peer), from: addr(reply.from) }
    }
    return { peer: null }
  },
  async mutablePut(dht, x) {
    const r = await dht.mutablePut(DHT.keyPair(hex(x.seed)), hex(x.value), { seq: x.seq || 0 })
    return { publicKey: toHex(r.publicKey), seq: r.seq, signature: toHex(r.signature) }
  },
  async mutableGet(dht, x) {
    const r = await dht.mutableGet(hex(x.publicKey), { seq: x.seq || 0 })
    if (!r) return { seq: null }
    return { seq: r.seq, value: toHex(r.value), signature: toHex(r.signature), from: addr(r.from) }
  },
  async immutablePut(dht, x) {
    const r = await dht.immutablePut(hex(x.value))
    return { hash: toHex(r.hash) }
  },
  async immutableGet(dht, x) {
    const r = await dht.immutableGet(hex(x.hash))
    return r ? { value: toHex(r.value), from: addr(r.from) } : { value: null }
  },
  async tables(dht, x) {
    return {
      has: nodes.map((n) => n.toArray().some((a) => a.host === x.host && a.port === x.port))
    }
  },
  async bench(dht, x) {
    const ms = []
    for (let i = 0; i < x.count; i++) {
      const start = process.hrtime.bigint()
      if (x.op === 'announce') {
        await dht.announce(hex(x.topic), DHT.keyPair(hex(x.seed)), []).finished()
      } else {
        for await (const _ of dht.lookup(hex(x.topic))) void _
      }
      ms.push(Number(process.hrtime.bigint() - start) / 1e6)
    }
    return { ms }
  },
  async listen(dht, x) {
    // an echo server: every message comes back
    const opts = x.relayThrough ? { relayThrough: hex(x.relayThrough) } : {}
    const server = dht.createServer(opts, (conn) => {
      conn.on('data', (d) => conn.write(d))
      conn.on('error', () => {})
    })
    await server.listen(DHT.keyPair(hex(x.seed)))
    servers.push(server)
    return { publicKey: toHex(server.publicKey) }
  },
  async connect(dht, x) {
    // connect by key, send one message, return the first data that comes back
    const start = process.hrtime.bigint()
    const opts = { keyPair: DHT.keyPair(hex(x.seed)) }
    if (x.relayThrough) opts.relayThrough = hex(x.relayThrough)
    const conn = dht.connect(hex(x.publicKey), opts)
    await new Promise((resolve, reject) => {
      conn.once('open', resolve)
      conn.once('error', reject)
    })
    const openMs = Number(process.hrtime.bigint() - start) / 1e6
    const got = new Promise((resolve, reject) => {
      conn.once('data', resolve)
      conn.once('error', reject)
    })
    conn.write(hex(x.message))
    const data = await got
    const echoMs = Number(process.hrtime.bigint() - start) / 1e6
    conn.destroy()
    return { data: toHex(data), openMs, echoMs, remotePublicKey: toHex(conn.remotePublicKey) }
  },
  async relay(dht, x) {
    // a blind relay (blind-relay 1.6.1) for other peers, as hyperdht's own tests run one; on
    // the last testnet node, which is OPEN (relays are reachable peers)
    if (nodes.length) dht = nodes[nodes.length - 1]
    relayServer = new BlindRelay.Server({ createStream: (opts) => dht.createRawStream(opts) })
    const server = dht.createServer((conn) => {
      conn.on('error', () => {})
      const session = relayServer.accept(conn, { id: conn.remotePublicKey })
      session.on('error', () => {})
    })
    await server.listen(DHT.keyPair(hex(x.seed)))
    servers.push(server)
    return { publicKey: toHex(server.publicKey) }
  },
  async relayStats() {
    return { matched: relayServer ? relayServer.stats.pairings.matched : 0 }
  },
  async memory() {
    return { rss: process.memoryUsage().rss }
  }
}

async function stop(code) {
  for (const s of servers) await s.close()
  if (client) await client.destroy()
  for (let i = nodes.length - 1; i >= 0; i--) await nodes[i].destroy()
  process.exit(code)
}

setTimeout(() => {
  out({ event: 'error', message: 'timed out' })
  stop(1)
}, Number(args['timeout-ms'] || 60000)).unref()

start().then(
  () => {
    const rl = readline.createInterface({ input: process.stdin })
    rl.on('line', (line) => {
      const x = JSON.parse(line)
      if (x.op === 'stop') return stop(0)
      ops[x.op](runner(), x).then(
        (r) => out({ id: x.id, ok: true, ...r }),
        (err) => out({ id: x.id, ok: false, error: String((err && err.message) || err) })
      )
    })
    rl.on('close', () => stop(0))
  },
  (err) => {
    out({ event: 'error', message: String(err && err.stack) })
    process.exit(1)
  }
)
