/**
 * `npm run load`: 200 simulated users, all at once, each through the whole sign-in (app A → IdP form →
 * argon2 → token → app A), a hand-over to app B (no form) and 10 authenticated page views, against two
 * IdP replicas (two `node dist/src/server.js` processes, same configuration, one public URL) and two
 * apps (child processes with `tessera/remote`), on loopback only. The driver spreads its IdP requests
 * over both replicas, round robin, and gives every user its own source address (127.1.x.y), as real
 * users would have: the per-address sign-in regulation stays at its defaults.
 *
 * Bounded: LOAD_USERS users (200) per round, LOAD_WARMUP_ROUNDS warm-up rounds (1), then LOAD_ROUNDS
 * rounds (5), LOAD_VIEWS views each (10), then one page-view-only phase by the last round's users; the
 * whole run is stopped after LOAD_TIMEOUT_S seconds (300). It prints, per round: errors, p50/p99 of
 * sign-in, hand-over and page view, the IdPs' CPU and RSS and Redis's CPU per user; then the IdPs' RSS
 * before the measured rounds and after them (is memory flat?). Exit code 1 if any request failed.
 *
 *   npm run load                                  # build, then 1 + 5 rounds of 200 users on one redis-server
 *   LOAD_REDIS=cluster node dist/bench/load.js    # a 3-master Redis Cluster (REDIS_CLUSTER_NODES)
 *   LOAD_REDIS=sentinel node dist/bench/load.js   # primary + replica + 3 sentinels, REDIS_WAIT_REPLICAS=1
 *
 * Not part of `npm test`. Results also go to bench/results/load.json (ignored by git).
 */
import { freePort } from '../test/helpers/net.js'
import { formFields } from '../test/helpers/forms.js'
import { PASSWORD } from '../test/helpers/users.js'
import { redisCpuMs, redisUsedMemoryMb } from './lib/redis.js'
import { spawn, fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { hash } from '@node-rs/argon2'
import { Agent, request } from 'undici'
import { Redis } from 'ioredis'
import type { RedisConnection } from '../src/shared/redis.js'
import { encodeHandle } from '../src/shared/handle-cookie.js'
import { randomId } from '../src/shared/crypto.js'

const env = process.env
const int = (name: string, def: number): number => {
  const v = Number(env[name] ?? def)
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`)
  return v
}
const USERS = int('LOAD_USERS', 200)
const ROUNDS = int('LOAD_ROUNDS', 5)
const WARMUP_ROUNDS = env.LOAD_WARMUP_ROUNDS === '0' ? 0 : int('LOAD_WARMUP_ROUNDS', 1)
const VIEWS = int('LOAD_VIEWS', 10)
const TIMEOUT_S = int('LOAD_TIMEOUT_S', 300)
const TOPOLOGY = (env.LOAD_REDIS ?? 'single') as 'single' | 'cluster' | 'sentinel'
const HERE = fileURLToPath(new URL('.', import.meta.url)) // dist/bench/
const SERVER_JS = fileURLToPath(new URL('../src/server.js', import.meta.url))

// ------------------------------------------------------------------------------ app child process

interface AppChild { name: string; origin: string; host: string; port: number; idpUrl: string; syncKeys: string; sessionSecret: string; redis: string | RedisConnection; links: string[] }

/** The app side: the example app (examples/remote-app.ts) with `tessera/remote`, as its own process. */
async function runApp(): Promise<void> {
  const c = JSON.parse(env.LOAD_APP as string) as AppChild
  const { buildExampleApp } = await import('../examples/remote-app.js')
  const app = buildExampleApp({ name: c.name, origin: c.origin, idpUrl: c.idpUrl, syncKeys: c.syncKeys, sessionSecret: c.sessionSecret, redis: c.redis, links: c.links })
  await app.listen({ host: c.host, port: c.port })
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  process.on('disconnect', () => process.exit(0))
  process.send?.('ready')
}

// ------------------------------------------------------------------------------ the driver

interface Sample { signIn: number[]; handover: number[]; view: number[]; errors: string[] }

async function main(): Promise<number> {
  const started = performance.now()
  const dir = mkdtempSync(join(tmpdir(), 'tessera-load-'))
  const cleanups: (() => Promise<void> | void)[] = []
  const deadline = setTimeout(() => {
    process.stderr.write(`load: stopped after LOAD_TIMEOUT_S=${TIMEOUT_S} s\n`)
    void Promise.allSettled(cleanups.reverse().map((c) => c())).then(() => process.exit(1))
  }, TIMEOUT_S * 1000)
  try {
    log(`${USERS} users x ${ROUNDS} rounds, ${VIEWS} page views each; Redis: ${TOPOLOGY}; argon2id m=19456,t=2,p=1 (what tessera hash-password prints); ${cpus().length} cores; logs in ${dir}`)
    const redis = await startTopology(TOPOLOGY)
    cleanups.push(() => redis.stop())

    // One configuration for both IdP replicas; the public URL is the first replica's address.
    const [idpPort1, idpPort2, aPort, bPort] = await Promise.all([freePort('127.0.0.1'), freePort('127.0.0.1'), freePort('127.0.0.2'), freePort('127.0.0.3')])
    const idpUrl = `http://127.0.0.1:${idpPort1}`
    const appAUrl = `http://127.0.0.2:${aPort}`
    const appBUrl = `http://127.0.0.3:${bPort}`
    const syncKeys = `k1:${randomBytes(32).toString('base64url')}`
    const usersFile = join(dir, 'users.yml')
    const phc = await hash(PASSWORD) // @node-rs/argon2's defaults, as `tessera hash-password`
    writeFileSync(usersFile, `users:\n${Array.from({ length: USERS }, (_, i) => `  ${userName(i)}:\n    displayname: User ${i}\n    email: ${userName(i)}@example.com\n    password: "${phc}"\n    groups: [staff]\n`).join('')}`)
    const idpEnv = {
      PATH: env.PATH ?? '', NODE_ENV: 'production', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PUBLIC_URL: idpUrl,
      KNOWN_REMOTE_HOSTS: `${appAUrl},${appBUrl}`, SYNC_KEYS: syncKeys, SESSION_SECRET: randomBytes(32).toString('base64url'),
      USERS_FILE: usersFile, ...redis.idpEnv,
    }
    const idps = [idpPort1, idpPort2].map((port, i) => startIdp(`idp${i + 1}`, port, idpEnv, dir))
    for (const p of idps) cleanups.push(() => stopChild(p))
    const secretA = randomBytes(32).toString('base64url')
    const secretB = randomBytes(32).toString('base64url')
    const apps = [
      startApp({ name: 'App A', origin: appAUrl, host: '127.0.0.2', port: aPort, idpUrl, syncKeys, sessionSecret: secretA, redis: redis.appRedis, links: [appBUrl] }, dir),
      startApp({ name: 'App B', origin: appBUrl, host: '127.0.0.3', port: bPort, idpUrl, syncKeys, sessionSecret: secretB, redis: redis.appRedis, links: [appAUrl] }, dir),
    ]
    for (const p of apps) cleanups.push(() => stopChild(p))
    await Promise.all(apps.map((a) => a.ready))
    for (const [i, port] of [idpPort1, idpPort2].entries()) {
      const idp = idps[i] as Child
      const exited = new Promise<never>((_, reject) => idp.child.once('exit', (code) =>
        reject(new Error(`${idp.name} exited (${code}): ${readFileSync(join(dir, `${idp.name}.log`), 'utf8').slice(0, 500)}`))))
      await Promise.race([until(`http://127.0.0.1:${port}/readyz`, {}, 200), exited])
    }
    await until(`${appAUrl}/api/me`, { cookie: `tessera=${encodeHandle({ sid: randomId(16), secret: randomId(32) }, secretA, appAUrl)}` }, 401)
    await until(`${appBUrl}/api/me`, { cookie: `tessera=${encodeHandle({ sid: randomId(16), secret: randomId(32) }, secretB, appBUrl)}` }, 401)
    const idpPids = idps.map((p) => p.child.pid as number)
    const appPids = apps.map((p) => p.child.pid as number)

    const target: Target = { idpUrl, idpPorts: [idpPort1, idpPort2], appAUrl, appBUrl }
    const rss0 = idpPids.map(rssMb)
    log(`IdP RSS at start: ${rss0.map(mb).join(', ')}`)
    // Warm-up: one full round (its errors count too), so JIT, heap and connection pools reach their
    // working size for USERS concurrent users; the rounds after it show whether memory keeps growing.
    const warm: Sample = { signIn: [], handover: [], view: [], errors: [] }
    for (let w = 1; w <= WARMUP_ROUNDS; w++) warm.errors.push(...(await runRound(target, USERS, 50_000 + w * 1000)).errors)
    const rssBefore = idpPids.map(rssMb)
    log(`warm-up (${WARMUP_ROUNDS} round${WARMUP_ROUNDS === 1 ? '' : 's'}): ${warm.errors.length} errors; IdP RSS before the measured rounds: ${rssBefore.map(mb).join(', ')}`)

    const rounds: RoundResult[] = []
    const kept: SimulatedUser[] = [] // the last round's users, signed in, for the page-view phase
    for (let r = 1; r <= ROUNDS; r++) {
      const cpu0 = idpPids.map(cpuMs)
      const redis0 = (await redis.info()).cpu_ms
      const t0 = performance.now()
      const last = r === ROUNDS
      const s = await runRound(target, USERS, r * 1000, last ? kept : undefined)
      const wall = (performance.now() - t0) / 1000
      const cpu = idpPids.map((pid, i) => cpuMs(pid) - (cpu0[i] as number))
      const redisCpu = (await redis.info()).cpu_ms - redis0
      const result: RoundResult = {
        round: r, wall_s: round(wall, 2), errors: s.errors.length, first_errors: s.errors.slice(0, 5),
        sign_ins: s.signIn.length, sign_ins_per_s: round(s.signIn.length / wall, 1),
        sign_in_ms: pct(s.signIn), handover_ms: pct(s.handover), view_ms: pct(s.view), views: s.view.length,
        idp_cpu_ms: cpu.map((c) => round(c, 0)), idp_cpu_ms_per_user: round((cpu.reduce((a, b) => a + b, 0)) / USERS, 2),
        redis_cpu_ms_per_user: round(redisCpu / USERS, 3), idp_rss_mb: idpPids.map((pid) => round(rssMb(pid), 1)),
      }
      rounds.push(result)
      log(`round ${r}: ${USERS} users in ${result.wall_s} s, ${result.errors} errors; ` +
        `sign-in p50 ${result.sign_in_ms.p50} / p99 ${result.sign_in_ms.p99} ms; hand-over p50 ${result.handover_ms.p50} / p99 ${result.handover_ms.p99} ms; ` +
        `page view p50 ${result.view_ms.p50} / p99 ${result.view_ms.p99} ms (${result.views}); IdP CPU ${result.idp_cpu_ms.join(' + ')} ms ` +
        `(${result.idp_cpu_ms_per_user} ms a user), Redis CPU ${result.redis_cpu_ms_per_user} ms a user; IdP RSS ${result.idp_rss_mb.map(mb).join(', ')}`)
      for (const e of s.errors.slice(0, 5)) log(`  error: ${e}`)
    }
    // Page views only: the last round's users, all at once, VIEWS more views each. The IdP is not involved.
    const views: number[] = []
    const viewErrors: string[] = []
    const idpCpuV = idpPids.map(cpuMs)
    const redisV = (await redis.info()).cpu_ms
    const tv = performance.now()
    await Promise.all(kept.map(async (u) => {
      try { await u.views(views) } catch (err) { viewErrors.push((err as Error).message) } finally { await u.close() }
    }))
    const wallV = (performance.now() - tv) / 1000
    const viewPhase = {
      views: views.length, errors: viewErrors.length, views_per_s: round(views.length / wallV, 0), view_ms: pct(views),
      redis_cpu_us_per_view: round(((await redis.info()).cpu_ms - redisV) * 1000 / Math.max(1, views.length), 1),
      idp_cpu_ms: idpPids.map((pid, i) => round(cpuMs(pid) - (idpCpuV[i] as number), 0)),
    }
    log(`page views only: ${viewPhase.views} views by ${kept.length} users in ${round(wallV, 2)} s (${viewPhase.views_per_s}/s), ${viewPhase.errors} errors; ` +
      `p50 ${viewPhase.view_ms.p50} / p99 ${viewPhase.view_ms.p99} ms; Redis CPU ${viewPhase.redis_cpu_us_per_view} us a view; IdP CPU meanwhile ${viewPhase.idp_cpu_ms.join(' + ')} ms`)
    const rssAfter = idpPids.map(rssMb)
    const appRss = appPids.map(rssMb)
    const redisInfo = await redis.info()
    const errors = warm.errors.length + rounds.reduce((n, r) => n + r.errors, 0) + viewErrors.length
    const json = {
      users: USERS, warmup_rounds: WARMUP_ROUNDS, rounds: ROUNDS, views_per_user: VIEWS, redis: TOPOLOGY, argon2: 'm=19456,t=2,p=1',
      errors,
      idp_rss_mb: { at_start: rss0.map((x) => round(x, 1)), before_rounds: rssBefore.map((x) => round(x, 1)), after_rounds: rssAfter.map((x) => round(x, 1)) },
      app_rss_mb_after_rounds: appRss.map((x) => round(x, 1)),
      per_round: rounds,
      page_views_only: viewPhase,
      redis_after: redisInfo,
      machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', node: process.version },
      wall_time_s: round((performance.now() - started) / 1000, 1),
      generated_at: new Date().toISOString(),
    }
    log(`IdP RSS before the measured rounds ${rssBefore.map(mb).join(', ')}; after ${ROUNDS} rounds ${rssAfter.map(mb).join(', ')} (apps: ${appRss.map(mb).join(', ')})`)
    log(`Redis after the run: ${redisInfo.keys} keys, ${redisInfo.used_memory_mb} MB`)
    log(errors === 0 ? 'zero errors' : `${errors} ERRORS`)
    const resultsDir = join(HERE, '..', '..', 'bench', 'results')
    mkdirSync(resultsDir, { recursive: true })
    writeFileSync(join(resultsDir, 'load.json'), `${JSON.stringify(json, null, 2)}\n`)
    log(`wrote ${join(resultsDir, 'load.json')}`)
    return errors === 0 ? 0 : 1
  } finally {
    clearTimeout(deadline)
    for (const c of cleanups.reverse()) await c()
  }
}

interface RedisInfo { keys: number; used_memory_mb: number; cpu_ms: number }
interface Target { idpUrl: string; idpPorts: readonly number[]; appAUrl: string; appBUrl: string }
interface Percentiles { p50: number; p90: number; p99: number; max: number }
interface RoundResult {
  round: number; wall_s: number; errors: number; first_errors: string[]; sign_ins: number; sign_ins_per_s: number
  sign_in_ms: Percentiles; handover_ms: Percentiles; view_ms: Percentiles; views: number; idp_cpu_ms: number[]; idp_cpu_ms_per_user: number
  redis_cpu_ms_per_user: number; idp_rss_mb: number[]
}

/** `count` users at once, each: sign in through app A, hand over to app B, then VIEWS page views. */
/** `count` users at once, each: sign in, hand over, VIEWS views. With `keep`, users who made it are kept open there. */
async function runRound(t: Target, count: number, addressBase: number, keep?: SimulatedUser[]): Promise<Sample> {
  const sample: Sample = { signIn: [], handover: [], view: [], errors: [] }
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    const user = new SimulatedUser(t, i % USERS, sourceAddress(addressBase + i), i % 2)
    let ok = false
    try {
      await user.run(sample)
      ok = true
    } catch (err) {
      sample.errors.push(`${userName(i % USERS)}: ${(err as Error).message}`)
    } finally {
      if (ok && keep !== undefined) keep.push(user)
      else await user.close()
    }
  }))
  return sample
}

class SimulatedUser {
  readonly #jars = new Map<string, Map<string, string>>()
  readonly #agent: Agent
  #next: number

  constructor(private readonly t: Target, private readonly index: number, localAddress: string, firstReplica: number) {
    this.#agent = new Agent({ localAddress, headersTimeout: 30_000, bodyTimeout: 30_000 })
    this.#next = firstReplica
  }

  async run(sample: Sample): Promise<void> {
    const name = userName(this.index)
    const who = `Signed in as <strong>User ${this.index}</strong>`
    let t0 = performance.now()
    const first = await this.#expect('GET', `${this.t.appAUrl}/private`, 302, 'app A asks for a sign-in')
    const form = await this.#expect('GET', first.location, 200, 'login form')
    const fields = formFields(form.body)
    if (fields.csrf === undefined) throw new Error('login form without csrf')
    const posted = await this.#expect('POST', `${this.t.idpUrl}/login`, 303, 'POST /login', { ...fields, username: name, password: PASSWORD })
    const redeemed = await this.#expect('GET', posted.location, 302, 'redeem at app A')
    const page = await this.#expect('GET', redeemed.location, 200, 'app A private page')
    if (!page.body.includes(who)) throw new Error('app A shows someone else')
    sample.signIn.push(performance.now() - t0)

    t0 = performance.now()
    const toIdp = await this.#expect('GET', `${this.t.appBUrl}/private`, 302, 'app B asks for a sign-in')
    const back = await this.#expect('GET', toIdp.location, 302, 'IdP hands over (no form)')
    const redeemedB = await this.#expect('GET', back.location, 302, 'redeem at app B')
    const pageB = await this.#expect('GET', redeemedB.location, 200, 'app B private page')
    if (!pageB.body.includes(who)) throw new Error('app B shows someone else')
    sample.handover.push(performance.now() - t0)

    await this.views(sample.view)
  }

  /** VIEWS authenticated page views, alternating app A and app B; each must show this user. */
  async views(into: number[]): Promise<void> {
    const who = `Signed in as <strong>User ${this.index}</strong>`
    for (let v = 0; v < VIEWS; v++) {
      const t0 = performance.now()
      const view = await this.#expect('GET', `${v % 2 === 0 ? this.t.appAUrl : this.t.appBUrl}/private`, 200, `page view ${v + 1}`)
      if (!view.body.includes(who)) throw new Error(`page view ${v + 1} shows someone else`)
      into.push(performance.now() - t0)
    }
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }

  /** One request, cookies per host name; IdP requests go to the replicas in turn. */
  async #expect(method: 'GET' | 'POST', url: string, status: number, step: string, form?: Record<string, string>): Promise<{ location: string; body: string }> {
    const u = new URL(url)
    if (u.hostname === '127.0.0.1' && this.t.idpPorts.includes(Number(u.port))) {
      u.port = String(this.t.idpPorts[this.#next++ % this.t.idpPorts.length])
    }
    const jar = this.#jars.get(u.hostname) ?? new Map<string, string>()
    this.#jars.set(u.hostname, jar)
    const headers: Record<string, string> = { accept: 'text/html' }
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const body = form === undefined ? undefined : new URLSearchParams(form).toString()
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const res = await request(u, { method, headers, body, dispatcher: this.#agent })
    const set = res.headers['set-cookie']
    for (const line of set === undefined ? [] : Array.isArray(set) ? set : [set]) {
      const [pair = '', ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const k = pair.slice(0, eq).trim()
      const v = pair.slice(eq + 1).trim()
      if (v === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(k)
      else jar.set(k, v)
    }
    const text = await res.body.text()
    if (res.statusCode !== status) throw new Error(`${step}: ${res.statusCode} (expected ${status}) from ${method} ${u.origin}${u.pathname}`)
    const loc = res.headers.location
    return { location: typeof loc === 'string' ? new URL(loc, u).href : '', body: text }
  }
}

// ------------------------------------------------------------------------------ processes

interface Child { name: string; child: ChildProcess; ready: Promise<void> }

function startIdp(name: string, port: number, idpEnv: Record<string, string>, dir: string): Child {
  const logFd = openSync(join(dir, `${name}.log`), 'a')
  // cwd: the temp dir, so no .env of the checkout is read; the environment is all the configuration.
  const child = spawn(process.execPath, [SERVER_JS], { env: { ...idpEnv, PORT: String(port) }, cwd: dir, stdio: ['ignore', logFd, logFd] })
  closeSync(logFd)
  process.on('exit', () => child.kill('SIGKILL')) // never outlive the driver, even if it crashes
  return { name, child, ready: Promise.resolve() }
}

function startApp(c: AppChild, dir: string): Child {
  const logFd = openSync(join(dir, `${c.host}.log`), 'a')
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { PATH: env.PATH ?? '', NODE_ENV: 'production', LOAD_ROLE: 'app', LOAD_APP: JSON.stringify(c) },
    cwd: dir, stdio: ['ignore', logFd, logFd, 'ipc'],
  })
  closeSync(logFd)
  const ready = new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code) => reject(new Error(`${c.name} exited (${code}); see ${dir}`)))
  })
  return { name: c.name, child, ready }
}

async function stopChild(c: Child): Promise<void> {
  const p = c.child
  if (p.exitCode !== null || p.signalCode !== null) return
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()))
  p.kill('SIGTERM')
  const timer = setTimeout(() => p.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

interface Topology {
  idpEnv: Record<string, string>
  appRedis: string | RedisConnection
  /** Keys, used memory and the servers' own CPU time so far (INFO cpu), summed over the data nodes. */
  info(): Promise<RedisInfo>
  stop(): Promise<void>
}

/** The Redis the run uses, from the test helpers (real servers on free loopback ports). */
async function startTopology(kind: 'single' | 'cluster' | 'sentinel'): Promise<Topology> {
  const sizeOf = async (ports: number[]): Promise<RedisInfo> => {
    let keys = 0
    let memoryMb = 0
    let cpu = 0
    for (const port of ports) {
      const c = new Redis(port, '127.0.0.1')
      keys += await c.dbsize()
      memoryMb += await redisUsedMemoryMb(c)
      cpu += await redisCpuMs(c)
      c.disconnect()
    }
    return { keys, used_memory_mb: round(memoryMb, 1), cpu_ms: cpu }
  }
  if (kind === 'cluster') {
    const { startCluster } = await import('../test/helpers/redis-topologies.js')
    const c = await startCluster()
    return { idpEnv: { REDIS_CLUSTER_NODES: c.nodesEnv }, appRedis: { clusterNodes: c.nodes }, info: () => sizeOf(c.nodes.map((n) => n.port)), stop: () => c.stop() }
  }
  if (kind === 'sentinel') {
    const { startSentinelGroup } = await import('../test/helpers/redis-topologies.js')
    const g = await startSentinelGroup()
    return {
      idpEnv: { REDIS_SENTINELS: g.sentinelsEnv, REDIS_SENTINEL_NAME: g.name, REDIS_WAIT_REPLICAS: '1' },
      appRedis: { sentinels: g.sentinels, sentinelName: g.name },
      info: async () => sizeOf([await g.primaryPort()]),
      stop: () => g.stop(),
    }
  }
  const { startRedis } = await import('../test/helpers/redis-server.js')
  const r = await startRedis()
  return { idpEnv: { REDIS_URL: r.url }, appRedis: r.url, info: () => sizeOf([r.port]), stop: () => r.stop() }
}

// ------------------------------------------------------------------------------ small helpers

function userName(i: number): string {
  return `user${String(i).padStart(3, '0')}`
}

/** A distinct loopback source address per simulated user (127.1.0.1, 127.1.0.2, ...). */
function sourceAddress(n: number): string {
  return `127.1.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`
}

/** Polls until `url` answers `status` (20 s at most). */
async function until(url: string, headers: Record<string, string>, status: number): Promise<void> {
  let last = 0
  for (let i = 0; i < 200; i++) {
    try {
      const res = await request(url, { headers: { accept: 'application/json', ...headers } })
      await res.body.dump()
      last = res.statusCode
      if (last === status) return
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url}: not ${status} after 20 s (last ${last})`)
}

/** Resident set size of a process, in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
  return kb / 1024
}

/** User + system CPU time of a process so far, in ms, from /proc (Linux; USER_HZ = 100). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

function pct(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b)
  const at = (p: number): number => round(s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN, 1)
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(s[s.length - 1] ?? NaN, 1) }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

const mb = (x: number): string => `${x.toFixed(1)} MB`

function log(line: string): void {
  process.stdout.write(`${line}\n`)
}

// ------------------------------------------------------------------------------ entry point (last: every const above is initialised)

if (env.LOAD_ROLE === 'app') await runApp()
else process.exitCode = await main()
