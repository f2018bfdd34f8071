'use strict'
// js_udx_loss.js: one end of a udx-native bulk transfer, run inside a network namespace by
// bench/udx_loss.py (the same lossy link the Python ends use). Stream ids: receiver 1,
// sender 2. The receiver prints "listening", then one JSON line once --mib MiB arrived
// (timed from the first byte to the last); the sender exits once the receiver ended back.
//   node js_udx_loss.js --role=recv|send --host=H --port=P --peer=H2:P2 --mib=16

const path = require('path')
const crypto = require('crypto')
const fixture = require('module').createRequire(
  path.join(__dirname, '..', 'tests', 'interop', 'package.json')
)
const UDX = fixture('udx-native')

const args = { role: 'recv', host: '127.0.0.1', port: 0, peer: '', mib: 16 }
for (const arg of process.argv.slice(2)) {
  const m = /^--([^=]+)=(.*)$/.exec(arg)
  if (!m || !(m[1] in args)) throw new Error('unknown argument: ' + arg)
  args[m[1]] = typeof args[m[1]] === 'number' ? Number(m[2]) : m[2]
}

const [peerHost, peerPort] = args.peer.split(':')
const total = args.mib * 1024 * 1024
const udx = new UDX()
const socket = udx.createSocket()
socket.bind(args.port, args.host)
const recv = args.role === 'recv'
const stream = udx.createStream(recv ? 1 : 2)
stream.connect(socket, recv ? 2 : 1, Number(peerPort), peerHost)
stream.on('error', (err) => {
  console.error(err)
  process.exit(1)
})
stream.on('close', () => socket.close())
socket.on('close', () => process.exit(0))

if (recv) {
  let received = 0
  let t0 = 0
  stream.on('data', (d) => {
    if (received === 0) t0 = performance.now()
    received += d.byteLength
    if (received >= total) {
      const seconds = (performance.now() - t0) / 1000
      const line = { impl: 'js', mib: args.mib, seconds, mb_per_s: total / 1e6 / seconds }
      process.stdout.write(JSON.stringify(line) + '\n')
      stream.end()
    }
  })
  stream.on('end', () => {})
  process.stdout.write('listening\n')
} else {
  ;(async () => {
    const chunk = crypto.randomBytes(65536)
    for (let sent = 0; sent < total; sent += chunk.byteLength) {
      if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve))
    }
    stream.end()
    stream.on('end', () => {})
    stream.resume()
  })()
}
