#!/usr/bin/env node
'use strict'
/*
 * Sends one DHT request with a command the `hyperdht` Rust crate does not
 * know (default 9, IMMUTABLE_GET in hyperdht) straight to a node, as any
 * DHT node may. For the test that a DHT crash does not take a Rust peer's
 * links down.
 *
 *   node dht-poke.js --bootstrap HOST:PORT --to HOST:PORT [--command N]
 *
 * Prints {"event":"sent",...} and exits (an answer is not expected).
 */

const DHT = require('hyperdht')

function addr (value) {
  const m = /^(.+):(\d+)$/.exec(value || '')
  if (!m) {
    process.stderr.write(`dht-poke.js: want HOST:PORT, got ${value}\n`)
    process.exit(2)
  }
  return { host: m[1], port: Number(m[2]) }
}

async function main () {
  const argv = process.argv.slice(2)
  const opts = { bootstrap: [], command: 9 }
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--bootstrap') opts.bootstrap.push(addr(argv[i + 1]))
    else if (argv[i] === '--to') opts.to = addr(argv[i + 1])
    else if (argv[i] === '--command') opts.command = Number(argv[i + 1])
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  const node = new DHT({ bootstrap: opts.bootstrap, ephemeral: true })
  await node.ready()
  const reply = node.request(
    { command: opts.command, target: Buffer.alloc(32, 7), value: null },
    opts.to,
    { retry: false }
  ).then(() => 'answered', (err) => `no answer: ${err.code || err.message}`)
  process.stdout.write(JSON.stringify({ event: 'sent', command: opts.command }) + '\n')
  const outcome = await Promise.race([reply, new Promise((resolve) => setTimeout(resolve, 1000, 'no answer in 1 s'))])
  process.stdout.write(JSON.stringify({ event: 'done', outcome }) + '\n')
  await node.destroy()
  process.exit(0)
}

main().catch((err) => {
  process.stderr.write(`dht-poke.js: ${err && err.stack}\n`)
  process.exit(1)
})
