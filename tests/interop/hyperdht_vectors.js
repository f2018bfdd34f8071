'use strict'
// Encodes HyperDHT messages and signs records with the real hyperdht package, for the cases
// given on stdin (JSON lines {kind, ...}); prints one hex line per case: the bytes Python must
// produce. Keys come from seeds (hex), so signatures are deterministic (Ed25519).
const c = require('compact-encoding')
const m = require('hyperdht/lib/messages')
const Persistent = require('hyperdht/lib/persistent')
const { NS } = require('hyperdht/lib/constants')
const DHT = require('hyperdht')
const readline = require('readline')

const hex = (s) => (s === null || s === undefined ? null : Buffer.from(s, 'hex'))
const peer = (p) => p && { publicKey: hex(p.publicKey), relayAddresses: p.relayAddresses }
const announce = (a) => ({
  peer: peer(a.peer),
  refresh: hex(a.refresh),
  signature: hex(a.signature),
  bump: a.bump || 0
})

const kinds = {
  namespace: (x) => NS[x.name],
  peer: (x) => c.encode(m.peer, peer(x.peer)),
  announce: (x) => c.encode(m.announce, announce(x.announce)),
  lookupRawReply: (x) =>
    c.encode(m.lookupRawReply, { peers: x.peers.map((p) => c.encode(m.peer, peer(p))), bump: x.bump }),
  mutablePutRequest: (x) =>
    c.encode(m.mutablePutRequest, {
      publicKey: hex(x.publicKey),
      seq: x.seq,
      value: hex(x.value),
      signature: hex(x.signature)
    }),
  mutableGetResponse: (x) =>
    c.encode(m.mutableGetResponse, { seq: x.seq, value: hex(x.value), signature: hex(x.signature) }),
  signAnnounce: (x) =>
    Persistent.signAnnounce(hex(x.target), hex(x.token), hex(x.id), announce(x.announce), DHT.keyPair(hex(x.seed))),
  signUnannounce: (x) =>
    Persistent.signUnannounce(hex(x.target), hex(x.token), hex(x.id), announce(x.announce), DHT.keyPair(hex(x.seed))),
  signMutable: (x) => Persistent.signMutable(x.seq, hex(x.value), DHT.keyPair(hex(x.seed))),
  hash: (x) => DHT.hash(hex(x.data))
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const x = JSON.parse(line)
  process.stdout.write(Buffer.from(kinds[x.kind](x)).toString('hex') + '\n')
})
