'use strict'
// js_dead_peer.js: dead_peer.py's measurement on the real JS Hyperswarm, for comparison.
//
// B is a Hyperswarm in a forked child process (server on a fresh topic, echoes); A (this
// process) joins as a client and, after a 16-byte echo, freezes B with SIGSTOP or kills it
// with SIGKILL (t0). detect_ms: t0 to 'close' of A's connection (null if not within
// --limit ms). Hyperswarm's defaults are used as they are (keep-alive 5000 ms).
// Loopback only: a hyperdht testnet on 127.0.0.1, every DHT bound to 127.0.0.1.
//
// Run from the anchor's directory (it needs its node_modules):
//   NODE_PATH=/tmp/js-anchor/node_modules node bench/js_dead_peer.js [--iterations=3]
//       [--signal=stop|kill] [--limit=60000]
// One JSON line on stdout, with dead_peer.py's keys.

const path = require('path')
const { fork } = require('child_process')
const anchor = process.env.ANCHOR || '/tmp/js-anchor'
const { makeTestnet, makeSwarm, randomTopic, now, summary, extTxPackets, versions, parseArgs, withTimeout } =
  require(path.join(anchor, 'lib.js'))

const args = parseArgs({ iterations: 3, signal: 'stop', limit: 60000, child: false, bootstrap: '', topic: '' })

async function child() {
  const [host, port] = args.bootstrap.split(':')
  const swarm = makeSwarm([{ host, port: Number(port) }])
  swarm.on('connection', (conn) => {
    conn.on('error', () => {})
    conn.on('data', (d) => conn.write(d))
  })
  await swarm.join(Buffer.from(args.topic, 'hex'), { server: true, client: false }).flushed()
  process.send('ready')
  setTimeout(() => process.exit(0), 300000).unref()
  setInterval(() => {}, 1000) // stay alive until killed (bounded by the timeout above)
}

async function iteration(bootstrap) {
  const topic = randomTopic()
  const b = bootstrap[0]
  const proc = fork(__filename, ['--child', '--bootstrap=' + b.host + ':' + b.port, '--topic=' + topic.toString('hex')], {
    env: { ...process.env, ANCHOR: anchor }
  })
  const a = makeSwarm(bootstrap)
  try {
    await withTimeout(new Promise((resolve) => proc.once('message', resolve)), 30000, 'child ready')
    const connected = new Promise((resolve) => a.once('connection', (c) => { c.on('error', () => {}); resolve(c) }))
    a.join(topic, { server: false, client: true })
    const conn = await withTimeout(connected, 30000, 'connection')
    await withTimeout(new Promise((resolve) => { conn.once('data', resolve); conn.write(Buffer.alloc(16, 1)) }), 10000, 'echo')
    const closed = new Promise((resolve) => conn.once('close', () => resolve(now())))
    const t0 = now()
    proc.kill(args.signal === 'stop' ? 'SIGSTOP' : 'SIGKILL')
    let at = null
    try {
      at = await withTimeout(closed, args.limit, 'close')
    } catch {}
    return at === null ? null : at - t0
  } finally {
    proc.kill('SIGKILL')
    await a.destroy()
  }
}

async function main() {
  const tx0 = extTxPackets()
  const { testnet, bootstrap } = await makeTestnet(10)
  const detect = []
  let undetected = 0
  let errors = 0
  for (let i = 0; i < args.iterations; i++) {
    try {
      const d = await iteration(bootstrap)
      if (d === null) undetected++
      else detect.push(Number(d.toFixed(3)))
    } catch (err) {
      errors++
      process.stderr.write('iteration ' + i + ' failed: ' + err.message + '\n')
    }
  }
  await testnet.destroy()
  const tx1 = extTxPackets()
  process.stdout.write(JSON.stringify({
    bench: 'dead_peer',
    params: { iterations: args.iterations, signal: args.signal, limit_ms: args.limit, keepalive: 'hyperswarm default' },
    detect_ms: summary(detect),
    undetected,
    errors,
    ext_tx_packets_delta: tx0 === null ? null : tx1 - tx0,
    versions: versions(),
    samples: { detect_ms: detect }
  }) + '\n')
}

if (args.child) child().catch((err) => { console.error(err); process.exit(1) })
else main().catch((err) => { console.error(err); process.exit(1) })
