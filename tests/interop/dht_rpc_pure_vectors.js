// The JS nat-sampler and kademlia-routing-table on given inputs (JSON lines on stdin, one JSON
// line out each), so the Python ports can be checked decision by decision.
//   {op: 'nat', samples: [[host, port], ...]} -> {after: [[host, port], ...]} (state after each add)
//   {op: 'table', id, k, nodes: [idHex], targets: [idHex]} -> {added: [bool], closest: [[idHex]]}
'use strict'
const readline = require('readline')
const NatSampler = require('nat-sampler')
const Table = require('kademlia-routing-table')

function handle(msg) {
  if (msg.op === 'nat') {
    const s = new NatSampler()
    return { after: msg.samples.map(([h, p]) => { s.add(h, p); return [s.host, s.port] }) }
  }
  if (msg.op === 'table') {
    const t = new Table(Buffer.from(msg.id, 'hex'), { k: msg.k })
    const added = msg.nodes.map((id) => t.add({ id: Buffer.from(id, 'hex') }))
    const closest = msg.targets.map((target) =>
      t.closest(Buffer.from(target, 'hex')).map((n) => n.id.toString('hex')))
    return { added, closest, size: t.size }
  }
  throw new Error('unknown op ' + msg.op)
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => process.stdout.write(JSON.stringify(handle(JSON.parse(line))) + '\n'))
