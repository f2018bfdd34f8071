'use strict'
// js_protomux_bench.js: request/response round trips through the real protomux on the real
// @hyperswarm/secret-stream over TCP on 127.0.0.1, both ends in this one process (as
// bench/rpc.py runs ours): an "echo" channel whose message 1 (raw) is echoed back.
// Prints one JSON line per case: seq (one in flight) and concurrent (--concurrency in flight).
//   node bench/js_protomux_bench.js [--requests=5000] [--concurrency=32] [--size=64]

const path = require('path')
const net = require('net')
const fixture = require('module').createRequire(
  path.join(__dirname, '..', 'tests', 'interop', 'package.json')
)
const NoiseSecretStream = fixture('@hyperswarm/secret-stream')
const Protomux = fixture('protomux')
const c = fixture('compact-encoding')

const args = { requests: 5000, concurrency: 32, size: 64 }
for (const arg of process.argv.slice(2)) {
  const m = /^--([^=]+)=(.*)$/.exec(arg)
  if (!m || !(m[1] in args)) throw new Error('unknown argument: ' + arg)
  args[m[1]] = Number(m[2])
}

function echoChannel (mux, onreply) {
  const ch = mux.createChannel({ protocol: 'echo' })
  ch.addMessage({ encoding: c.raw })
  ch.addMessage({ encoding: c.raw, onmessage: onreply || ((m) => ch.messages[1].send(m)) })
  ch.open()
  return ch
}

async function main () {
  const server = net.createServer((socket) => {
    const stream = new NoiseSecretStream(false, socket)
    echoChannel(Protomux.from(stream))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const socket = net.connect(server.address().port, '127.0.0.1')
  const stream = new NoiseSecretStream(true, socket)
  let waiter = null
  const ch = echoChannel(Protomux.from(stream), () => {
    const w = waiter
    waiter = null
    w()
  })
  let pending = 0
  let onAll = null
  const cch = ch
  await ch.fullyOpened()
  const payload = Buffer.alloc(args.size, 1)

  // One in flight.
  const rtts = []
  for (let i = 0; i < args.requests; i++) {
    const t0 = process.hrtime.bigint()
    await new Promise((resolve) => {
      waiter = resolve
      cch.messages[1].send(payload)
    })
    rtts.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  const seqSeconds = rtts.reduce((a, b) => a + b, 0) / 1e6
  rtts.sort((a, b) => a - b)
  emit('seq', args.requests, seqSeconds, { rtt_us_median: round(rtts[rtts.length >> 1]) })

  // --concurrency in flight (replies counted; each reply sends the next request).
  let sent = 0
  let done = 0
  const t0 = process.hrtime.bigint()
  await new Promise((resolve) => {
    onAll = resolve
    const next = () => {
      done++
      if (sent < args.requests) {
        sent++
        cch.messages[1].send(payload)
      }
      if (done === args.requests) onAll()
      else waiter = next
    }
    waiter = next
    for (let i = 0; i < args.concurrency && sent < args.requests; i++) {
      sent++
      pending++
      cch.messages[1].send(payload)
    }
  })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  emit('concurrent', args.requests, seconds, { concurrency: args.concurrency })
  stream.destroy()
  server.close()
}

function round (x) {
  return Math.round(x * 100) / 100
}

function emit (kase, n, seconds, extra) {
  process.stdout.write(JSON.stringify({
    bench: 'rpc',
    impl: 'js-protomux',
    case: kase,
    n,
    per_s: Math.round(n / seconds),
    ...extra,
    node: process.version,
    protomux: fixture('protomux/package.json').version
  }) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
