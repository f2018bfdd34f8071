'use strict'
// holepunch_vectors.js: reads {secret, sealed:[hex], payloads:[...], messages:[...], hash}
// on stdin; prints what JS hyperdht makes of them and its own encodings.
const c = require('compact-encoding')
const b4a = require('b4a')
const sodium = require('sodium-universal')
const m = require('hyperdht/lib/messages')
const SecurePayload = require('hyperdht/lib/secure-payload')
const { NS } = require('hyperdht/lib/constants')

let input = ''
process.stdin.on('data', (d) => { input += d })
process.stdin.on('end', () => {
  const req = JSON.parse(input)
  const sp = new SecurePayload(b4a.from(req.secret, 'hex'))
  const fix = (p) => ({
    ...p,
    token: p.token ? b4a.from(p.token, 'hex') : null,
    remoteToken: p.remoteToken ? b4a.from(p.remoteToken, 'hex') : null
  })
  const hexify = (p) => p && {
    ...p,
    token: p.token ? b4a.toString(p.token, 'hex') : null,
    remoteToken: p.remoteToken ? b4a.toString(p.remoteToken, 'hex') : null
  }
  const secret = b4a.alloc(32)
  sodium.crypto_generichash(secret, NS.PEER_HOLEPUNCH, b4a.from(req.hash, 'hex'))
  const out = {
    opened: req.sealed.map((h) => hexify(sp.decrypt(b4a.from(h, 'hex')))),
    sealed: req.payloads.map((p) => b4a.toString(sp.encrypt(fix(p)), 'hex')),
    payloads: req.payloads.map((p) => b4a.toString(c.encode(m.holepunchPayload, fix(p)), 'hex')),
    messages: req.messages.map((x) => b4a.toString(c.encode(m.holepunch, {
      ...x, payload: b4a.from(x.payload, 'hex')
    }), 'hex')),
    secret: b4a.toString(secret, 'hex')
  }
  process.stdout.write(JSON.stringify(out))
})
