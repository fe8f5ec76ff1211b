#!/usr/bin/env node
'use strict'
/*
 * One JavaScript presence peer over TCP: the unmodified `hyper-presence`
 * 1.1.3 package on a real hypercore 10 or 11, replicating over 127.0.0.1,
 * as a JavaScript app would run it. For interop tests with the Rust peer.
 *
 *   node peer.js --hypercore 10|11 --seed HEX
 *                (--key HEX | --writer-seed HEX)
 *                [--listen PORT] [--connect HOST:PORT]... [--data JSON]
 *                [--extension NAME]
 *
 * --seed         32-byte seed (64 hex) of the static Noise key pair; its
 *                public key is the presence id and the remotePublicKey
 *                other peers see.
 * --key          join the core with this public key (read-only core)
 * --writer-seed  create the core from this 32-byte signer seed
 * --listen       accept on 127.0.0.1:PORT (0 = any free port); as responder
 * --connect      dial HOST:PORT as initiator; redialled with a short backoff
 *                (100 ms doubling to 2 s) whenever the link drops
 * --data         initial presence data, a JSON object (default {})
 * --extension    extension name (default hyper-presence)
 *
 * stdout, one JSON object per line:
 *   {"event":"ready","id":HEX,"key":HEX,"discoveryKey":HEX,"port":N|null}
 *   {"event":"online","online":[HEX...]}        when the sorted list changes
 *   {"event":"data","id":HEX,"data":{...}}      on every peer-data
 *   {"event":"connection","remote":HEX}         a TCP link finished its handshake
 *   {"event":"disconnection","remote":HEX}      that link closed
 *   {"event":"snapshot","online":[...],"data":{HEX:data,...},"edges":[[HEX,HEX]...]}
 * stdin, one command per line: a JSON object = setData(object); `snapshot`;
 * `exit`. EOF on stdin, SIGTERM and SIGINT exit too (code 0).
 * Errors and diagnostics go to stderr.
 *
 * Hypercore 11 keeps its core in RocksDB: a temporary directory per process,
 * removed on exit (not after kill -9: look for hyper-presence-peer-* in the
 * temp dir).
 */

const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const readline = require('readline')
const crypto = require('hypercore-crypto')
const HypercorePresence = require('hyper-presence')
const { PresenceFeed } = require('./presence-adapter')

const REDIAL_MIN_MS = 100
const REDIAL_MAX_MS = 2000

function usage (message) {
  process.stderr.write(`peer.js: ${message}\n`)
  process.exit(2)
}

function parseArgs (argv) {
  const opts = { connect: [], data: {}, extension: 'hyper-presence', listen: null }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = argv[i + 1]
    if (value === undefined) usage(`${flag} needs a value`)
    i++
    switch (flag) {
      case '--hypercore': opts.hypercore = value; break
      case '--seed': opts.seed = hex32(flag, value); break
      case '--key': opts.key = hex32(flag, value); break
      case '--writer-seed': opts.writerSeed = hex32(flag, value); break
      case '--listen': opts.listen = port(flag, value); break
      case '--connect': {
        const m = /^(.+):(\d+)$/.exec(value)
        if (!m) usage(`--connect wants HOST:PORT, got ${value}`)
        opts.connect.push({ host: m[1], port: port(flag, m[2]) })
        break
      }
      case '--data':
        try {
          opts.data = JSON.parse(value)
        } catch (err) {
          usage(`--data is not JSON: ${err.message}`)
        }
        if (!isObject(opts.data)) usage('--data must be a JSON object')
        break
      case '--extension': opts.extension = value; break
      default: usage(`unknown argument ${flag}`)
    }
  }
  if (opts.hypercore !== '10' && opts.hypercore !== '11') usage('--hypercore must be 10 or 11')
  if (!opts.seed) usage('--seed is required')
  if (!opts.key === !opts.writerSeed) usage('give exactly one of --key and --writer-seed')
  return opts
}

function hex32 (flag, value) {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) usage(`${flag} wants 64 hex chars`)
  return Buffer.from(value, 'hex')
}

function port (flag, value) {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) usage(`${flag}: bad port ${value}`)
  return n
}

function isObject (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function hex (id) {
  return Buffer.isBuffer(id) ? id.toString('hex') : String(id).toLowerCase()
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function warn (message) {
  process.stderr.write(`peer.js: ${message}\n`)
}

// Peer bytes should not reach here (the adapter's guard turns them into
// dropped connections); anything that still does is logged, not fatal.
process.on('uncaughtException', (err) => warn(`uncaught: ${err && err.stack}`))
process.on('unhandledRejection', (err) => warn(`unhandled rejection: ${err && err.stack}`))

async function openCore (opts) {
  let core
  let storageDir = null
  const coreOpts = opts.writerSeed ? { keyPair: crypto.keyPair(opts.writerSeed) } : {}
  if (opts.hypercore === '10') {
    const Hypercore = require('hypercore10')
    const RAM = require('random-access-memory')
    core = opts.key ? new Hypercore(RAM, opts.key, coreOpts) : new Hypercore(RAM, coreOpts)
  } else {
    const Hypercore = require('hypercore11')
    storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyper-presence-peer-'))
    core = opts.key ? new Hypercore(storageDir, opts.key, coreOpts) : new Hypercore(storageDir, coreOpts)
  }
  await core.ready()
  return { core, storageDir }
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const keyPair = crypto.keyPair(opts.seed)
  const { core, storageDir } = await openCore(opts)
  const removeStorage = () => {
    if (storageDir) fs.rmSync(storageDir, { recursive: true, force: true })
  }
  process.on('exit', removeStorage)

  const feed = new PresenceFeed(core, {
    guard: (err) => warn(err.message + (err.cause && err.cause.stack ? `\n${err.cause.stack}` : ''))
  })
  const presence = new HypercorePresence(feed, {
    id: keyPair.publicKey,
    extension: opts.extension,
    data: opts.data
  })

  let lastOnline = null
  const onlineList = () => presence.online.map(hex).sort()
  presence.on('online', () => {
    const online = onlineList()
    const key = online.join(',')
    if (key === lastOnline) return
    lastOnline = key
    emit({ event: 'online', online })
  })
  presence.on('peer-data', (data, id) => emit({ event: 'data', id: hex(id), data }))
  presence.flood.on('error', (err) => warn(`flood: ${err && err.message}`))

  let closing = false
  const sockets = new Set()

  // One TCP link: the socket piped both ways into a replication stream.
  function attach (socket, isInitiator, label, onHandshake) {
    sockets.add(socket)
    const stream = core.replicate(isInitiator, { keyPair })
    let remote = null
    socket.setNoDelay(true)
    // A dial that fails before its handshake is reported by the dialler,
    // once per run of failures, not here on every retry.
    const report = (what) => (err) => {
      if (remote || !isInitiator) warn(`${label}: ${what}: ${err.message}`)
    }
    socket.on('error', report('socket'))
    stream.on('error', report('stream'))
    socket.on('close', () => {
      sockets.delete(socket)
      stream.destroy()
      if (remote && !closing) emit({ event: 'disconnection', remote })
    })
    stream.on('close', () => socket.destroy())
    socket.pipe(stream).pipe(socket)
    stream.noiseStream.opened.then((ok) => {
      if (!ok || socket.destroyed) return
      remote = hex(stream.remotePublicKey)
      emit({ event: 'connection', remote })
      if (onHandshake) onHandshake()
    }, () => {})
  }

  let server = null
  let listenPort = null
  if (opts.listen !== null) {
    server = net.createServer((socket) => {
      attach(socket, false, `from ${socket.remoteAddress}:${socket.remotePort}`)
    })
    server.on('error', (err) => warn(`listen: ${err.message}`))
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.listen, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    }).catch((err) => {
      warn(`cannot listen on 127.0.0.1:${opts.listen}: ${err.message}`)
      process.exit(1)
    })
    listenPort = server.address().port
  }

  emit({
    event: 'ready',
    id: hex(keyPair.publicKey),
    key: hex(core.key),
    discoveryKey: hex(core.discoveryKey),
    port: listenPort
  })

  const timers = new Set()
  function dial (target) {
    let backoff = REDIAL_MIN_MS
    let failing = false
    const label = `to ${target.host}:${target.port}`
    const connect = () => {
      if (closing) return
      const socket = net.connect(target.port, target.host)
      let handshook = false
      attach(socket, true, label, () => {
        handshook = true
        failing = false
        backoff = REDIAL_MIN_MS
      })
      socket.on('error', (err) => {
        if (!failing) warn(`${label}: ${err.message}; redialling every <= ${REDIAL_MAX_MS} ms`)
        failing = true
      })
      socket.on('close', () => {
        if (closing) return
        const wait = handshook ? REDIAL_MIN_MS : backoff
        backoff = Math.min(backoff * 2, REDIAL_MAX_MS)
        const timer = setTimeout(() => {
          timers.delete(timer)
          connect()
        }, wait)
        timers.add(timer)
      })
    }
    connect()
  }
  for (const target of opts.connect) dial(target)

  async function shutdown () {
    if (closing) return
    closing = true
    for (const timer of timers) clearTimeout(timer)
    setTimeout(() => {
      warn('close timed out')
      process.exit(0)
    }, 3000).unref()
    if (server) server.close()
    for (const socket of sockets) socket.destroy()
    try {
      await core.close()
    } catch (err) {
      warn(`close: ${err.message}`)
    }
    removeStorage()
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
      // Every edge the graph holds, for explaining a wrong view.
      const edges = presence.graph.edges().map(([from, to]) => [hex(from), hex(to)])
      return emit({ event: 'snapshot', online, data, edges })
    }
    let value
    try {
      value = JSON.parse(text)
    } catch (err) {
      return warn(`stdin: not JSON, snapshot or exit: ${text}`)
    }
    if (!isObject(value)) return warn('stdin: setData wants a JSON object')
    presence.setData(value)
  })
}

main().catch((err) => {
  warn(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
