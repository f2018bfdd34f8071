'use strict'
// js_protomux_peer.js: the real protomux over the real @hyperswarm/secret-stream over TCP on
// 127.0.0.1 (responder), driven by tests/interop/test_protomux_js.py.
//
// stdout, JSON lines: {"event":"listening","port":N}, then {"event":"result","log":[...]}.
//
// What it does once the stream is open:
//  - pairs protocol "echo" (any id): creates the channel with a string handshake
//    ("js:" + the id in hex), message 0 = uint (answers n + 1), message 1 = string (logged;
//    "close" makes JS close the channel);
//  - opens "from-js" (id 01, handshake string "js-hs", message 0 = uint) and, once it is
//    open, sends 10, 20, 30 corked (one batch);
//  - opens "js-only", which the Python side does not pair (it must be rejected);
//  - when "from-js" is closed by the other side it reports, then ends the stream.
// With --bench it only echoes: "echo" message 1 (raw) answered with the same bytes.

const net = require('net')
const NoiseSecretStream = require('@hyperswarm/secret-stream')
const Protomux = require('protomux')
const c = require('compact-encoding')

const bench = process.argv.includes('--bench')
const timeoutMs = 60000
const log = []

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function fail (err) {
  emit({ event: 'error', message: String((err && err.stack) || err) })
  process.exit(1)
}

const deadline = setTimeout(() => fail(new Error('timeout')), timeoutMs)

function onStream (socket) {
  const stream = new NoiseSecretStream(false, socket)
  stream.on('error', (err) => log.push(['stream-error', String(err.message)]))
  const mux = Protomux.from(stream)

  if (bench) {
    mux.pair({ protocol: 'echo' }, (id) => {
      const ch = mux.createChannel({ protocol: 'echo', id })
      ch.addMessage({ encoding: c.raw })
      ch.addMessage({ encoding: c.raw, onmessage: (m) => ch.messages[1].send(m) })
      ch.open()
    })
    stream.on('close', () => {
      clearTimeout(deadline)
      emit({ event: 'result', log })
      process.exit(0)
    })
    return
  }

  mux.pair({ protocol: 'echo' }, (id) => {
    const ch = mux.createChannel({
      protocol: 'echo',
      id,
      handshake: c.string,
      onopen: (hs) => log.push(['echo-open', id ? id.toString('hex') : null, hs]),
      onclose: (remote) => log.push(['echo-close', id ? id.toString('hex') : null, remote])
    })
    ch.addMessage({
      encoding: c.uint,
      onmessage: (n) => {
        log.push(['echo-uint', n])
        ch.messages[0].send(n + 1)
      }
    })
    ch.addMessage({
      encoding: c.string,
      onmessage: (s) => {
        log.push(['echo-string', s])
        if (s === 'close') ch.close()
      }
    })
    ch.open('js:' + (id ? id.toString('hex') : ''))
  })

  const fromJs = mux.createChannel({
    protocol: 'from-js',
    id: Buffer.from('01', 'hex'),
    handshake: c.string,
    onopen: (hs) => {
      log.push(['from-js-open', hs])
      mux.cork()
      fromJs.messages[0].send(10)
      fromJs.messages[0].send(20)
      fromJs.messages[0].send(30)
      mux.uncork()
    },
    onclose: (remote) => {
      log.push(['from-js-close', remote])
      setImmediate(() => {
        clearTimeout(deadline)
        emit({ event: 'result', log })
        stream.end()
        setTimeout(() => process.exit(0), 50)
      })
    }
  })
  fromJs.addMessage({ encoding: c.uint, onmessage: (n) => log.push(['from-js-uint', n]) })
  fromJs.open('js-hs')

  const jsOnly = mux.createChannel({
    protocol: 'js-only',
    onopen: () => log.push(['js-only-open']),
    onclose: (remote) => log.push(['js-only-close', remote])
  })
  jsOnly.open()
}

const server = net.createServer({ allowHalfOpen: true }, onStream)
server.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }))
