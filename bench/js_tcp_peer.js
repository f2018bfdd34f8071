'use strict'
// js_tcp_peer.js: the throughput benchmark's protocol (the JS anchor's proto.js) spoken by
// the real @hyperswarm/secret-stream over plain TCP on 127.0.0.1, with no DHT and no UDX.
//
// It serves two purposes:
//   * a JS end for mixed runs against bench/throughput.py (--role=server or --role=client);
//   * a JS-only baseline on the same transport as p2pswarm (--role=bench, --mode=single|split),
//     printing one JSON line with the anchor's keys.
//
// proto.js, restated: ping = a message of --ping-size bytes whose first byte is 0x01, echoed
// by the server; one in flight. bulk = the client writes 0x02 | u64be total | u32be chunk,
// the server writes `total` bytes of 0xab in `chunk`-byte writes, waiting for 'drain' when
// write() returns false; the client times from writing the request to the last byte.
//
// Roles:
//   --role=server  listen on --port (0 = any), print {"event":"listening","port","publicKey"},
//                  serve one connection, print {"event":"a_report",...} after the bulk write,
//                  exit when that connection closes.
//   --role=client  connect to --port with IK (--remote-public-key), drive the test, print
//                  {"event":"result",...}, close.
//   --role=bench   both ends: server here, client in this process (--mode=single) or in a
//                  forked child (--mode=split); prints the anchor-shaped JSON line.
// Every process exits by itself after --timeout ms.
//
// The JS packages come from tests/interop/node_modules (run `npm ci` there).

const path = require('path')
const net = require('net')
const fs = require('fs')
const { fork } = require('child_process')
const { once } = require('events')
const fixture = require('module').createRequire(
  path.join(__dirname, '..', 'tests', 'interop', 'package.json')
)
const NoiseSecretStream = fixture('@hyperswarm/secret-stream')

const HOST = '127.0.0.1'

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

const args = parseArgs({
  role: 'bench',
  mode: 'single',
  port: 0,
  'remote-public-key': '',
  mib: 256,
  'chunk-kib': 64,
  pings: 1000,
  'ping-warmup': 100,
  'ping-size': 64,
  timeout: 300000
})

const deadline = setTimeout(() => {
  emit({ event: 'error', message: 'timeout after ' + args.timeout + ' ms' })
  process.exit(1)
}, args.timeout)
deadline.unref()

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function now() {
  return Number(process.hrtime.bigint()) / 1e6
}

function quantile(arr, q) {
  const a = arr.filter((x) => Number.isFinite(x)).sort((x, y) => x - y)
  if (!a.length) return null
  const pos = (a.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return a[lo] + (a[hi] - a[lo]) * (pos - lo)
}

function summary(arr, digits) {
  const r = (x) => (x === null ? null : Number(x.toFixed(digits)))
  return {
    n: arr.length,
    median: r(quantile(arr, 0.5)),
    p90: r(quantile(arr, 0.9)),
    min: r(Math.min(...arr)),
    max: r(Math.max(...arr)),
    mean: r(arr.reduce((s, x) => s + x, 0) / arr.length)
  }
}

function cpuMs(prev) {
  const u = process.cpuUsage(prev)
  return (u.user + u.system) / 1000
}

function rssMiB() {
  return Number((process.memoryUsage().rss / 1048576).toFixed(1))
}

function versions() {
  const v = (name) => {
    try {
      return fixture(name + '/package.json').version
    } catch {
      return null
    }
  }
  return {
    node: process.version,
    '@hyperswarm/secret-stream': v('@hyperswarm/secret-stream'),
    'sodium-native': v('sodium-native'),
    transport: 'tcp'
  }
}

// ---------- server (A): echo pings, serve bulk on request ----------
function serveConnection(conn, report) {
  conn.on('error', () => {})
  conn.on('end', () => conn.end()) // the client half-closes when done; so do we
  let bulkStarted = false
  conn.on('data', async (data) => {
    if (bulkStarted) return
    if (data[0] === 0x01) {
      conn.write(data)
      return
    }
    if (data[0] === 0x02 && data.byteLength >= 13) {
      bulkStarted = true
      const total = Number(data.readBigUInt64BE(1))
      const chunkSize = data.readUInt32BE(9)
      const chunk = Buffer.alloc(chunkSize, 0xab)
      const t0 = now()
      const c0 = process.cpuUsage()
      let sent = 0
      while (sent < total) {
        const n = Math.min(chunkSize, total - sent)
        const ok = conn.write(n === chunkSize ? chunk : chunk.subarray(0, n))
        sent += n
        if (!ok) await once(conn, 'drain')
      }
      report({ a_write_ms: now() - t0, a_cpu_ms_during_write: cpuMs(c0), a_rss_mib: rssMiB() })
    }
  })
}

// ---------- client (B): pings, then bulk ----------
async function driveConnection(conn) {
  const pingSize = args['ping-size']
  conn.on('error', () => {})
  const res = {}
  const ping = Buffer.alloc(pingSize, 0x55)
  ping[0] = 0x01
  let waiter = null
  let got = 0
  let bulkTotal = 0
  let bulkMode = false
  let bulkDone = null
  let bulkRecvAt = 0
  conn.on('data', (data) => {
    got += data.byteLength
    if (bulkMode) {
      if (got >= bulkTotal) {
        bulkRecvAt = now()
        bulkDone()
      }
      return
    }
    if (got >= pingSize && waiter) {
      const w = waiter
      waiter = null
      got -= pingSize
      w()
    }
  })
  const rtts = []
  const total = args['ping-warmup'] + args.pings
  const tp0 = now()
  for (let i = 0; i < total; i++) {
    const done = new Promise((resolve) => {
      waiter = resolve
    })
    const t = process.hrtime.bigint()
    conn.write(ping)
    await done
    const us = Number(process.hrtime.bigint() - t) / 1000
    if (i >= args['ping-warmup']) rtts.push(us)
  }
  res.ping_phase_ms = now() - tp0
  res.rtt_us = summary(rtts, 1)
  res.rtt_us.p99 = Number(quantile(rtts, 0.99).toFixed(1))

  bulkTotal = args.mib * 1048576
  const ctrl = Buffer.alloc(13)
  ctrl[0] = 0x02
  ctrl.writeBigUInt64BE(BigInt(bulkTotal), 1)
  ctrl.writeUInt32BE(args['chunk-kib'] * 1024, 9)
  got = 0
  bulkMode = true
  const bulkPromise = new Promise((resolve) => {
    bulkDone = resolve
  })
  const c0 = process.cpuUsage()
  const t0 = now()
  conn.write(ctrl)
  await bulkPromise
  const ms = bulkRecvAt - t0
  res.bulk_bytes = bulkTotal
  res.bulk_ms = ms
  res.mb_per_s = bulkTotal / 1e6 / (ms / 1000)
  res.mib_per_s = bulkTotal / 1048576 / (ms / 1000)
  res.b_cpu_ms_during_bulk = cpuMs(c0)
  res.b_rss_mib = rssMiB()
  return res
}

// The server side: one connection, IK or XX as the client chooses is not detectable by a
// standalone JS responder, so the server always answers IK (the benchmark dials with IK).
function startServer(onReport) {
  const keyPair = NoiseSecretStream.keyPair()
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    server.close()
    socket.setNoDelay(true)
    const conn = new NoiseSecretStream(false, socket, { keyPair, pattern: 'IK' })
    conn.on('close', () => onReport(null, true))
    serveConnection(conn, (r) => onReport(r, false))
  })
  return new Promise((resolve, reject) => {
    server.on('error', reject)
    server.listen(args.port, HOST, () =>
      resolve({ port: server.address().port, publicKey: keyPair.publicKey })
    )
  })
}

async function connectClient(port, remotePublicKey) {
  const t0 = now()
  const socket = net.connect({ host: HOST, port, allowHalfOpen: true })
  socket.setNoDelay(true)
  const conn = new NoiseSecretStream(true, socket, { pattern: 'IK', remotePublicKey })
  if (!(await conn.opened)) throw new Error('handshake failed')
  return { conn, connectMs: now() - t0 }
}

async function clientMain() {
  const { conn, connectMs } = await connectClient(
    args.port,
    Buffer.from(args['remote-public-key'], 'hex')
  )
  const res = await driveConnection(conn)
  res.b_connect_ms = connectMs
  conn.end()
  await once(conn, 'close')
  if (process.send) process.send({ type: 'result', res })
  else emit({ event: 'result', ...res })
}

async function serverMain() {
  const { port, publicKey } = await startServer((report, closed) => {
    if (report) emit({ event: 'a_report', ...report })
    if (closed) process.exit(0)
  })
  emit({ event: 'listening', port, publicKey: publicKey.toString('hex') })
}

function extTxPackets() {
  let total = 0
  try {
    for (const ifc of fs.readdirSync('/sys/class/net')) {
      if (ifc === 'lo') continue
      try {
        total += Number(fs.readFileSync(path.join('/sys/class/net', ifc, 'statistics/tx_packets'), 'utf8'))
      } catch {}
    }
  } catch {
    return null
  }
  return total
}

async function benchMain() {
  const tx0 = extTxPackets()
  let aReport = null
  let aReported
  const aDone = new Promise((resolve) => {
    aReported = resolve
  })
  const { port, publicKey } = await startServer((report) => {
    if (report) {
      aReport = report
      aReported()
    }
  })
  let bRes
  if (args.mode === 'split') {
    const child = fork(
      __filename,
      [
        '--role=client',
        '--port=' + port,
        '--remote-public-key=' + publicKey.toString('hex'),
        '--mib=' + args.mib,
        '--chunk-kib=' + args['chunk-kib'],
        '--pings=' + args.pings,
        '--ping-warmup=' + args['ping-warmup'],
        '--ping-size=' + args['ping-size'],
        '--timeout=' + args.timeout
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }
    )
    bRes = await new Promise((resolve, reject) => {
      child.on('message', (m) => m && m.type === 'result' && resolve(m.res))
      child.on('exit', (code) => reject(new Error('child exited ' + code)))
    })
  } else {
    const { conn, connectMs } = await connectClient(port, publicKey)
    bRes = await driveConnection(conn)
    bRes.b_connect_ms = connectMs
    conn.end()
  }
  await aDone
  const r2 = (x) => Number(x.toFixed(2))
  emit({
    bench: 'throughput',
    params: {
      mode: args.mode,
      mib: args.mib,
      chunk_kib: args['chunk-kib'],
      pings: args.pings,
      ping_warmup: args['ping-warmup'],
      ping_size: args['ping-size'],
      transport: 'tcp',
      implementation: 'js-secret-stream'
    },
    mb_per_s: r2(bRes.mb_per_s),
    mib_per_s: r2(bRes.mib_per_s),
    bulk_ms: r2(bRes.bulk_ms),
    rtt_us: bRes.rtt_us,
    ping_phase_ms: r2(bRes.ping_phase_ms),
    a_write_ms: r2(aReport.a_write_ms),
    a_cpu_ms_during_write: r2(aReport.a_cpu_ms_during_write),
    b_cpu_ms_during_bulk: r2(bRes.b_cpu_ms_during_bulk),
    b_connect_ms: r2(bRes.b_connect_ms),
    rss_mib: args.mode === 'split' ? { a_process: rssMiB(), b_process: bRes.b_rss_mib } : { process: rssMiB() },
    ext_tx_packets_delta: tx0 === null ? null : extTxPackets() - tx0,
    versions: versions()
  })
  process.exit(0)
}

const main = { server: serverMain, client: clientMain, bench: benchMain }[args.role]
if (!main) throw new Error('unknown role: ' + args.role)
main().catch((err) => {
  emit({ event: 'error', message: String((err && err.stack) || err) })
  process.exit(1)
})
