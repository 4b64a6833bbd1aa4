/**
 * Redis memory per signed-in user, measured on a real redis-server: N sessions made through the
 * same store modules as the IdP and the apps (Sessions, Tokens, UserIndex) (one session hash holding the IdP's handle and
 * one handle per app after a real token redemption, a little session data; the user's index), then
 * `MEMORY USAGE <key> SAMPLES 0` on one key of each kind, and `used_memory` before and after divided
 * by N (which also counts the key-space and expiry-table entries MEMORY USAGE leaves out).
 *
 * On one redis-server it also asks redis-benchmark how many page-view reads (one HMGET of the
 * session's identity, created-at, data and the handle's field; an HGETALL of the whole hash beside
 * it, the read before) and refreshing reads (the RESOLVE script: check the handle,
 * refresh the idle TTL, read the session) one Redis core answers on this machine.
 *
 *   node dist/bench/memory.js                                  # 10,000 users on one redis-server
 *   MEMORY_SESSIONS=50000 MEMORY_REDIS=cluster node dist/bench/memory.js
 *   MEMORY_HASH_MAX_LISTPACK_VALUE=512 node dist/bench/memory.js  # the compact hash encoding
 *
 * Not part of `npm test`. Build first (npx tsc -p .).
 */
import { Cluster, Redis } from 'ioredis'
import type { Handle, SessionUser } from '../src/shared/session.js'
import { storesFor } from '../test/helpers/stores.js'
import { signedInSession } from './lib/signed-in.js'
import { UserIndex } from '../src/shared/user-index.js'
import { keys as redisKeys, sessionKeyPattern } from '../src/shared/keys.js'
import { randomId } from '../src/shared/crypto.js'

const N = Number(process.env.MEMORY_SESSIONS ?? 10_000)
const TOPOLOGY = process.env.MEMORY_REDIS === 'cluster' ? 'cluster' : 'single'
const APPS = ['https://app.example.com', 'https://shop.example.com']
const IDP = 'https://sso.example.com'
const LIMITS = { idleMs: 3_600_000, absoluteMs: 8 * 3_600_000 }

/** A user as an Authelia-style users file gives one: name, display name, e-mail, two groups. */
const userOf = (i: number): SessionUser => ({
  username: `user${String(i).padStart(7, '0')}`,
  displayName: `Example User ${i}`,
  email: `user${i}@example.com`,
  groups: ['staff', 'app-users'],
})

async function main(): Promise<void> {
  const { redis, ports, stop } = await start()
  try {
    // Optional tuning to compare: e.g. MEMORY_HASH_MAX_LISTPACK_VALUE=512 keeps the session hash (its
    // user JSON field is over the default 64 bytes) in the compact listpack encoding.
    const listpack = process.env.MEMORY_HASH_MAX_LISTPACK_VALUE
    if (listpack !== undefined) for (const port of ports) await withNode(port, (c) => c.config('SET', 'hash-max-listpack-value', listpack))
    const stores = storesFor(redis)
    const { sessions: store, tokens } = stores
    const index = new UserIndex(redis)
    const before = await usedMemory(ports)
    const sids: string[] = []
    const first: Handle[] = []
    for (let i = 0; i < N; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, N - i) }, async (_, j) => {
        const user = userOf(i + j)
        const { idp: handle } = await signedInSession(stores, user, LIMITS, IDP, APPS)
        await index.add(user.username, handle.sid, LIMITS.absoluteMs) // the user index
        if (i + j === 0) { sids.push(handle.sid); first.push(handle) }
      }))
    }
    const after = await usedMemory(ports)
    const sid = sids[0] as string
    const keys = await keysOf(redis, sid)
    const usage = async (key: string): Promise<number> => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
    const sessionKey = keys.find((k) => k.endsWith(':s')) as string
    const handles = (await redis.hkeys(sessionKey)).filter((f) => f.startsWith('h:'))
    const indexKey = redisKeys.userIndex(userOf(0).username)
    const rows: [string, number][] = [
      [`session hash ({sid}:s, ${handles.length} handles)`, await usage(sessionKey)],
      ['user index ({u:…}:sessions, 1 member)', await usage(indexKey)],
    ]
    // A ticket lives 10 s at most (deleted when redeemed); measured on a fresh one.
    const jti = randomId(16)
    await tokens.record(sid, jti, 10_000)
    const ticketKey = (await keysOf(redis, sid)).find((k) => k.includes(':t:')) as string
    const ticket = await usage(ticketKey)
    const encoding = await redis.call('OBJECT', 'ENCODING', sessionKey)
    const perUser = (after - before) / N
    const sum = rows.reduce((a, [, b]) => a + b, 0)
    const out = [
      `Redis ${TOPOLOGY}${listpack === undefined ? '' : ` (hash-max-listpack-value ${listpack})`}, ${N.toLocaleString('en-US')} signed-in users, each: 1 session (${encoding}), ${handles.length} handles (IdP + ${APPS.length} apps), 1 user index`,
      ...rows.map(([k, v]) => `  MEMORY USAGE ${k.padEnd(40)} ${String(v).padStart(5)} B`),
      `  ${'sum of MEMORY USAGE per user'.padEnd(53)} ${String(sum).padStart(5)} B`,
      `  ${'used_memory delta / users (all overheads)'.padEnd(53)} ${String(Math.round(perUser)).padStart(5)} B`,
      `  (a hand-over token's id, alive <= 10 s: ${ticket} B)`,
      `  => 1,000,000 signed-in users: ~${(perUser * 1e6 / 2 ** 20).toFixed(0)} MiB of used_memory`,
    ]
    process.stdout.write(`${out.join('\n')}\n`)
    // The ceiling of one Redis core on this machine for the page view's read (one HMGET) and for
    // the refreshing read (the RESOLVE script), from redis-benchmark: 50 clients, no pipelining.
    let ceiling: number | undefined
    let refreshCeiling: number | undefined
    if (TOPOLOGY === 'single' && process.env.MEMORY_CEILING !== '0') {
      const handle = first[0] as Handle
      if (await store.resolve(handle, IDP) === undefined) throw new Error('resolve: no session') // loads the script
      const sha = (redis as unknown as { scriptsSet: Record<string, { sha: string }> }).scriptsSet.tesseraResolve?.sha as string
      const { execFileSync } = await import('node:child_process')
      const perSecond = (...command: string[]): number => {
        const csv = execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(ports[0]), '-c', '50', '-n', '200000', '--csv', ...command], { encoding: 'utf8' })
        return Number(/"[^"]*","([\d.]+)"/.exec(csv.split('\n').find((l) => l.toUpperCase().includes(command[0] as string)) ?? '')?.[1])
      }
      ceiling = perSecond('HMGET', sessionKey, 'u', 'c', 'd', redisKeys.handleField(handle.secret, IDP))
      const whole = perSecond('HGETALL', sessionKey)
      refreshCeiling = perSecond('EVALSHA', sha, '2', sessionKey, redisKeys.legacyHandle(handle.sid, handle.secret, IDP), redisKeys.handleField(handle.secret, IDP))
      process.stdout.write(`  page-view read (HMGET) on one Redis core (redis-benchmark, 50 clients): ${Math.round(ceiling).toLocaleString('en-US')}/s (the whole hash, HGETALL: ${Math.round(whole).toLocaleString('en-US')}/s)\n`)
      process.stdout.write(`  refreshing read (RESOLVE script), the same way: ${Math.round(refreshCeiling).toLocaleString('en-US')}/s\n`)
    }
    process.stdout.write(`${JSON.stringify({ pageview_read_per_s: ceiling, resolve_script_per_s: refreshCeiling, topology: TOPOLOGY, hash_max_listpack_value: listpack ?? 'default (64)', users: N, memory_usage_bytes: Object.fromEntries(rows), ticket_bytes: ticket, used_memory_per_user_bytes: Math.round(perUser), session_encoding: encoding })}\n`)
  } finally {
    await stop()
  }
}

async function keysOf(redis: Redis | Cluster, sid: string): Promise<string[]> {
  if (!(redis instanceof Cluster)) return redis.keys(sessionKeyPattern(sid))
  const all: string[] = []
  for (const node of redis.nodes('master')) all.push(...await node.keys(sessionKeyPattern(sid)))
  return all
}

async function withNode<T>(port: number, f: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis(port, '127.0.0.1')
  try {
    return await f(c)
  } finally {
    c.disconnect()
  }
}

async function usedMemory(ports: number[]): Promise<number> {
  let total = 0
  for (const port of ports) total += await withNode(port, async (c) => Number(/used_memory:(\d+)/.exec(await c.info('memory'))?.[1]))
  return total
}

async function start(): Promise<{ redis: Redis | Cluster; ports: number[]; stop: () => Promise<void> }> {
  if (TOPOLOGY === 'cluster') {
    const { startCluster } = await import('../test/helpers/redis-topologies.js')
    const c = await startCluster()
    const redis = new Cluster(c.nodes.map((n) => ({ ...n })))
    await new Promise((resolve) => redis.once('ready', resolve))
    return { redis, ports: c.nodes.map((n) => n.port), stop: async () => { redis.disconnect(); await c.stop() } }
  }
  const { startRedis } = await import('../test/helpers/redis-server.js')
  const r = await startRedis()
  const redis = new Redis(r.url)
  return { redis, ports: [r.port], stop: async () => { redis.disconnect(); await r.stop() } }
}

await main()
