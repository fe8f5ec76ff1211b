'use strict'
/*
 * The small adapter that lets the unmodified `hyper-presence` 1.1.3 package
 * run on hypercore 10 or 11.
 *
 * The package was written for an older hypercore and expects of its `feed`:
 *
 *   - `feed.registerExtension(name, factory)`, where hyper-flood passes a
 *     FACTORY `(ext) => ({ encoding, onmessage, onerror })` that needs the
 *     extension object (it keeps it to call `ext.broadcast`). Hypercore 10/11
 *     take a handlers OBJECT and return the extension, and they read
 *     `handlers.encoding` when registering, so the handlers must exist first.
 *   - the event `peer-open` for a new connection. Hypercore 10/11 emit
 *     `peer-add` (when the `hypercore/alpha` channel is open and its
 *     capability checked) and `peer-remove`.
 *   - `feed.peers`, an array of peers with `remotePublicKey` (a Buffer): the
 *     package's 500 ms disconnect grace reads it. Hypercore 10/11 have that.
 *
 * `PresenceFeed` wraps a ready core and offers exactly that; nothing of the
 * package is patched. The presence id must be passed explicitly
 * (`new HypercorePresence(feed, { id })`) and must be the public key of the
 * static Noise key pair given to `core.replicate(isInitiator, { keyPair })`,
 * since the other side knows us as its stream's `remotePublicKey`.
 *
 * Option `guard` (off by default, so behaviour is the plain package's):
 * hypercore runs extension handlers inside protomux, which destroys the
 * connection on an ordinary Error but, through `safety-catch`, rethrows
 * TypeError/RangeError/SyntaxError etc. as uncaught exceptions. Bad bytes
 * from a peer reach exactly those: a truncated varint in the flood packet is
 * a RangeError (varint), STATE data that is not JSON a SyntaxError
 * (JSON.parse in the package), so one bad message takes a whole plain JS app
 * down. With `guard: true` every error out of the packet decoder or the
 * package's handler is rethrown as a plain Error (original in `cause`), so
 * hypercore drops only that connection, and `guard(err, peer)` if it is a
 * function is called first to report it.
 */

const { EventEmitter } = require('events')

class PresenceFeed extends EventEmitter {
  /** Wraps a ready hypercore 10/11 `core` as the `feed` hyper-presence 1.1.3 expects. */
  constructor (core, { guard = false } = {}) {
    super()
    this.core = core
    this.guard = guard
    core.on('peer-add', (peer) => this.emit('peer-open', peer))
    core.on('peer-remove', (peer) => this.emit('peer-remove', peer))
  }

  /** The core's open replication peers; each has `remotePublicKey`. */
  get peers () {
    return this.core.peers
  }

  /** Registers an extension from a hyper-flood style factory (or a plain handlers object). */
  registerExtension (name, factory) {
    let ext = null
    // Handed to the factory before the real extension exists; forwards to it.
    const early = {
      name,
      broadcast: (message) => ext.broadcast(message),
      send: (message, peer) => ext.send(message, peer),
      destroy: () => ext.destroy()
    }
    let handlers = typeof factory === 'function' ? factory(early) : (factory || {})
    if (this.guard) handlers = guardHandlers(name, handlers, this.guard)
    ext = this.core.registerExtension(name, handlers)
    return ext
  }
}

function guardHandlers (name, handlers, guard) {
  const report = typeof guard === 'function' ? guard : () => {}
  const plain = (what, err, peer) => {
    const wrapped = new Error(`extension ${name}: ${what}: ${err && err.message}`, { cause: err })
    report(wrapped, peer)
    return wrapped
  }
  const guarded = { ...handlers }
  const enc = handlers.encoding
  if (enc && typeof enc.decode === 'function' && typeof enc.encodingLength === 'function') {
    // Still an abstract-encoding (encode/decode/encodingLength, `.bytes`), so
    // compact-encoding writes the same bytes; only decode errors change kind.
    guarded.encoding = Object.create(enc)
    guarded.encoding.decode = function decode (...args) {
      try {
        const message = enc.decode(...args)
        decode.bytes = enc.decode.bytes
        return message
      } catch (err) {
        throw plain('undecodable message', err)
      }
    }
  }
  if (typeof handlers.onmessage === 'function') {
    guarded.onmessage = (message, peer) => {
      try {
        handlers.onmessage(message, peer)
      } catch (err) {
        throw plain('handler threw', err, peer)
      }
    }
  }
  return guarded
}

module.exports = { PresenceFeed }
