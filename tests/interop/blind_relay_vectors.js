'use strict'
// blind_relay_vectors.js: the real blind-relay 1.6.1 message encodings, for the Python codec.
// Reads JSON lines on stdin ({"kind":"pair"|"unpair", ...}) and answers each with the hex
// encoding and the decoding of that encoding; a {"decode":kind,"hex":...} line is decoded.
const readline = require('readline')
const c = require('compact-encoding')
const { messages } = require('blind-relay')

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const req = JSON.parse(line)
  const enc = messages[req.kind]
  try {
    if (req.hex !== undefined) {
      const m = c.decode(enc, Buffer.from(req.hex, 'hex'))
      out({ ok: true, value: plain(m) })
    } else {
      const m = { isInitiator: req.isInitiator, token: Buffer.from(req.token, 'hex'), id: req.id, seq: req.seq }
      out({ ok: true, hex: c.encode(enc, m).toString('hex') })
    }
  } catch (err) {
    out({ ok: false, message: String(err) })
  }
})

function plain(m) {
  const o = { token: m.token.toString('hex') }
  if ('isInitiator' in m) Object.assign(o, { isInitiator: m.isInitiator, id: m.id, seq: m.seq })
  return o
}

function out(o) {
  process.stdout.write(JSON.stringify(o) + '\n')
}
