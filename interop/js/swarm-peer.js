#!/usr/bin/env node
'use strict'
/*
 * One JavaScript presence peer that finds its peers on the HyperDHT, as a
 * JavaScript app does: the unmodified `hyper-presence` 1.1.3 package on a
 * hypercore 10, replicated over every hyperswarm connection, the swarm
 * joined on the core's discovery key. For the DHT tests of the Rust peer.
 *
 *   node swarm-peer.js --seed HEX (--key HEX | --writer-seed HEX)
 *                      --bootstrap HOST:PORT... [--data JSON]
 *
 * --seed       32-byte seed (64 hex) of the swarm's key pair: its public key
 *              is the presence id (the remotePublicKey every peer sees)
 * --key        join the core with this public key (read-only core)
 * --writer-seed create the core from this 32-byte signer seed
 * --bootstrap  HyperDHT bootstrap node (repeatable; tests use a local testnet)
 * --data       initial presence data, a JSON object (default {})
 *
 * stdout, one JSON object per line, as peer.js:
 *   {"event":"ready","id":HEX,"key":HEX,"discoveryKey":HEX}
 *   {"event":"online","online":[HEX...]}        when the sorted list changes
 *   {"event":"data","id":HEX,"data":{...}}
 *   {"event":"connection","remote":HEX}         a swarm connection opened
 *   {"event":"snapshot","online":[...],"data":{HEX:data,...}}
 * stdin: a JSON object = setData(object); `snapshot`; `exit`.
 */

const readline = require('readline')
const crypto = require('hypercore-crypto')
const Hyperswarm = require('hyperswarm')
const Hypercore = require('hypercore10')
const RAM = require('random-access-memory')
const HypercorePresence = require('hyper-presence')
const { PresenceFeed } = require('./presence-adapter')

function usage (message) {
  process.stderr.write(`swarm-peer.js: ${message}\n`)
  process.exit(2)
}

function hex32 (flag, value) {
  if (!/^[0-9a-fA-F]{64}$/.test(value || '')) usage(`${flag} wants 64 hex chars`)
  return Buffer.from(value, 'hex')
}

function parseArgs (argv) {
  const opts = { bootstrap: [], data: {} }
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]]
    if (value === undefined) usage(`${flag} needs a value`)
    switch (flag) {
      case '--seed': opts.seed = hex32(flag, value); break
      case '--key': opts.key = hex32(flag, value); break
      case '--writer-seed': opts.writerSeed = hex32(flag, value); break
      case '--bootstrap': {
        const m = /^(.+):(\d+)$/.exec(value)
        if (!m) usage(`--bootstrap wants HOST:PORT, got ${value}`)
        opts.bootstrap.push({ host: m[1], port: Number(m[2]) })
        break
      }
      case '--data': opts.data = JSON.parse(value); break
      default: usage(`unknown argument ${flag}`)
    }
  }
  if (!opts.seed) usage('--seed is required')
  if (!opts.key === !opts.writerSeed) usage('give exactly one of --key and --writer-seed')
  if (opts.bootstrap.length === 0) usage('--bootstrap is required (no public DHT in tests)')
  return opts
}

const hex = (id) => (Buffer.isBuffer(id) ? id.toString('hex') : String(id).toLowerCase())
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const warn = (message) => process.stderr.write(`swarm-peer.js: ${message}\n`)

process.on('uncaughtException', (err) => warn(`uncaught: ${err && err.stack}`))
process.on('unhandledRejection', (err) => warn(`unhandled rejection: ${err && err.stack}`))

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const keyPair = crypto.keyPair(opts.seed)
  const coreOpts = opts.writerSeed ? { keyPair: crypto.keyPair(opts.writerSeed) } : {}
  const core = opts.key ? new Hypercore(RAM, opts.key, coreOpts) : new Hypercore(RAM, coreOpts)
  await core.ready()

  const feed = new PresenceFeed(core, { guard: (err) => warn(err.message) })
  const presence = new HypercorePresence(feed, { id: keyPair.publicKey, data: opts.data })
  let lastOnline = null
  const onlineList = () => presence.online.map(hex).sort()
  presence.on('online', () => {
    const online = onlineList()
    if (online.join(',') === lastOnline) return
    lastOnline = online.join(',')
    emit({ event: 'online', online })
  })
  presence.on('peer-data', (data, id) => emit({ event: 'data', id: hex(id), data }))
  presence.flood.on('error', (err) => warn(`flood: ${err && err.message}`))

  const swarm = new Hyperswarm({ keyPair, bootstrap: opts.bootstrap })
  swarm.on('connection', (conn) => {
    emit({ event: 'connection', remote: hex(conn.remotePublicKey) })
    conn.on('error', (err) => warn(`connection: ${err.message}`))
    core.replicate(conn)
  })
  const discovery = swarm.join(core.discoveryKey, { server: true, client: true })
  emit({ event: 'ready', id: hex(keyPair.publicKey), key: hex(core.key), discoveryKey: hex(core.discoveryKey) })
  discovery.flushed().then(() => warn('announced'), (err) => warn(`announce: ${err.message}`))

  let closing = false
  async function shutdown () {
    if (closing) return
    closing = true
    setTimeout(() => process.exit(0), 3000).unref()
    try {
      await swarm.destroy()
      await core.close()
    } catch (err) {
      warn(`close: ${err.message}`)
    }
    process.exit(0)
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)

  const rl = readline.createInterface({ input: process.stdin, terminal: false })
  rl.on('close', shutdown)
  rl.on('line', (line) => {
    const text = line.trim()
    if (text === '') return
    if (text === 'exit') return shutdown()
    if (text === 'snapshot') {
      const online = onlineList()
      const data = {}
      for (const id of online) {
        const value = presence.getPeerData(id)
        data[id] = value === undefined ? null : value
      }
      return emit({ event: 'snapshot', online, data })
    }
    let value
    try {
      value = JSON.parse(text)
    } catch (err) {
      return warn(`stdin: not JSON, snapshot or exit: ${text}`)
    }
    presence.setData(value)
  })
}

main().catch((err) => {
  warn(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
