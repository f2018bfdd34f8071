'use strict'
// public_dht.js: the lab's public DHT, run inside the public namespace.
//   node public_dht.js --hosts=10.200.0.1,10.200.0.2 --port=49737 [--timeout-ms=N]
// One persistent (non-firewalled) HyperDHT node per host, each bound to host:port, the first
// bootstrapping the others, as hyperdht/testnet.js does but on explicit addresses so that the
// NATed hosts see the nodes on different IPs (their NAT sampling needs that). Prints
//   {"event":"ready","bootstrap":["host:port",...]}
// and runs until killed or --timeout-ms passes.
const DHT = require('hyperdht')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v === undefined ? true : v]
  })
)
const hosts = String(args.hosts).split(',')
const port = Number(args.port || 49737)
const nodes = []

async function main() {
  const bootstrap = []
  for (const host of hosts) {
    const node = new DHT({ ephemeral: false, firewalled: false, bootstrap, host, port })
    await node.fullyBootstrapped()
    nodes.push(node)
    if (bootstrap.length === 0) bootstrap.push({ host, port })
  }
  const out = { event: 'ready', bootstrap: hosts.map((h) => h + ':' + port) }
  process.stdout.write(JSON.stringify(out) + '\n')
}

setTimeout(() => process.exit(0), Number(args['timeout-ms'] || 600000)).unref()
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
main().catch((err) => {
  process.stdout.write(JSON.stringify({ event: 'error', message: String(err.stack) }) + '\n')
  process.exit(1)
})
