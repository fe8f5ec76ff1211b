#!/usr/bin/env node
'use strict'
/*
 * Runs one scenario through N instances of the UNMODIFIED `HypercorePresence`
 * class of the npm package `hyper-presence` 1.1.3 (with its own hyper-flood,
 * duplicate cache and TTL), each attached to a fake in-memory hypercore
 * `feed`, and prints what every instance ends up believing.
 *
 * Usage: node run-scenario.js < scenario.json > result.json
 *
 * Scenario (stdin, JSON):
 *
 *   {
 *     "peers": [ { "id": "<64 hex chars>", "data": { ... } }, ... ],
 *     "steps": [
 *       { "connect": [i, j] },        open a link between peers i and j
 *                                     (indices into "peers"); a no-op if
 *                                     they are already linked
 *       { "disconnect": [i, j] },     close that link; packets still on it
 *                                     are lost
 *       { "setData": [i, { ... }] },  peer i calls presence.setData(value)
 *       { "settle": true }            deliver every packet in flight, FIFO,
 *                                     until none is left, then fire the
 *                                     earliest pending timer (the 500 ms
 *                                     disconnect grace) on the fake clock,
 *                                     and repeat until nothing is left
 *     ],
 *     "maxDeliveries": 2000000        optional bound on packets delivered in
 *                                     one settle (default 2,000,000); past it
 *                                     the run stops and reports
 *                                     "settled": false
 *   }
 *
 * Every instance is created before the first step, with `{ id, data }`
 * (id as a 32-byte Buffer). Peer data must be JSON objects: the original
 * stores data as graph node attributes, which must be plain objects.
 *
 * Result (stdout, JSON):
 *
 *   {
 *     "peers": {
 *       "<id hex>": {
 *         "online": [ "<id hex>", ... ],              presence.online, sorted
 *         "data": { "<id hex>": <getPeerData(id)>, ... for every online id }
 *       }, ...
 *     },
 *     "settled": true,           false if a settle hit maxDeliveries
 *     "delivered": <number>,     packets handed to an extension handler
 *     "timersFired": <number>,
 *     "errors": [ "<peer hex>: <message>", ... ]   exceptions thrown by the
 *                                                  package's handlers
 *   }
 *
 * How the fake feed works: each instance gets a `FakeFeed`, an EventEmitter
 * with exactly what the package touches: `registerExtension(name, handlers)`
 * (hyper-flood passes a factory `(ext) => ({ encoding, onmessage, onerror })`;
 * a plain handlers object is accepted too), a `peers` array of peer objects
 * `{ remotePublicKey: Buffer }`, and the events `peer-open` and `peer-remove`
 * that the package listens to. The extension object handed to hyper-flood
 * has `broadcast(message)`: it encodes the flood packet with the handler's
 * own encoding (hyper-flood's protobuf `Packet`), and queues the bytes to
 * every peer in `feed.peers`. Delivery decodes them with the same encoding
 * and calls `onmessage(packet, peer)`, as a hypercore does.
 *
 * Determinism: everything the package does is synchronous except the
 * 500 ms `setTimeout` in `handlePeerRemove`; `setTimeout`/`clearTimeout` are
 * replaced by a fake clock, so a run never waits and never depends on timing.
 * Packets are delivered one at a time from one global FIFO queue; that is
 * the order of a network where every packet takes the same time.
 */

const fs = require('fs')
const { EventEmitter } = require('events')

// ---- fake clock (installed before the package can use timers) -----------

let clock = 0
let timerSeq = 0
const timers = new Map() // handle -> { due, seq, fn, args }

class FakeTimeout {
  constructor (seq) { this.seq = seq }
  ref () { return this }
  unref () { return this }
  hasRef () { return true }
  refresh () { return this }
}

globalThis.setTimeout = function fakeSetTimeout (fn, ms, ...args) {
  const handle = new FakeTimeout(++timerSeq)
  timers.set(handle, { due: clock + Math.max(0, Number(ms) || 0), seq: handle.seq, fn, args })
  return handle
}
globalThis.clearTimeout = function fakeClearTimeout (handle) {
  timers.delete(handle)
}

function popEarliestTimer () {
  let best = null
  for (const [handle, t] of timers) {
    if (!best || t.due < best[1].due || (t.due === best[1].due && t.seq < best[1].seq)) best = [handle, t]
  }
  if (!best) return null
  timers.delete(best[0])
  return best[1]
}

// ---- the package, unmodified ------------------------------------------------

const HypercorePresence = require('hyper-presence')

// ---- fake feed and in-memory network ---------------------------------------

const queue = [] // { link, to: FakeFeed, peer: peer object on `to`, bytes: Buffer }
let queueHead = 0
let delivered = 0
let timersFired = 0
const errors = []

class FakeFeed extends EventEmitter {
  constructor (label) {
    super()
    this.label = label
    this.peers = []
    this.extensions = new Map()
  }

  registerExtension (name, handlers) {
    const feed = this
    const ext = {
      name,
      handlers: null,
      broadcast (message) {
        const bytes = encode(ext.handlers, message)
        for (const peer of feed.peers) {
          const remote = peer.link.other(peer)
          queue.push({ link: peer.link, to: remote.feed, peer: remote, name, bytes })
        }
      },
      send (message, peer) {
        const bytes = encode(ext.handlers, message)
        const remote = peer.link.other(peer)
        queue.push({ link: peer.link, to: remote.feed, peer: remote, name, bytes })
      },
      destroy () { feed.extensions.delete(name) }
    }
    ext.handlers = typeof handlers === 'function' ? handlers(ext) : (handlers || {})
    this.extensions.set(name, ext)
    return ext
  }
}

function encode (handlers, message) {
  const enc = handlers && handlers.encoding
  if (enc && typeof enc.encode === 'function') return Buffer.from(enc.encode(message))
  return Buffer.from(message)
}

function decode (handlers, bytes) {
  const enc = handlers && handlers.encoding
  if (enc && typeof enc.decode === 'function') return enc.decode(bytes)
  return bytes
}

class Link {
  constructor (a, b) {
    this.open = true
    // a's view of b, and b's view of a: what feed.peers holds.
    this.peerA = { feed: a.feed, remotePublicKey: Buffer.from(b.idBuf), link: this }
    this.peerB = { feed: b.feed, remotePublicKey: Buffer.from(a.idBuf), link: this }
  }

  other (peer) { return peer === this.peerA ? this.peerB : this.peerA }
}

function deliver (item) {
  if (!item.link.open) return
  const ext = item.to.extensions.get(item.name)
  if (!ext) return
  delivered++
  let message
  try {
    message = decode(ext.handlers, item.bytes)
  } catch (err) {
    if (ext.handlers.onerror) ext.handlers.onerror(err, item.peer)
    errors.push(`${item.to.label}: decode: ${err && err.message}`)
    return
  }
  try {
    if (ext.handlers.onmessage) ext.handlers.onmessage(message, item.peer)
  } catch (err) {
    errors.push(`${item.to.label}: ${err && err.message}`)
  }
}

// ---- the scenario -----------------------------------------------------------

function hex (id) {
  return Buffer.isBuffer(id) ? id.toString('hex') : String(id).toLowerCase()
}

function main () {
  const scenario = JSON.parse(fs.readFileSync(0, 'utf8'))
  const maxDeliveries = scenario.maxDeliveries || 2000000
  if (!Array.isArray(scenario.peers) || !Array.isArray(scenario.steps)) {
    throw new Error('scenario needs "peers" and "steps" arrays')
  }

  const nodes = scenario.peers.map((p, index) => {
    if (!/^[0-9a-fA-F]{64}$/.test(p.id)) throw new Error(`peer ${index}: id must be 64 hex chars`)
    const idBuf = Buffer.from(p.id, 'hex')
    const feed = new FakeFeed(idBuf.toString('hex'))
    const presence = new HypercorePresence(feed, { id: idBuf, data: p.data || {} })
    return { idBuf, feed, presence }
  })
  const links = new Map() // "i,j" (i < j) -> Link

  function node (i) {
    if (!Number.isInteger(i) || !nodes[i]) throw new Error(`no peer ${i}`)
    return nodes[i]
  }

  let settled = true
  function settle () {
    let budget = maxDeliveries
    for (;;) {
      while (queueHead < queue.length) {
        if (budget-- <= 0) { settled = false; return }
        const item = queue[queueHead]
        queue[queueHead++] = undefined
        deliver(item)
      }
      queue.length = 0
      queueHead = 0
      const timer = popEarliestTimer()
      if (!timer) return
      clock = Math.max(clock, timer.due)
      timersFired++
      try {
        timer.fn(...timer.args)
      } catch (err) {
        errors.push(`timer: ${err && err.message}`)
      }
    }
  }

  for (const step of scenario.steps) {
    if (!settled) break
    if (step.connect) {
      const [i, j] = step.connect
      const a = node(i)
      const b = node(j)
      const key = `${Math.min(i, j)},${Math.max(i, j)}`
      if (i === j || links.has(key)) continue
      const link = new Link(a, b)
      links.set(key, link)
      a.feed.peers.push(link.peerA)
      b.feed.peers.push(link.peerB)
      // A hypercore emits 'peer-add' when a peer joins feed.peers and
      // 'peer-open' when its channel is open; the package listens to the latter.
      a.feed.emit('peer-add', link.peerA)
      b.feed.emit('peer-add', link.peerB)
      a.feed.emit('peer-open', link.peerA)
      b.feed.emit('peer-open', link.peerB)
    } else if (step.disconnect) {
      const [i, j] = step.disconnect
      const a = node(i)
      const b = node(j)
      const key = `${Math.min(i, j)},${Math.max(i, j)}`
      const link = links.get(key)
      if (!link) continue
      links.delete(key)
      link.open = false
      a.feed.peers.splice(a.feed.peers.indexOf(link.peerA), 1)
      b.feed.peers.splice(b.feed.peers.indexOf(link.peerB), 1)
      a.feed.emit('peer-remove', link.peerA)
      b.feed.emit('peer-remove', link.peerB)
    } else if (step.setData) {
      const [i, value] = step.setData
      node(i).presence.setData(value)
    } else if (step.settle) {
      settle()
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`)
    }
  }

  const peers = {}
  for (const { idBuf, presence } of nodes) {
    const online = presence.online.map(hex).sort()
    const data = {}
    for (const id of online) {
      const value = presence.getPeerData(id)
      data[id] = value === undefined ? null : value
    }
    peers[idBuf.toString('hex')] = { online, data }
  }
  process.stdout.write(JSON.stringify({ peers, settled, delivered, timersFired, errors }) + '\n')
}

try {
  main()
} catch (err) {
  process.stderr.write(`run-scenario: ${err && err.stack ? err.stack : err}\n`)
  process.exitCode = 2
}
