// Runs dht-rpc's own lib/io.js on a recording socket: encodes requests and replies exactly as
// a JS node puts them on the wire, and decodes bytes given to it as a JS node would.
// Input: JSON lines on stdin; output: one JSON line per input line.
//   {op: 'request', tid, to, token, internal, command, target, value, id}  -> {hex}
//   {op: 'reply', request: hex, from, error, value, token, closer, closerNodes, id} -> {hex}
//   {op: 'decodeRequest', hex, from} -> {req fields} or {dropped: true}
//   {op: 'decodeResponse', hex, from, tid} -> {res fields} or {dropped: true}
'use strict'
const readline = require('readline')
const IO = require('dht-rpc/lib/io')
const peer = require('dht-rpc/lib/peer')

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const buf = (h) => (h === null || h === undefined ? null : Buffer.from(h, 'hex'))

function makeIO({ id, closer, secrets }) {
  const sent = []
  const socket = {
    trySend(buffer, port, host) {
      sent.push({ hex: hex(buffer), host, port })
    }
  }
  const table = {
    id: id ? buf(id) : Buffer.alloc(32),
    closest: () => (closer || []).map(([host, port]) => ({ host, port }))
  }
  const udx = { watchNetworkInterfaces: () => ({ on() {}, destroy() {} }) }
  const io = new IO(table, udx, { firewalled: false })
  io.clientSocket = io.serverSocket = socket
  io.ephemeral = !id
  if (secrets) io._secrets = [buf(secrets[0]), buf(secrets[1])]
  return { io, socket, sent }
}

function handle(msg) {
  if (msg.op === 'request') {
    const { io, sent } = makeIO(msg)
    io._tid = msg.tid
    const [host, port] = msg.to
    const req = io.createRequest(
      { id: null, host, port },
      buf(msg.token),
      !!msg.internal,
      msg.command,
      buf(msg.target),
      buf(msg.value)
    )
    req.send(true)
    clearTimeout(req._timeout)
    return { hex: sent[0].hex }
  }
  if (msg.op === 'reply') {
    const { io, socket, sent } = makeIO(msg)
    const [host, port] = msg.from
    let out = null
    io.onrequest = (req) => {
      if (msg.error) req.error(msg.error, { token: !!msg.token, closerNodes: msg.closerNodes !== false })
      else req.reply(buf(msg.value), { token: !!msg.token, closerNodes: msg.closerNodes !== false })
    }
    io.onmessage(socket, buf(msg.request), { host, port })
    out = sent.length ? { hex: sent[0].hex, token: hex(io.token({ host }, 1)) } : { dropped: true }
    return out
  }
  if (msg.op === 'decodeRequest') {
    const { io, socket, sent } = makeIO(msg)
    const [host, port] = msg.from
    let got = null
    io.onrequest = (req) => {
      got = {
        tid: req.tid,
        to: [req.to.host, req.to.port],
        id: hex(req.from.id),
        token: hex(req.token),
        internal: req.internal,
        command: req.command,
        target: hex(req.target),
        value: hex(req.value)
      }
    }
    io.onmessage(socket, buf(msg.hex), { host, port })
    if (got) return got
    return sent.length ? { replied: sent[0].hex } : { dropped: true }
  }
  if (msg.op === 'decodeResponse') {
    const { io, socket } = makeIO(msg)
    const [host, port] = msg.from
    io._tid = msg.tid
    const req = io.createRequest({ id: null, host, port }, null, true, 0, null, null)
    let got = null
    req.onresponse = (res) => {
      got = {
        tid: res.tid,
        to: [res.to.host, res.to.port],
        id: hex(res.from.id),
        token: hex(res.token),
        closerNodes: res.closerNodes ? res.closerNodes.map((n) => [n.host, n.port]) : null,
        error: res.error,
        value: hex(res.value)
      }
    }
    io.onmessage(socket, buf(msg.hex), { host, port })
    return got || { dropped: true }
  }
  if (msg.op === 'id') {
    return { hex: hex(peer.id(msg.host, msg.port)) }
  }
  if (msg.op === 'token') {
    const { io } = makeIO(msg)
    const out = { t1: hex(io.token({ host: msg.host }, 1)), t0: hex(io.token({ host: msg.host }, 0)) }
    for (let i = 0; i < 10; i++) io._drain()
    out.rotated = [hex(io._secrets[0]), hex(io._secrets[1])]
    return out
  }
  throw new Error('unknown op ' + msg.op)
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  process.stdout.write(JSON.stringify(handle(JSON.parse(line))) + '\n')
})
