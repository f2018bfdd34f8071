'use strict'
// js_peer.js: one real @hyperswarm/secret-stream peer over TCP on 127.0.0.1, driven by the
// Python interop tests.
//
// It runs one exchange and reports on stdout as JSON lines:
//   {"event":"listening","port":N}               (responder only, once listening)
//   {"event":"result", ...}                      (once, at the end; then it exits 0)
//   {"event":"error","message":"..."}            (then it exits 1)
//
// The exchange: send --send-bytes random bytes in writes of --chunk bytes, end the stream
// (secret-stream ends with a TCP half-close), and read until the other side ends. --order
// decides what comes first, so both half-close orders are exercised:
//   concurrent  send and read at the same time
//   js-first    send and end, then read everything (the other side writes after our FIN)
//   py-first    read everything first, then send and end (we write after their FIN)
// With --keep-alive-ms the stream sends keep-alives; --await-keepalives=N makes the peer wait
// until N of its own keep-alives have gone out before sending any data, so they really flow.
// --await-remote-keepalives=N waits, before ending, for N empty messages from the other side.
//
// Sockets are opened with allowHalfOpen: true: without it node drops what it still had to
// send once the other side's FIN arrives.
//
// Usage:
//   node js_peer.js --role=initiator|responder --pattern=XX|IK [--port=N] [--seed=hex64]
//                   [--remote-public-key=hex64] [--send-bytes=N] [--chunk=65536]
//                   [--order=concurrent|js-first|py-first] [--keep-alive-ms=N]
//                   [--await-keepalives=N] [--await-remote-keepalives=N] [--timeout-ms=30000]
//   node js_peer.js --keypair --seed=hex64 [--message=hex]   prints the key pair and a signature

const net = require('net')
const crypto = require('crypto')
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
  keypair: false,
  message: '',
  role: 'initiator',
  pattern: 'XX',
  port: 0,
  seed: '',
  'remote-public-key': '',
  'send-bytes': 0,
  chunk: 65536,
  order: 'concurrent',
  'keep-alive-ms': 0,
  'await-keepalives': 0,
  'await-remote-keepalives': 0,
  'timeout-ms': 30000
})

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function fail(err) {
  emit({ event: 'error', message: String((err && err.stack) || err) })
  process.exit(1)
}

// Every run is bounded: whatever happens, the process is gone after --timeout-ms.
const deadline = setTimeout(
  () => fail(new Error('timeout after ' + args['timeout-ms'] + ' ms')),
  args['timeout-ms']
)

function hex(buf) {
  return buf ? Buffer.from(buf).toString('hex') : null
}

function keyPairFromArgs() {
  return args.seed ? hypercoreCrypto.keyPair(Buffer.from(args.seed, 'hex')) : hypercoreCrypto.keyPair()
}

function printKeyPair() {
  const kp = keyPairFromArgs()
  const message = Buffer.from(args.message, 'hex')
  emit({
    event: 'result',
    publicKey: hex(kp.publicKey),
    secretKey: hex(kp.secretKey),
    signature: hex(hypercoreCrypto.sign(message, kp.secretKey)),
    streamKeyPair: hex(NoiseSecretStream.keyPair(Buffer.from(args.seed, 'hex')).publicKey)
  })
  clearTimeout(deadline)
}

// A promise that resolves when `predicate()` holds, checked whenever `poke()` is called.
function condition(predicate) {
  let resolve
  const p = new Promise((r) => {
    resolve = r
  })
  const poke = () => {
    if (predicate()) resolve()
  }
  return { promise: p, poke }
}

async function runExchange(socket) {
  const isInitiator = args.role === 'initiator'
  const opts = { keyPair: keyPairFromArgs(), pattern: args.pattern }
  if (args['remote-public-key']) opts.remotePublicKey = Buffer.from(args['remote-public-key'], 'hex')
  if (args['keep-alive-ms'] > 0) opts.keepAlive = args['keep-alive-ms']
  const stream = new NoiseSecretStream(isInitiator, socket, opts)
  stream.on('error', fail)

  // Count the keep-alives this side sends (the stream sends them through alloc(0)) and the
  // empty messages it receives (they never reach 'data' once keepAlive is set).
  let keepalivesSent = 0
  let keepalivesReceived = 0
  const sentKeepalives = condition(() => keepalivesSent >= args['await-keepalives'])
  const receivedKeepalives = condition(
    () => keepalivesReceived >= args['await-remote-keepalives']
  )
  const alloc = stream.alloc.bind(stream)
  stream.alloc = (len) => {
    if (len === 0) {
      keepalivesSent++
      sentKeepalives.poke()
    }
    return alloc(len)
  }
  stream.once('handshake', () => {
    const decrypt = stream._decrypt
    const next = decrypt.next.bind(decrypt)
    decrypt.next = (cipher, message) => {
      const out = next(cipher, message)
      if (out.byteLength === 0) {
        keepalivesReceived++
        receivedKeepalives.poke()
      }
      return out
    }
  })

  const received = crypto.createHash('sha256')
  let receivedBytes = 0
  let receivedMessages = 0
  stream.on('data', (data) => {
    received.update(data)
    receivedBytes += data.byteLength
    receivedMessages++
  })
  const ended = new Promise((resolve) => stream.once('end', resolve))
  const closed = new Promise((resolve) => stream.once('close', resolve))

  const opened = await stream.opened
  if (!opened) throw new Error('handshake failed')

  const sent = crypto.createHash('sha256')
  const payload = crypto.randomBytes(args['send-bytes'])
  sent.update(payload)

  async function send() {
    sentKeepalives.poke()
    await sentKeepalives.promise
    for (let off = 0; off < payload.byteLength; off += args.chunk) {
      const ok = stream.write(payload.subarray(off, off + args.chunk))
      if (!ok) await new Promise((resolve) => stream.once('drain', resolve))
    }
    receivedKeepalives.poke()
    await receivedKeepalives.promise
    stream.end()
  }

  if (args.order === 'js-first') {
    await send()
    await ended
  } else if (args.order === 'py-first') {
    await ended
    await send()
  } else {
    await Promise.all([send(), ended])
  }
  await closed

  emit({
    event: 'result',
    publicKey: hex(stream.publicKey),
    remotePublicKey: hex(stream.remotePublicKey),
    handshakeHash: hex(stream.handshakeHash),
    isInitiator: stream.isInitiator,
    sentBytes: payload.byteLength,
    sentSha256: sent.digest('hex'),
    receivedBytes,
    receivedMessages,
    receivedSha256: received.digest('hex'),
    keepalivesSent,
    keepalivesReceived
  })
  clearTimeout(deadline)
}

function main() {
  if (args.keypair) return printKeyPair()
  if (args.role === 'initiator') {
    const socket = net.connect({ host: HOST, port: args.port, allowHalfOpen: true })
    socket.setNoDelay(true)
    runExchange(socket).catch(fail)
    return
  }
  if (args.role !== 'responder') throw new Error('unknown role: ' + args.role)
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    server.close() // one exchange per process
    socket.setNoDelay(true)
    runExchange(socket).catch(fail)
  })
  server.on('error', fail)
  server.listen(args.port, HOST, () => emit({ event: 'listening', port: server.address().port }))
}

try {
  main()
} catch (err) {
  fail(err)
}
