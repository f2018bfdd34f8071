// A small network of real JS dht-rpc / HyperDHT nodes on 127.0.0.1, driven by JSON lines on
// stdin (one JSON line answers each): the Python interop tests start nodes, read their routing
// tables and run their queries. Every node binds the explicit port it is given (never the
// 49737 default), and the process exits by itself after --timeout-ms or when stdin ends.
'use strict'
const readline = require('readline')
const DHT = require('dht-rpc')
const HyperDHT = require('hyperdht')

const timeoutMs = Number((process.argv.find((a) => a.startsWith('--timeout-ms=')) || '=60000').split('=')[1])
const nodes = []
const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)

async function destroyAll() {
  await Promise.allSettled(nodes.map((n) => n.destroy()))
}

const killer = setTimeout(async () => {
  await destroyAll()
  process.exit(3)
}, timeoutMs)

async function handle(msg) {
  if (msg.op === 'start') {
    const bootstrap = (msg.bootstrap || []).map(([host, port]) => ({ host, port }))
    const opts = { bootstrap, host: '127.0.0.1', port: msg.port, anyPort: false }
    if (msg.ephemeral !== undefined && msg.ephemeral !== null) opts.ephemeral = msg.ephemeral
    let node
    if (msg.bootstrapper) node = DHT.bootstrapper(msg.port, '127.0.0.1', { host: '127.0.0.1' })
    else if (msg.kind === 'hyperdht') node = new HyperDHT(opts)
    else node = new DHT(opts)
    node.on('request', (req) => {
      // A command 100 of the tests: echo, with a token, so commits can be checked.
      if (req.command !== 100) return req.error(1)
      req.reply(req.token ? Buffer.from('committed') : req.value, { token: true })
    })
    nodes.push(node)
    await node.fullyBootstrapped()
    return { i: nodes.length - 1, port: node.address().port, id: hex(node.id) }
  }
  if (msg.op === 'table') {
    const node = nodes[msg.i]
    return {
      id: hex(node.id),
      ephemeral: node.ephemeral,
      firewalled: node.firewalled,
      nodes: node.toArray().map(({ host, port }) => [host, port])
    }
  }
  if (msg.op === 'waitFor') {
    // Resolves once node i has [host, port] in its routing table (event driven).
    const node = nodes[msg.i]
    const [host, port] = msg.node
    const has = () => node.toArray().some((n) => n.host === host && n.port === port)
    if (!has()) {
      await new Promise((resolve) => {
        const check = () => {
          if (!has()) return
          node.removeListener('add-node', check)
          resolve()
        }
        node.on('add-node', check)
      })
    }
    return { nodes: node.toArray().map((n) => [n.host, n.port]) }
  }
  if (msg.op === 'findNode') {
    const q = nodes[msg.i].findNode(Buffer.from(msg.target, 'hex'))
    await q.finished()
    return { closest: q.closestNodes.map(({ host, port }) => [host, port]) }
  }
  if (msg.op === 'query') {
    const q = nodes[msg.i].query(
      { target: Buffer.from(msg.target, 'hex'), command: msg.command, value: Buffer.from(msg.value, 'hex') },
      { commit: !!msg.commit }
    )
    const replies = []
    for await (const r of q) replies.push([r.from.host, r.from.port, hex(r.value)])
    return { replies, closest: q.closestNodes.map(({ host, port }) => [host, port]) }
  }
  if (msg.op === 'ping') {
    const [host, port] = msg.to
    const res = await nodes[msg.i].ping({ host, port })
    return { to: [res.to.host, res.to.port], id: hex(res.from.id) }
  }
  // Benchmarks (bench/dht_rpc.py): the same measurements as the Python side, in JS.
  if (msg.op === 'benchJoin') {
    const bootstrap = msg.bootstrap.map(([host, port]) => ({ host, port }))
    const t0 = performance.now()
    const node = new DHT({ bootstrap, host: '127.0.0.1' })
    await node.fullyBootstrapped()
    const t1 = performance.now()
    await node.findNode(require('crypto').randomBytes(32)).finished()
    const t2 = performance.now()
    await node.destroy()
    return { bootstrap_ms: t1 - t0, find_node_ms: t2 - t1 }
  }
  if (msg.op === 'benchQps') {
    const bootstrap = msg.bootstrap.map(([host, port]) => ({ host, port }))
    const node = new DHT({ bootstrap, host: '127.0.0.1' })
    await node.fullyBootstrapped()
    let left = msg.queries
    const t0 = performance.now()
    const worker = async () => {
      while (left-- > 0) await node.findNode(require('crypto').randomBytes(32)).finished()
    }
    await Promise.all(Array.from({ length: msg.parallel }, worker))
    const seconds = (performance.now() - t0) / 1000
    await node.destroy()
    return { seconds }
  }
  if (msg.op === 'benchMem') {
    const bootstrap = msg.bootstrap.map(([host, port]) => ({ host, port }))
    global.gc && global.gc()
    const before = process.memoryUsage().rss
    const extra = []
    for (let i = 0; i < msg.n; i++) {
      const node = new DHT({ bootstrap, host: '127.0.0.1' })
      await node.fullyBootstrapped()
      extra.push(node)
    }
    global.gc && global.gc()
    const after = process.memoryUsage().rss
    await Promise.all(extra.map((n) => n.destroy()))
    return { rss_per_node_kib: (after - before) / 1024 / msg.n }
  }
  if (msg.op === 'destroy') {
    await destroyAll()
    clearTimeout(killer)
    return { done: true }
  }
  throw new Error('unknown op ' + msg.op)
}

const rl = readline.createInterface({ input: process.stdin })
let chain = Promise.resolve()
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let out
    try {
      out = await handle(JSON.parse(line))
    } catch (err) {
      out = { error: String((err && err.stack) || err) }
    }
    process.stdout.write(JSON.stringify(out) + '\n')
  })
})
rl.on('close', () => {
  chain.then(async () => {
    await destroyAll()
    process.exit(0)
  })
})
