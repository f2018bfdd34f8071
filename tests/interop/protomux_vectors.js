// protomux_vectors.js: the bytes the real protomux writes for a fixed script of calls, on a
// fake stream that records every write (one write = one secret-stream message), and what it
// decodes from messages given on argv. Prints one JSON object; the Python test replays the
// same script against p2pswarm.protocol.protomux and compares byte for byte.
'use strict'
const { EventEmitter } = require('events')
const Protomux = require('protomux')
const c = require('compact-encoding')

class FakeStream extends EventEmitter {
  constructor () {
    super()
    this.userData = null
    this.destroyed = false
    this.writes = []
  }

  write (buf) {
    this.writes.push(Buffer.from(buf).toString('hex'))
    return true
  }

  pause () {}
  resume () {}
  end () {}
  destroy (err) {
    this.destroyed = true
    this.error = err ? String(err.message || err) : null
  }
}

const stream = new FakeStream()
const mux = new Protomux(stream)
const log = []

// 1. open a channel with an id and a string handshake, and one without either.
const a = mux.createChannel({
  protocol: 'vectors/a',
  id: Buffer.from('0102', 'hex'),
  handshake: c.string,
  messages: [
    { encoding: c.uint, onmessage: (m) => log.push(['a-uint', m]) },
    { encoding: c.string, onmessage: (m) => log.push(['a-str', m]) }
  ],
  onopen: (hs) => log.push(['open-a', hs]),
  onclose: (remote) => log.push(['close-a', remote])
})
a.open('hi')
const b = mux.createChannel({
  protocol: 'vectors/b',
  messages: [{ encoding: c.raw, onmessage: (m) => log.push(['b-raw', m.toString('hex')]) }],
  onopen: () => log.push(['open-b']),
  onclose: (remote) => log.push(['close-b', remote])
})
b.open()
// 2. plain messages before the remote answered (JS sends them at once).
a.messages[0].send(300)
a.messages[1].send('x')
// 3. a corked batch across two channels with a control message in the middle.
mux.cork()
a.messages[0].send(1)
a.messages[0].send(2)
b.messages[0].send(Buffer.from('beef', 'hex'))
const d = mux.createChannel({ protocol: 'vectors/d' })
d.open()
a.messages[0].send(3)
mux.uncork()
// 4. close one.
d.close()

const script = stream.writes.slice()
stream.writes.length = 0

// 5. feed the remote side's messages given on argv (hex), record what JS makes of them.
for (const hex of process.argv.slice(2)) {
  stream.emit('data', Buffer.from(hex, 'hex'))
}

// Let queued ticks (fullyOpen of paired channels) run, then report.
setImmediate(() => {
  const replies = stream.writes.slice()
  let nextLocalId = null
  if (!stream.destroyed) {
    const e = mux.createChannel({ protocol: 'vectors/e' })
    e.open()
    nextLocalId = e._localId
  }
  process.stdout.write(JSON.stringify({
    script,
    replies,
    nextLocalId,
    log,
    destroyed: stream.destroyed,
    error: stream.error || null
  }) + '\n')
})
