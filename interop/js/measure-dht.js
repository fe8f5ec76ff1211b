#!/usr/bin/env node
'use strict'
/*
 * Measures DHT discovery on a local testnet (127.0.0.1 only): N Rust
 * `hyper-presence join` peers and one JavaScript hyperswarm peer
 * (swarm-peer.js) join one topic with no address. Reports, in ms from the
 * first spawn, when each peer first saw another peer and when every peer
 * saw all N+1; then, if --idle S, each Rust process's resident memory after
 * S seconds of quiet. Figures go to docs/DISCOVERY.md.
 *
 *   node measure-dht.js --bin target/release/hyper-presence --rust N [--idle S]
 *
 * The JavaScript peer is started once every Rust peer printed its ready
 * line: a hyperswarm client dials what its lookup finds, and looks up again
 * only every 10 minutes.
 */

const { spawn } = require('child_process')
const fs = require('fs')
const path = require('path')
const readline = require('readline')
const crypto = require('hypercore-crypto')

function arg (name, fallback) {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : process.argv[i + 1]
}

const bin = arg('--bin')
const rustCount = Number(arg('--rust', '2'))
const idle = Number(arg('--idle', '0'))
if (!bin) throw new Error('--bin PATH is required')

const procs = []
function start (cmd, args, onLine) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] })
  procs.push(child)
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      onLine(JSON.parse(line))
    } catch {}
  })
  return child
}

function rssKiB (pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1])
}

async function main () {
  const testnet = start('node', [path.join(__dirname, 'testnet.js')], () => {})
  const nodes = await new Promise((resolve) => {
    readline.createInterface({ input: testnet.stdout }).once('line', (l) => resolve(JSON.parse(l).nodes))
  })
  const bootstrap = nodes.slice(1)
  const writer = crypto.randomBytes(32)
  const key = crypto.keyPair(writer).publicKey.toString('hex')
  const total = rustCount + 1
  const peers = []
  const t0 = Date.now()
  let readyCount = 0
  let done
  const finished = new Promise((resolve) => { done = resolve })

  const check = () => {
    if (peers.length === total && peers.every((p) => p.online >= total) && !done.fired) {
      done.fired = true
      done(Date.now() - t0)
    }
  }
  const track = (peer) => (msg) => {
    if (msg.event === 'ready') {
      peer.ready = Date.now() - t0
      if (peer.kind === 'rust' && ++readyCount === rustCount) startJs()
    }
    if (msg.event === 'online') {
      const n = (msg.peers || msg.online).length
      peer.online = n
      if (n > 1 && peer.first === null) peer.first = Date.now() - t0 - peer.spawned
      check()
    }
  }
  for (let i = 0; i < rustCount; i++) {
    const peer = { kind: 'rust', spawned: Date.now() - t0, first: null, online: 0 }
    const args = ['join', '--no-mdns', '--json', '--ephemeral', '--key', key, '--dht-bind', '127.0.0.1:0']
    for (const b of bootstrap) args.push('--bootstrap', b)
    peer.child = start(bin, args, track(peer))
    peers.push(peer)
  }
  function startJs () {
    const peer = { kind: 'js', spawned: Date.now() - t0, first: null, online: 0 }
    const args = [path.join(__dirname, 'swarm-peer.js'), '--seed', crypto.randomBytes(32).toString('hex'),
      '--writer-seed', writer.toString('hex')]
    for (const b of bootstrap) args.push('--bootstrap', b)
    peer.child = start('node', args, track(peer))
    peers.push(peer)
  }
  const agreed = await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 180000, null))])
  const firsts = peers.filter((p) => p.first !== null).map((p) => p.first).sort((a, b) => a - b)
  const result = {
    rust: rustCount,
    js: 1,
    js_started_ms: peers.find((p) => p.kind === 'js')?.spawned ?? null,
    first_peer_ms: { median: firsts[Math.floor(firsts.length / 2)], max: firsts[firsts.length - 1] },
    full_agreement_ms: agreed,
    unagreed: peers.filter((p) => p.online < total).length
  }
  if (idle > 0 && agreed !== null) {
    await new Promise((resolve) => setTimeout(resolve, idle * 1000))
    const rss = peers.filter((p) => p.kind === 'rust').map((p) => rssKiB(p.child.pid)).sort((a, b) => a - b)
    result.idle_rss_kib = { median: rss[Math.floor(rss.length / 2)], max: rss[rss.length - 1] }
    result.rust_pids = peers.filter((p) => p.kind === 'rust').map((p) => p.child.pid)
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  if (arg('--hold')) {
    process.stderr.write('holding; press enter to stop\n')
    await new Promise((resolve) => process.stdin.once('data', resolve))
  }
  for (const p of procs) p.kill('SIGKILL')
  process.exit(0)
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const p of procs) p.kill('SIGKILL')
    process.exit(1)
  })
}

main().catch((err) => {
  process.stderr.write(`measure-dht.js: ${err && err.stack}\n`)
  for (const p of procs) p.kill('SIGKILL')
  process.exit(1)
})
