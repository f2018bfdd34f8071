// Encodes the values given on stdin (JSON lines {enc, value}) with the real compact-encoding
// and compact-encoding-net, and prints one hex line per value: the bytes Python must match.
'use strict'
const c = require('compact-encoding')
const net = require('compact-encoding-net')
const readline = require('readline')

const encodings = {
  uint: c.uint,
  uint8: c.uint8,
  uint16: c.uint16,
  uint24: c.uint24,
  uint32: c.uint32,
  uint64: c.uint64,
  int: c.int,
  bool: c.bool,
  fixed32: c.fixed32,
  fixed64: c.fixed64,
  buffer: c.buffer,
  string: c.string,
  ipv4Address: net.ipv4Address,
  ipv6Address: net.ipv6Address,
  ipv4Array: c.array(net.ipv4Address),
  uintArray: c.array(c.uint)
}

function revive (name, value) {
  if (name === 'fixed32' || name === 'fixed64' || name === 'buffer') return Buffer.from(value, 'hex')
  return value
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const { enc, value } = JSON.parse(line)
  process.stdout.write(c.encode(encodings[enc], revive(enc, value)).toString('hex') + '\n')
})
