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
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { hash } from '@node-rs/argon2'
import { freePort } from '../test/helpers/net.js'
import { PASSWORD } from '../test/helpers/users.js'
import { untilAppReadsRedis, untilStatus } from '../test/helpers/wait.js'
import { cpuMs, rssMb, startApp, startIdp, startTopology, stopChild, type Child, type Topology } from './load/processes.js'
import { SimulatedUser, userName, type Sample, type Target } from './load/user.js'
import { percentile, round } from './lib/stats.js'

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
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url)) // dist/bench/ -> bench/results/

interface Percentiles { p50: number; p90: number; p99: number; max: number }
interface RoundResult {
  round: number; wall_s: number; errors: number; first_errors: string[]; sign_ins: number; sign_ins_per_s: number
  sign_in_ms: Percentiles; handover_ms: Percentiles; view_ms: Percentiles; views: number; idp_cpu_ms: number[]; idp_cpu_ms_per_user: number
  redis_cpu_ms_per_user: number; idp_rss_mb: number[]
}

/** The running system: the Redis topology, two IdP replicas, two apps. */
interface System { redis: Topology; target: Target; idpPids: number[]; appPids: number[] }

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
    const sys = await startSystem(dir, cleanups)
    const rss0 = sys.idpPids.map(rssMb)
    log(`IdP RSS at start: ${rss0.map(mb).join(', ')}`)
    // Warm-up: one full round (its errors count too), so JIT, heap and connection pools reach their
    // working size for USERS concurrent users; the rounds after it show whether memory keeps growing.
    const warmErrors: string[] = []
    for (let w = 1; w <= WARMUP_ROUNDS; w++) warmErrors.push(...(await runRound(sys.target, USERS, 50_000 + w * 1000)).errors)
    const rssBefore = sys.idpPids.map(rssMb)
    log(`warm-up (${WARMUP_ROUNDS} round${WARMUP_ROUNDS === 1 ? '' : 's'}): ${warmErrors.length} errors; IdP RSS before the measured rounds: ${rssBefore.map(mb).join(', ')}`)
    const { rounds, kept } = await measuredRounds(sys)
    const viewPhase = await pageViewPhase(sys, kept)
    const rssAfter = sys.idpPids.map(rssMb)
    const appRss = sys.appPids.map(rssMb)
    const redisInfo = await sys.redis.info()
    const errors = warmErrors.length + rounds.reduce((n, r) => n + r.errors, 0) + viewPhase.errors
    writeResults({
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
    }, () => {
      log(`IdP RSS before the measured rounds ${rssBefore.map(mb).join(', ')}; after ${ROUNDS} rounds ${rssAfter.map(mb).join(', ')} (apps: ${appRss.map(mb).join(', ')})`)
      log(`Redis after the run: ${redisInfo.keys} keys, ${redisInfo.used_memory_mb} MB`)
      log(errors === 0 ? 'zero errors' : `${errors} ERRORS`)
    })
    return errors === 0 ? 0 : 1
  } finally {
    clearTimeout(deadline)
    for (const c of cleanups.reverse()) await c()
  }
}

/** Redis, two IdP replicas (one configuration, the public URL is the first's address) and two apps, all ready. */
async function startSystem(dir: string, cleanups: (() => Promise<void> | void)[]): Promise<System> {
  const redis = await startTopology(TOPOLOGY)
  cleanups.push(() => redis.stop())
  const [idpPort1, idpPort2, aPort, bPort] = await Promise.all([freePort('127.0.0.1'), freePort('127.0.0.1'), freePort('127.0.0.2'), freePort('127.0.0.3')]) as [number, number, number, number]
  const idpUrl = `http://127.0.0.1:${idpPort1}`
  const appAUrl = `http://127.0.0.2:${aPort}`
  const appBUrl = `http://127.0.0.3:${bPort}`
  const syncKeys = `k1:${randomBytes(32).toString('base64url')}`
  const idpEnv = {
    PATH: env.PATH ?? '', NODE_ENV: 'production', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PUBLIC_URL: idpUrl,
    KNOWN_REMOTE_HOSTS: `${appAUrl},${appBUrl}`, SYNC_KEYS: syncKeys, SESSION_SECRET: randomBytes(32).toString('base64url'),
    USERS_FILE: await writeLoadUsers(dir), ...redis.idpEnv,
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
  for (const [i, port] of [idpPort1, idpPort2].entries()) await idpReady(idps[i] as Child, port, dir)
  await untilAppReadsRedis(appAUrl, secretA)
  await untilAppReadsRedis(appBUrl, secretB)
  const target: Target = { idpUrl, idpPorts: [idpPort1, idpPort2], appAUrl, appBUrl }
  return { redis, target, idpPids: idps.map((p) => p.child.pid as number), appPids: apps.map((p) => p.child.pid as number) }
}

/** USERS users, with @node-rs/argon2's default costs (as `tessera hash-password` prints). */
async function writeLoadUsers(dir: string): Promise<string> {
  const usersFile = join(dir, 'users.yml')
  const phc = await hash(PASSWORD)
  writeFileSync(usersFile, `users:\n${Array.from({ length: USERS }, (_, i) => `  ${userName(i)}:\n    displayname: User ${i}\n    email: ${userName(i)}@example.com\n    password: "${phc}"\n    groups: [staff]\n`).join('')}`)
  return usersFile
}

/** Until the replica answers /readyz with 200; its exit before that fails the run with its log. */
async function idpReady(idp: Child, port: number, dir: string): Promise<void> {
  const exited = new Promise<never>((_, reject) => idp.child.once('exit', (code) =>
    reject(new Error(`${idp.name} exited (${code}): ${readFileSync(join(dir, `${idp.name}.log`), 'utf8').slice(0, 500)}`))))
  await Promise.race([untilStatus(`http://127.0.0.1:${port}/readyz`, {}, 200), exited])
}

/** ROUNDS measured rounds; the last round's users are kept signed in, for the page-view phase. */
async function measuredRounds(sys: System): Promise<{ rounds: RoundResult[]; kept: SimulatedUser[] }> {
  const rounds: RoundResult[] = []
  const kept: SimulatedUser[] = []
  for (let r = 1; r <= ROUNDS; r++) {
    const cpu0 = sys.idpPids.map(cpuMs)
    const redis0 = (await sys.redis.info()).cpu_ms
    const t0 = performance.now()
    const s = await runRound(sys.target, USERS, r * 1000, r === ROUNDS ? kept : undefined)
    const wall = (performance.now() - t0) / 1000
    const cpu = sys.idpPids.map((pid, i) => cpuMs(pid) - (cpu0[i] as number))
    const redisCpu = (await sys.redis.info()).cpu_ms - redis0
    const result: RoundResult = {
      round: r, wall_s: round(wall, 2), errors: s.errors.length, first_errors: s.errors.slice(0, 5),
      sign_ins: s.signIn.length, sign_ins_per_s: round(s.signIn.length / wall, 1),
      sign_in_ms: pct(s.signIn), handover_ms: pct(s.handover), view_ms: pct(s.view), views: s.view.length,
      idp_cpu_ms: cpu.map((c) => round(c, 0)), idp_cpu_ms_per_user: round((cpu.reduce((a, b) => a + b, 0)) / USERS, 2),
      redis_cpu_ms_per_user: round(redisCpu / USERS, 3), idp_rss_mb: sys.idpPids.map((pid) => round(rssMb(pid), 1)),
    }
    rounds.push(result)
    log(`round ${r}: ${USERS} users in ${result.wall_s} s, ${result.errors} errors; ` +
      `sign-in p50 ${result.sign_in_ms.p50} / p99 ${result.sign_in_ms.p99} ms; hand-over p50 ${result.handover_ms.p50} / p99 ${result.handover_ms.p99} ms; ` +
      `page view p50 ${result.view_ms.p50} / p99 ${result.view_ms.p99} ms (${result.views}); IdP CPU ${result.idp_cpu_ms.join(' + ')} ms ` +
      `(${result.idp_cpu_ms_per_user} ms a user), Redis CPU ${result.redis_cpu_ms_per_user} ms a user; IdP RSS ${result.idp_rss_mb.map(mb).join(', ')}`)
    for (const e of s.errors.slice(0, 5)) log(`  error: ${e}`)
  }
  return { rounds, kept }
}

/** Page views only: the last round's users, all at once, VIEWS more views each. The IdP is not involved. */
async function pageViewPhase(sys: System, kept: SimulatedUser[]): Promise<{ views: number; errors: number; views_per_s: number; view_ms: Percentiles; redis_cpu_us_per_view: number; idp_cpu_ms: number[] }> {
  const views: number[] = []
  const viewErrors: string[] = []
  const idpCpuV = sys.idpPids.map(cpuMs)
  const redisV = (await sys.redis.info()).cpu_ms
  const tv = performance.now()
  await Promise.all(kept.map(async (u) => {
    try { await u.pageViews(views) } catch (err) { viewErrors.push((err as Error).message) } finally { await u.close() }
  }))
  const wallV = (performance.now() - tv) / 1000
  const viewPhase = {
    views: views.length, errors: viewErrors.length, views_per_s: round(views.length / wallV, 0), view_ms: pct(views),
    redis_cpu_us_per_view: round(((await sys.redis.info()).cpu_ms - redisV) * 1000 / Math.max(1, views.length), 1),
    idp_cpu_ms: sys.idpPids.map((pid, i) => round(cpuMs(pid) - (idpCpuV[i] as number), 0)),
  }
  log(`page views only: ${viewPhase.views} views by ${kept.length} users in ${round(wallV, 2)} s (${viewPhase.views_per_s}/s), ${viewPhase.errors} errors; ` +
    `p50 ${viewPhase.view_ms.p50} / p99 ${viewPhase.view_ms.p99} ms; Redis CPU ${viewPhase.redis_cpu_us_per_view} us a view; IdP CPU meanwhile ${viewPhase.idp_cpu_ms.join(' + ')} ms`)
  return viewPhase
}

/** Prints the closing lines (`summary`), then writes bench/results/load.json. */
function writeResults(json: Record<string, unknown>, summary: () => void): void {
  summary()
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(join(RESULTS_DIR, 'load.json'), `${JSON.stringify(json, null, 2)}\n`)
  log(`wrote ${join(RESULTS_DIR, 'load.json')}`)
}

/** `count` users at once, each: sign in, hand over, VIEWS views. With `keep`, users who made it are kept open there. */
async function runRound(t: Target, count: number, addressBase: number, keep?: SimulatedUser[]): Promise<Sample> {
  const sample: Sample = { signIn: [], handover: [], view: [], errors: [] }
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    const user = new SimulatedUser(t, i % USERS, sourceAddress(addressBase + i), i % 2, VIEWS)
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

/** A distinct loopback source address per simulated user (127.1.0.1, 127.1.0.2, ...). */
function sourceAddress(n: number): string {
  return `127.1.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`
}

function pct(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b)
  const at = (p: number): number => round(percentile(s, p), 1)
  return { p50: at(50), p90: at(90), p99: at(99), max: round(s[s.length - 1] ?? NaN, 1) }
}

const mb = (x: number): string => `${x.toFixed(1)} MB`

function log(line: string): void {
  process.stdout.write(`${line}\n`)
}

process.exitCode = await main()
