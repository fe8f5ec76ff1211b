#!/usr/bin/env node
'use strict'
/*
 * A local HyperDHT testnet on 127.0.0.1 for the DHT tests: `size` nodes
 * (default 3) from @hyperswarm/testnet, as JavaScript's own tests use.
 *
 *   node testnet.js [--size N]
 *
 * stdout, one line: {"event":"ready","nodes":["127.0.0.1:PORT",...]}
 * The first node is ephemeral (it answers lookups with an error to a client
 * that bootstraps from it alone): give the others as bootstrap nodes.
 * Runs until stdin closes, SIGTERM or SIGINT.
 */

const createTestnet = require('@hyperswarm/testnet')

async function main () {
  let size = 3
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--size') size = Number(argv[i + 1])
    else {
      process.stderr.write(`testnet.js: unknown argument ${argv[i]}\n`)
      process.exit(2)
    }
  }
  const testnet = await createTestnet(size, { host: '127.0.0.1' })
  const nodes = testnet.nodes.map((n) => `127.0.0.1:${n.address().port}`)
  process.stdout.write(JSON.stringify({ event: 'ready', nodes }) + '\n')
  const stop = async () => {
    await testnet.destroy()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdin.on('end', stop)
  process.stdin.resume()
}

main().catch((err) => {
  process.stderr.write(`testnet.js: ${err && err.stack}\n`)
  process.exit(1)
})
