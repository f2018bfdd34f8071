'use strict'
// js_udx_bench.js: udx-native (optionally with @hyperswarm/secret-stream on top) on
// 127.0.0.1, two sockets in one process; bench/udx.py runs it next to the Python side.
// Prints one JSON line: {"impl":"js", "test":"bulk"|"rtt", "secret":bool, ...}
//   node js_udx_bench.js --test=bulk --mib=32 [--secret]
//   node js_udx_bench.js --test=rtt --pings=2000 [--secret]

const path = require('path')
const crypto = require('crypto')
const fixture = require('module').createRequire(
  path.join(__dirname, '..', 'tests', 'interop', 'package.json')
)
const UDX = fixture('udx-native')
const NoiseSecretStream = fixture('@hyperswarm/secret-stream')

function parseArgs(defaults) {
  const out = { ...defaults }
  for (const arg of process.argv.slice(2)) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(arg)
    if (!m || !(m[1] in defaults)) throw new Error('unknown argument: ' + arg)
    const val = m[2] === undefined ? true : m[2]
    out[m[1]] = typeof defaults[m[1]] === 'number' ? Number(val) : val
  }
  return out
}

const args = parseArgs({ test: 'bulk', mib: 32, pings: 2000, 'ping-size': 64, secret: false })

function cpuMs() {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

async function pair() {
  const udx = new UDX()
  const sa = udx.createSocket()
  const sb = udx.createSocket()
  sa.bind(0, '127.0.0.1')
  sb.bind(0, '127.0.0.1')
  const a = udx.createStream(1)
  const b = udx.createStream(2)
  a.connect(sa, 2, sb.address().port, '127.0.0.1')
  b.connect(sb, 1, sa.address().port, '127.0.0.1')
  if (!args.secret) return { a, b, close: () => Promise.all([sa.close(), sb.close()]) }
  const ea = new NoiseSecretStream(true, a)
  const eb = new NoiseSecretStream(false, b)
  await Promise.all([ea.opened, eb.opened])
  return { a: ea, b: eb, close: () => Promise.all([sa.close(), sb.close()]) }
}

async function bulk() {
  const { a, b, close } = await pair()
  const total = args.mib * 1024 * 1024
  const chunk = crypto.randomBytes(65536)
  let received = 0
  const done = new Promise((resolve) => {
    b.on('data', (d) => {
      received += d.byteLength
      if (received >= total) resolve()
    })
  })
  const cpu0 = cpuMs()
  const t0 = performance.now()
  for (let sent = 0; sent < total; sent += chunk.byteLength) {
    if (!a.write(chunk)) await new Promise((resolve) => a.once('drain', resolve))
  }
  await done
  const ms = performance.now() - t0
  const cpu = cpuMs() - cpu0
  a.destroy()
  b.destroy()
  await close()
  return { mib: args.mib, ms, mb_per_s: total / 1e6 / (ms / 1000), cpu_ms_per_mib: cpu / args.mib }
}

async function rtt() {
  const { a, b, close } = await pair()
  const size = args['ping-size']
  b.on('data', (d) => b.write(d))
  const ping = crypto.randomBytes(size)
  const times = []
  let pending = 0
  let resolveOne = null
  a.on('data', (d) => {
    pending += d.byteLength
    if (pending >= size) {
      pending -= size
      resolveOne()
    }
  })
  const cpu0 = cpuMs()
  for (let i = 0; i < args.pings; i++) {
    const t0 = performance.now()
    const got = new Promise((resolve) => {
      resolveOne = resolve
    })
    a.write(ping)
    await got
    times.push((performance.now() - t0) * 1000)
  }
  const cpu = cpuMs() - cpu0
  a.destroy()
  b.destroy()
  await close()
  times.sort((x, y) => x - y)
  return {
    pings: args.pings,
    median_us: times[Math.floor(times.length / 2)],
    p90_us: times[Math.floor(times.length * 0.9)],
    cpu_us_per_ping: (cpu * 1000) / args.pings
  }
}

;(args.test === 'bulk' ? bulk() : rtt())
  .then((r) => {
    process.stdout.write(
      JSON.stringify({ impl: 'js', test: args.test, secret: !!args.secret, ...r }) + '\n'
    )
    process.exit(0)
  })
  .catch((err) => {
    console.error(err)
    process.exit(1)
  })
