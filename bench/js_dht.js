'use strict'
// bench/dht.py's latency loop on the real HyperDHT, for the same testnet sizes.
//
// Per iteration, on a testnet of --nodes HyperDHT nodes (hyperdht/testnet, 127.0.0.1):
//   1. two fresh DHT nodes A and B bootstrap from the testnet     -> bootstrap_ms
//   2. A announces a fresh topic, until the query finished        -> announce_ms
//   3. B looks the topic up until the query finished              -> lookup_ms
//      and until A's record arrived                               -> lookup_first_ms
//   4. both nodes are destroyed                                   -> teardown_ms
//
//   ANCHOR=/tmp/js-anchor node bench/js_dht.js [--nodes=10] [--iterations=50] [--warmup=3]
//
// Loopback only (the anchor's makeTestnet refuses any other bootstrap). One JSON line,
// with dht.py's keys.
const path = require('path')
const anchor = process.env.ANCHOR || '/tmp/js-anchor'
const { makeTestnet, now, summary, extTxPackets, versions, parseArgs, withTimeout, HOST } =
  require(path.join(anchor, 'lib.js'))
const req = require('module').createRequire(path.join(anchor, 'package.json'))
const DHT = req('hyperdht')
const crypto = require('crypto')

const args = parseArgs({ nodes: 10, iterations: 50, warmup: 3, limit: 30000 })

async function iteration(bootstrap, samples) {
  const keyPair = DHT.keyPair()
  const t0 = now()
  const a = new DHT({ bootstrap, host: HOST, port: 0 })
  const b = new DHT({ bootstrap, host: HOST, port: 0 })
  await Promise.all([a.fullyBootstrapped(), b.fullyBootstrapped()])
  samples.bootstrap_ms.push(now() - t0)
  const topic = crypto.randomBytes(32)
  const t1 = now()
  await withTimeout(a.announce(topic, keyPair).finished(), args.limit, 'announce')
  samples.announce_ms.push(now() - t1)
  const t2 = now()
  let first = null
  await withTimeout((async () => {
    for await (const data of b.lookup(topic)) {
      for (const peer of data.peers) {
        if (first === null && peer.publicKey.equals(keyPair.publicKey)) first = now() - t2
      }
    }
  })(), args.limit, 'lookup')
  samples.lookup_ms.push(now() - t2)
  if (first === null) throw new Error('lookup did not find the announcer')
  samples.lookup_first_ms.push(first)
  const t3 = now()
  await Promise.all([a.destroy(), b.destroy()])
  samples.teardown_ms.push(now() - t3)
}

async function main() {
  const tx0 = extTxPackets()
  const start = now()
  const { testnet, bootstrap, ms: testnetMs } = await makeTestnet(args.nodes)
  const keys = ['bootstrap_ms', 'announce_ms', 'lookup_ms', 'lookup_first_ms', 'teardown_ms']
  const fresh = () => Object.fromEntries(keys.map((k) => [k, []]))
  const samples = fresh()
  try {
    for (let i = 0; i < args.warmup; i++) await iteration(bootstrap, fresh())
    for (let i = 0; i < args.iterations; i++) await iteration(bootstrap, samples)
  } finally {
    await testnet.destroy()
  }
  const out = {
    bench: 'dht',
    params: { iterations: args.iterations, warmup: args.warmup, testnet_nodes: args.nodes },
    testnet_create_ms: Number(testnetMs.toFixed(1))
  }
  for (const k of keys) out[k] = summary(samples[k])
  const tx1 = extTxPackets()
  out.errors = 0
  out.total_ms = Math.round(now() - start)
  out.ext_tx_packets_delta = tx0 === null || tx1 === null ? null : tx1 - tx0
  out.versions = versions()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().then(() => process.exit(0), (err) => {
  console.error(err)
  process.exit(1)
})
