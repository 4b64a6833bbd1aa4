/**
 * createRedis's Sentinel client follows a failover even when the failover is announced while its
 * reconnect is waiting for a sentinel's answer. ioredis's own SentinelConnector ended the client for
 * good there: every later command failed with "Connection is closed." (redis.ts, sentinelRedis).
 * The sentinels are reached through proxies that can hold new connections, so that the lookup is
 * surely under way when +switch-master comes.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Socket } from 'node:net'
import type { Redis } from 'ioredis'
import { createRedis } from '../../src/shared/redis.js'
import { startSentinelGroup, waitFor, type TestSentinelGroup } from '../helpers/redis-topologies.js'

const HOST = '127.0.0.1'

interface HoldingProxy {
  readonly port: number
  /** Connections accepted while held, not yet forwarded. */
  readonly held: number
  /** +switch-master messages forwarded to the client (on connections made before the hold). */
  readonly switches: number
  /** From now on, new connections are accepted but nothing is forwarded on them until release(). */
  hold(): void
  release(): void
  close(): Promise<void>
}

/** A TCP proxy to the sentinel on `target`. */
async function holdingProxy(target: number): Promise<HoldingProxy> {
  let holding = false
  let switches = 0
  const pending: (() => void)[] = []
  const sockets = new Set<Socket>()
  const track = (s: Socket): void => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
  }
  const server = createServer((client) => {
    track(client)
    // The client's bytes wait in its socket until piped.
    const forward = (): void => {
      const upstream = connect(target, HOST)
      track(upstream)
      upstream.on('close', () => client.destroy())
      client.on('close', () => upstream.destroy())
      upstream.on('data', (d: Buffer) => { if (d.includes('+switch-master')) switches++ })
      client.pipe(upstream)
      upstream.pipe(client)
    }
    if (holding) pending.push(forward)
    else forward()
  })
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  const addr = server.address()
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    get held() { return pending.length },
    get switches() { return switches },
    hold: () => { holding = true },
    release: () => {
      holding = false
      for (const f of pending.splice(0)) f()
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }),
  }
}

let group: TestSentinelGroup
let proxies: HoldingProxy[]

/** A client of the group through the proxies, as the IdP and the plugin make it. */
async function client(): Promise<Redis> {
  const redis = createRedis({ sentinels: proxies.map((p) => ({ host: HOST, port: p.port })), sentinelName: group.name }) as Redis
  redis.on('error', () => {}) // refused connections to the killed primary: expected
  after(() => { redis.disconnect() })
  return redis
}

before(async () => {
  group = await startSentinelGroup()
  proxies = await Promise.all(group.sentinels.map((s) => holdingProxy(s.port)))
})
after(async () => {
  await Promise.all(proxies.map((p) => p.close()))
  await group.stop()
})

test('a failover announced during a reconnect\'s sentinel lookup: the client asks again and reconnects to the new primary', async () => {
  const redis = await client()
  await waitFor('the client ready', async () => redis.status === 'ready')
  for (const p of proxies) p.hold()
  const old = await group.killPrimary()
  // The reconnect that follows asks a sentinel first, and waits on a held proxy. The client's
  // +switch-master subscriptions were made before the hold, so the announcement reaches it.
  await waitFor('a reconnect waiting for a sentinel', async () => proxies.some((p) => p.held > 0))
  const next = await group.waitForFailover(old)
  await waitFor('+switch-master passed to the client', async () => proxies.some((p) => p.switches > 0))
  for (const p of proxies) p.release()
  await waitFor('the client ready again (or ended)', async () => redis.status === 'ready' || redis.status === 'end', 15_000)
  assert.equal(redis.status, 'ready', 'the client did not end (every command then fails: "Connection is closed.")')
  assert.equal(await redis.set('tessera:test:sentinel-client', 'after the failover'), 'OK')
  assert.equal(Number((await redis.config('GET', 'port') as string[])[1]), next, 'on the new primary')
})

test('the owner\'s disconnect() during a sentinel lookup still ends the client', async () => {
  for (const p of proxies) p.hold()
  const redis = await client()
  await waitFor('the first lookup waiting for a sentinel', async () => proxies.some((p) => p.held > 0))
  redis.disconnect()
  for (const p of proxies) p.release()
  // 'end': ioredis will not reconnect (the lookup under way was not asked again).
  await waitFor('the client ended', async () => redis.status === 'end', 5000)
})
