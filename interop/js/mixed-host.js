#!/usr/bin/env node
'use strict'
/*
 * Hosts JavaScript peers of a MIXED network: K instances of the UNMODIFIED
 * `HypercorePresence` class of `hyper-presence` 1.1.3, each on a fake feed
 * as in run-scenario.js, whose packets go to (and come from) a driver on the
 * other end of stdin/stdout instead of an in-memory queue. The driver
 * (`src/sim/mixed.rs`) owns the network: links, packets in flight, time, and
 * peers of its own (our Rust engines); this process only runs the package.
 *
 * Usage: node mixed-host.js   (then one JSON command per line on stdin)
 *
 * Commands (stdin, one JSON object per line; i = instance index, HEX = a
 * 64-hex-digit peer id, bytes are hex strings):
 *
 *   {"op":"create","index":i,"id":HEX,"data":{..}}   new instance at index i
 *                       (an instance already there dies first: a restart)
 *   {"op":"destroy","index":i}                       instance i dies: it
 *                       sends nothing ever again, even from pending timers
 *   {"op":"connect","index":i,"peer":HEX}            i gets a link to HEX
 *                       (feed.peers grows, then 'peer-add' and 'peer-open')
 *   {"op":"disconnect","index":i,"peer":HEX}         that link closes
 *                       (it leaves feed.peers, then 'peer-remove')
 *   {"op":"deliver","index":i,"from":HEX,"packet":BYTES}
 *                       flood packet bytes arrive at i on its link from HEX
 *   {"op":"setData","index":i,"data":{..}}           presence.setData(data)
 *   {"op":"advance","ms":N}                          the fake clock moves N
 *                       ms on (N may be fractional; kept in microseconds),
 *                       firing every timer due by then, earliest first
 *   {"op":"snapshot"}                                every live view
 *
 * Answers (stdout, one JSON object per line): every packet an instance puts
 * on a link while a command runs, in order, as
 *
 *   {"sent":{"index":i,"to":HEX,"packet":BYTES}}
 *
 * then exactly one line ending the command:
 *
 *   {"done":"<op>","clock":MS,"nextTimer":MS|null,"errors":[..]}
 *
 * `clock` is the fake clock, `nextTimer` when the earliest pending timer is
 * due (both absolute, in ms), `errors` the exceptions the package threw
 * while the command ran (a bad command is reported there too; the host goes
 * on). A snapshot's done line also has
 *
 *   "views":[{"index":i,"id":HEX,"online":[HEX..],"data":{HEX:value..}}..]
 *
 * with `presence.online` sorted and `getPeerData` of every online id (null
 * for none), for every live instance in index order.
 */

const readline = require('readline')
const { EventEmitter } = require('events')

// ---- fake clock (installed before the package can use timers) -----------

let clockUs = 0
let timerSeq = 0
const timers = new Map() // handle -> { due (µs), seq, fn, args }

class FakeTimeout {
  constructor (seq) { this.seq = seq }
  ref () { return this }
  unref () { return this }
  hasRef () { return true }
  refresh () { return this }
}

globalThis.setTimeout = function fakeSetTimeout (fn, ms, ...args) {
  const handle = new FakeTimeout(++timerSeq)
  const delay = Math.max(0, Math.round((Number(ms) || 0) * 1000))
  timers.set(handle, { due: clockUs + delay, seq: handle.seq, fn, args })
  return handle
}
globalThis.clearTimeout = function fakeClearTimeout (handle) {
  timers.delete(handle)
}

function earliestTimer () {
  let best = null
  for (const [handle, t] of timers) {
    if (!best || t.due < best[1].due || (t.due === best[1].due && t.seq < best[1].seq)) best = [handle, t]
  }
  return best
}

// ---- the package, unmodified ------------------------------------------------

const HypercorePresence = require('hyper-presence')

// ---- fake feeds whose links end at the driver --------------------------------

let out = [] // answer lines of the command running now
let errors = []

class FakeFeed extends EventEmitter {
  constructor (index, hex) {
    super()
    this.index = index
    this.hex = hex
    this.alive = true
    this.peers = [] // { remotePublicKey: Buffer, remoteHex }
    this.extensions = new Map()
  }

  registerExtension (name, handlers) {
    const feed = this
    const ext = {
      name,
      handlers: null,
      broadcast (message) {
        const bytes = encode(ext.handlers, message)
        for (const peer of feed.peers) feed.put(peer, bytes)
      },
      send (message, peer) {
        feed.put(peer, encode(ext.handlers, message))
      },
      destroy () { feed.extensions.delete(name) }
    }
    ext.handlers = typeof handlers === 'function' ? handlers(ext) : (handlers || {})
    this.extensions.set(name, ext)
    return ext
  }

  put (peer, bytes) {
    if (!this.alive || !this.peers.includes(peer)) return
    out.push(JSON.stringify({ sent: { index: this.index, to: peer.remoteHex, packet: bytes.toString('hex') } }))
  }
}

function encode (handlers, message) {
  const enc = handlers && handlers.encoding
  if (enc && typeof enc.encode === 'function') return Buffer.from(enc.encode(message))
  return Buffer.from(message)
}

const instances = [] // index -> { feed, presence }

function instance (index) {
  const it = instances[index]
  if (!it || !it.feed.alive) throw new Error(`no live instance ${index}`)
  return it
}

function hexId (value) {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) throw new Error(`not a 64-hex-digit id: ${value}`)
  return value.toLowerCase()
}

function hex (id) {
  return Buffer.isBuffer(id) ? id.toString('hex') : String(id).toLowerCase()
}

function kill (index) {
  const it = instances[index]
  if (!it) return
  it.feed.alive = false
  it.feed.peers = []
}

// ---- commands ------------------------------------------------------------------

const ops = {
  create ({ index, id, data }) {
    if (!Number.isInteger(index) || index < 0) throw new Error(`bad index ${index}`)
    const idHex = hexId(id)
    kill(index)
    const feed = new FakeFeed(index, idHex)
    const presence = new HypercorePresence(feed, { id: Buffer.from(idHex, 'hex'), data: data || {} })
    instances[index] = { feed, presence }
  },
  destroy ({ index }) {
    kill(index)
  },
  connect ({ index, peer }) {
    const { feed } = instance(index)
    const remoteHex = hexId(peer)
    const p = { remotePublicKey: Buffer.from(remoteHex, 'hex'), remoteHex }
    feed.peers.push(p)
    // A hypercore emits 'peer-add' when a peer joins feed.peers and
    // 'peer-open' when its channel is open; the package listens to the latter.
    feed.emit('peer-add', p)
    feed.emit('peer-open', p)
  },
  disconnect ({ index, peer }) {
    const { feed } = instance(index)
    const remoteHex = hexId(peer)
    const at = feed.peers.findIndex((p) => p.remoteHex === remoteHex)
    if (at < 0) return
    const [p] = feed.peers.splice(at, 1)
    feed.emit('peer-remove', p)
  },
  deliver ({ index, from, packet }) {
    const { feed } = instance(index)
    const fromHex = hexId(from)
    const peer = feed.peers.find((p) => p.remoteHex === fromHex)
    if (!peer) return // the link closed while the packet was on it
    const ext = feed.extensions.get('hyper-presence')
    if (!ext) return
    const bytes = Buffer.from(String(packet), 'hex')
    let message
    try {
      message = ext.handlers.encoding ? ext.handlers.encoding.decode(bytes) : bytes
    } catch (err) {
      if (ext.handlers.onerror) ext.handlers.onerror(err, peer)
      throw new Error(`${feed.hex}: decode: ${err && err.message}`)
    }
    try {
      ext.handlers.onmessage(message, peer)
    } catch (err) {
      throw new Error(`${feed.hex}: ${err && err.message}`)
    }
  },
  setData ({ index, data }) {
    instance(index).presence.setData(data)
  },
  advance ({ ms }) {
    const end = clockUs + Math.max(0, Math.round(Number(ms) * 1000))
    for (;;) {
      const best = earliestTimer()
      if (!best || best[1].due > end) break
      timers.delete(best[0])
      clockUs = Math.max(clockUs, best[1].due)
      try {
        best[1].fn(...best[1].args)
      } catch (err) {
        errors.push(`timer: ${err && err.message}`)
      }
    }
    clockUs = end
  },
  snapshot () {
    const views = []
    instances.forEach((it, index) => {
      if (!it || !it.feed.alive) return
      const online = it.presence.online.map(hex).sort()
      const data = {}
      for (const id of online) {
        const value = it.presence.getPeerData(id)
        data[id] = value === undefined ? null : value
      }
      views.push({ index, id: it.feed.hex, online, data })
    })
    return { views }
  }
}

function run (line) {
  out = []
  errors = []
  let op = null
  let extra = {}
  try {
    const command = JSON.parse(line)
    op = command.op
    if (!Object.prototype.hasOwnProperty.call(ops, op)) throw new Error(`unknown op ${JSON.stringify(op)}`)
    extra = ops[op](command) || {}
  } catch (err) {
    errors.push(err && err.message ? err.message : String(err))
  }
  const next = earliestTimer()
  out.push(JSON.stringify({
    done: op,
    clock: clockUs / 1000,
    nextTimer: next ? next[1].due / 1000 : null,
    errors,
    ...extra
  }))
  process.stdout.write(out.join('\n') + '\n')
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', (line) => { if (line.trim()) run(line) })
