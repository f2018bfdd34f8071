'use strict'
// js_hyperdht_bench.js: the JS side of bench/hyperdht.py, on the same testnet shape.
//
// In one process: a --nodes testnet shaped like hyperdht/testnet.js (the first node
// bootstraps the rest; every socket on a kernel-picked port of 127.0.0.1) and one ephemeral
// client node. The client then times, as bench/hyperdht.py does for Python:
//   announce_ms  announce a fresh topic until every commit was answered (--iterations)
//   lookup_ms    look up an announced topic until the walk ended (--iterations)
//   lookups/s    --rate-count lookups of that topic, --rate-concurrency in flight
// and reports memory: the RSS before any node and after the testnet and client were up,
// divided over the nodes. Prints one JSON line. The JS packages come from
// tests/interop/node_modules (npm ci there).
//
// Usage: node js_hyperdht_bench.js [--nodes=10] [--iterations=30] [--warmup=3]
//                                  [--rate-count=200] [--rate-concurrency=10]

const path = require('path')
const crypto = require('crypto')
const fixture = require('module').createRequire(
  path.join(__dirname, '..', 'tests', 'interop', 'package.json')
)
const DHT = fixture('hyperdht')
const HOST = '127.0.0.1'

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, Number(v)]
  })
)
const NODES = args.nodes || 10
const ITERATIONS = args.iterations || 30
const WARMUP = args.warmup === undefined ? 3 : args.warmup
const RATE_COUNT = args['rate-count'] || 200
const RATE_CONCURRENCY = args['rate-concurrency'] || 10

const now = () => Number(process.hrtime.bigint()) / 1e6
const rssMib = () => Math.round((process.memoryUsage().rss / 1048576) * 10) / 10

function summary(values) {
  const data = values.slice().sort((a, b) => a - b)
  const q = (p) => {
    const pos = (data.length - 1) * p
    const lo = Math.floor(pos)
    const hi = Math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
  }
  const r = (x) => Math.round(x * 100) / 100
  return {
    n: data.length,
    median: r(q(0.5)),
    p90: r(q(0.9)),
    min: r(data[0]),
    max: r(data[data.length - 1]),
    mean: r(data.reduce((a, b) => a + b, 0) / data.length)
  }
}

async function lookup(dht, topic) {
  let found = 0
  for await (const reply of dht.lookup(topic)) found += reply.peers.length
  return found
}

async function main() {
  global.gc && global.gc()
  const rss0 = rssMib()
  const nodes = []
  let bootstrap = []
  for (let i = 0; i < NODES; i++) {
    const node = new DHT({ ephemeral: false, firewalled: false, bootstrap, port: [0, 0], host: HOST })
    await node.fullyBootstrapped()
    if (bootstrap.length === 0) bootstrap = [{ host: HOST, port: node.address().port }]
    nodes.push(node)
  }
  const client = new DHT({ ephemeral: true, bootstrap, port: [0, 0], host: HOST })
  await client.fullyBootstrapped()
  global.gc && global.gc()
  const rss1 = rssMib()

  const keyPair = DHT.keyPair()
  const announceMs = []
  const lookupMs = []
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const topic = crypto.randomBytes(32)
    const t0 = now()
    await client.announce(topic, keyPair, []).finished()
    const t1 = now()
    const found = await lookup(client, topic)
    const t2 = now()
    if (found === 0) throw new Error('lookup found nothing')
    if (i >= WARMUP) {
      announceMs.push(t1 - t0)
      lookupMs.push(t2 - t1)
    }
  }

  const topic = crypto.randomBytes(32)
  await client.announce(topic, keyPair, []).finished()
  let next = 0
  const start = now()
  async function worker() {
    while (next < RATE_COUNT) {
      next++
      await lookup(client, topic)
    }
  }
  await Promise.all(Array.from({ length: RATE_CONCURRENCY }, worker))
  const elapsed = now() - start
  const rss2 = rssMib()

  process.stdout.write(
    JSON.stringify({
      bench: 'hyperdht',
      impl: 'js',
      nodes: NODES,
      storing_nodes: nodes.filter((n) => n.id !== null).length,
      announce_ms: summary(announceMs),
      lookup_ms: summary(lookupMs),
      lookups_per_s: Math.round((RATE_COUNT / elapsed) * 1000 * 10) / 10,
      rate: { count: RATE_COUNT, concurrency: RATE_CONCURRENCY, elapsed_ms: Math.round(elapsed) },
      rss_mib: { before: rss0, network_up: rss1, after: rss2 },
      rss_per_node_mib: Math.round(((rss1 - rss0) / (NODES + 1)) * 100) / 100,
      versions: { node: process.version, hyperdht: fixture('hyperdht/package.json').version }
    }) + '\n'
  )
  await client.destroy()
  for (let i = nodes.length - 1; i >= 0; i--) await nodes[i].destroy()
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(String(err && err.stack) + '\n')
    process.exit(1)
  }
)
