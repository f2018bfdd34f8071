'use strict'
// js_udx_peer.js: real udx-native streams on 127.0.0.1, driven by the Python UDX interop tests.
//
// The Python side binds first and passes its port and stream ids; this peer binds a socket,
// creates one stream per Python id (random local ids), connects each to its Python id, and
// reports on stdout as JSON lines:
//   {"event":"ready","port":N,"ids":[...]}        (once every stream is connected)
//   {"event":"result","streams":[...]}            (once, at the end; then it exits 0)
//   {"event":"error","message":"..."}             (then it exits 1)
//
// Per stream: send --send-bytes random bytes in writes of --chunk, end, and read until the
// other side ends; --order decides what comes first (concurrent | js-first | py-first).
// --echo-messages answers each UDX message with the same bytes, --messages=N waits for N.
// --destroy-after=N destroys the stream once N bytes arrived; --expect-reset waits for the
// remote's DESTROY (an ECONNRESET error) instead of an end.
// --secret=initiator|responder runs @hyperswarm/secret-stream over the UDX stream.
//
// Usage:
//   node js_udx_peer.js --remote-port=N --remote-ids=1,2 [--send-bytes=N] [--chunk=65536]
//        [--order=concurrent] [--echo-messages] [--messages=N] [--destroy-after=N]
//        [--expect-reset] [--secret=initiator|responder] [--pattern=XX|IK] [--seed=hex64]
//        [--remote-public-key=hex64] [--timeout-ms=30000]

const crypto = require('crypto')
const UDX = require('udx-native')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const hypercoreCrypto = require('hypercore-crypto')

const HOST = '127.0.0.1'

function parseArgs(defaults) {
  const out = { ...defaults }
  for (const arg of process.argv.slice(2)) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(arg)
    if (!m) throw new Error('bad argument: ' + arg)
    if (!(m[1] in defaults)) throw new Error('unknown option: --' + m[1])
    const val = m[2] === undefined ? true : m[2]
    out[m[1]] = typeof defaults[m[1]] === 'number' ? Number(val) : val
  }
  return out
}

const args = parseArgs({
  'remote-port': 0,
  'remote-ids': '',
  'send-bytes': 0,
  chunk: 65536,
  order: 'concurrent',
  'echo-messages': false,
  messages: 0,
  'destroy-after': -1,
  'expect-reset': false,
  secret: '',
  pattern: 'XX',
  seed: '',
  'remote-public-key': '',
  'timeout-ms': 30000
})

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function fail(err) {
  emit({ event: 'error', message: String((err && err.stack) || err) })
  process.exit(1)
}

const deadline = setTimeout(
  () => fail(new Error('timeout after ' + args['timeout-ms'] + ' ms')),
  args['timeout-ms']
)

function hex(buf) {
  return buf ? Buffer.from(buf).toString('hex') : null
}

async function runStream(raw) {
  let stream = raw
  const report = { id: raw.id, remoteId: raw.remoteId }
  if (args.secret) {
    const keyPair = args.seed
      ? hypercoreCrypto.keyPair(Buffer.from(args.seed, 'hex'))
      : hypercoreCrypto.keyPair()
    const opts = { keyPair, pattern: args.pattern }
    if (args['remote-public-key']) {
      opts.remotePublicKey = Buffer.from(args['remote-public-key'], 'hex')
    }
    stream = new NoiseSecretStream(args.secret === 'initiator', raw, opts)
  }

  let messages = 0
  let resolveMessages
  const gotMessages = new Promise((resolve) => {
    resolveMessages = resolve
    if (args.messages === 0) resolve()
  })
  raw.on('message', (buf) => {
    messages++
    if (args['echo-messages']) raw.trySend(buf)
    if (messages >= args.messages) resolveMessages()
  })

  const received = crypto.createHash('sha256')
  let receivedBytes = 0
  const errored = new Promise((resolve) => stream.once('error', resolve))
  const ended = new Promise((resolve) => stream.once('end', resolve))
  const closed = new Promise((resolve) => stream.once('close', resolve))
  stream.on('data', (data) => {
    received.update(data)
    receivedBytes += data.byteLength
    if (args['destroy-after'] >= 0 && receivedBytes >= args['destroy-after']) stream.destroy()
  })

  if (args.secret) {
    const opened = await stream.opened
    if (!opened) throw new Error('secret-stream handshake failed')
    report.publicKey = hex(stream.publicKey)
    report.remotePublicKey = hex(stream.remotePublicKey)
    report.handshakeHash = hex(stream.handshakeHash)
  }

  const payload = crypto.randomBytes(args['send-bytes'])
  report.sentBytes = payload.byteLength
  report.sentSha256 = crypto.createHash('sha256').update(payload).digest('hex')

  async function send() {
    for (let off = 0; off < payload.byteLength; off += args.chunk) {
      const ok = stream.write(payload.subarray(off, off + args.chunk))
      if (!ok) await new Promise((resolve) => stream.once('drain', resolve))
    }
    stream.end()
  }

  if (args['expect-reset']) {
    send().catch(() => {})
    const err = await errored
    report.error = err && err.code
    await closed
  } else if (args['destroy-after'] >= 0) {
    await closed
  } else {
    stream.on('error', fail)
    if (args.order === 'js-first') {
      await send()
      await ended
    } else if (args.order === 'py-first') {
      await ended
      await send()
    } else {
      await Promise.all([send(), ended])
    }
    await gotMessages
    await closed
  }
  report.messages = messages
  report.receivedBytes = receivedBytes
  report.receivedSha256 = received.digest('hex')
  report.mtu = raw.mtu
  report.retransmits = raw.retransmits
  return report
}

async function main() {
  const udx = new UDX()
  const socket = udx.createSocket()
  socket.bind(0, HOST)
  const remoteIds = args['remote-ids'].split(',').filter(Boolean).map(Number)
  const streams = remoteIds.map((remoteId) => {
    const stream = udx.createStream(crypto.randomBytes(4).readUInt32LE(0))
    stream.connect(socket, remoteId, args['remote-port'], HOST)
    return stream
  })
  emit({ event: 'ready', port: socket.address().port, ids: streams.map((s) => s.id) })
  const streamReports = await Promise.all(streams.map(runStream))
  await socket.close()
  emit({ event: 'result', streams: streamReports })
  clearTimeout(deadline)
}

main().catch(fail)
