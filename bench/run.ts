/**
 * `npm run bench`: Tessera against oidc-provider + openid-client and against @fastify/session, on
 * loopback, every server in its own child process, one redis-server of our own. See bench/README.md.
 *
 * Environment: ROUNDS (default 3), DURATION seconds per measurement (5), WARMUP seconds per system
 * (5; the OIDC stack gets OIDC_WARMUP, 10), CONCURRENCY (10), BENCH_QUICK=1 (1 s measurements,
 * short warm-ups), BENCH_PROFILE=idp,app,... (run those children with --cpu-prof),
 * BENCH_LOG_LEVEL (warn), BENCH_OIDC_VERIFY_SIGNATURE=1 (RP also checks the ID token's JWS),
 * BENCH_ONLY=handover,oidc,bare,pageview,mint (a subset, e.g. to profile one path; the JSON is then partial),
 * BENCH_REDIS_AUTOPIPELINING=1 (experiment: the IdP and app get ioredis clients with enableAutoPipelining).
 */
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, randomFillSync, webcrypto } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { Agent } from 'undici'
import { CompactEncrypt, compactDecrypt } from 'jose'
import { mintToken, openToken } from '../src/shared/token.js'
import { parseSyncKeys } from '../src/shared/keyring.js'
import { Browser, type Page } from '../test/helpers/browser.js'
import { formAction, formFields } from '../test/helpers/forms.js'
import { PASSWORD, USERNAME, writeUsersFile } from '../test/helpers/users.js'
import { WHO, page, type ChildConfig } from './lib/common.js'
import { ServerProcess, type ChildStats } from './lib/proc.js'
import { freePort } from '../test/helpers/net.js'
import { startBenchRedis, type BenchRedis } from './lib/redis.js'
import { fmt, percentile, round, summarize, type Summary } from './lib/stats.js'

// ---------------------------------------------------------------- settings

const env = process.env
const QUICK = env.BENCH_QUICK === '1'
const num = (name: string, fallback: number): number => {
  const v = env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number, got "${v}"`)
  return n
}
const ROUNDS = Math.round(num('ROUNDS', 3))
const DURATION_S = num('DURATION', QUICK ? 1 : 5)
const WARMUP_S = num('WARMUP', QUICK ? 1 : 5)
const OIDC_WARMUP_S = num('OIDC_WARMUP', QUICK ? 2 : 10)
const CONCURRENCY = Math.round(num('CONCURRENCY', 10))
/** Unmeasured seconds at the start of each hand-over measurement (connections, JIT after idling). */
const LEAD_IN_S = QUICK ? 0.3 : 1
const MINT_OPEN_S = Math.min(DURATION_S, 2)
const LOG_LEVEL = env.BENCH_LOG_LEVEL ?? 'warn'
const PROFILE = new Set((env.BENCH_PROFILE ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''))
const VERIFY_SIGNATURE = env.BENCH_OIDC_VERIFY_SIGNATURE === '1'
const AUTO_PIPELINING = env.BENCH_REDIS_AUTOPIPELINING === '1'
const ONLY = new Set((env.BENCH_ONLY ?? 'handover,oidc,bare,pageview,mint').split(',').map((s) => s.trim()))

const HOSTS = {
  idp: '127.0.0.1', app: '127.0.0.2', op: '127.0.0.3', rp: '127.0.0.4',
  fastifySession: '127.0.0.5', fastifySessionDefault: '127.0.0.6', hello: '127.0.0.7',
  bareIdp: '127.0.0.8', bareApp: '127.0.0.9',
} as const

const here = new URL('.', import.meta.url)
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url)) // dist/bench/ -> bench/results/
const runDir = join(tmpdir(), `tessera-bench-${new Date().toISOString().replace(/[:.]/g, '-')}`)

// ---------------------------------------------------------------- small helpers

class CheckError extends Error {}
function expect(cond: boolean, what: string): asserts cond {
  if (!cond) throw new CheckError(what)
}
const log = (line: string): void => { process.stdout.write(`${line}\n`) }
const describe = (r: Page): string => `${r.status}${r.location() === undefined ? '' : ` -> ${(r.location() as string).slice(0, 80)}`}`
const startsWith = (prefix: string) => (location: string): boolean => location.startsWith(prefix)
const is = (url: string) => (location: string): boolean => location === url

/** Checks that `r` redirects (one of `statuses`) to where `where` accepts, and returns the Location. */
function redirect(r: Page, statuses: readonly number[], where: (location: string) => boolean, what: string): string {
  const location = r.location()
  expect(statuses.includes(r.status) && location !== undefined && where(location), `${what}: ${describe(r)}`)
  return location
}

/** The load driver's browser: undici's dispatch API over `agent`'s kept-alive connections. */
const benchBrowser = (agent: Agent): Browser => new Browser({ dispatcher: agent, accept: 'text/html,application/xhtml+xml', userAgent: 'tessera-bench' })

// ---------------------------------------------------------------- the two hand-overs

interface HandoverSystem {
  readonly name: string
  /** The servers whose CPU is charged to the hand-over: the provider side and the app side. */
  readonly servers: readonly ServerProcess[]
  readonly browsers: readonly Browser[]
  /** One complete, checked hand-over for a browser already signed in at the provider. */
  handover(b: Browser): Promise<void>
}

/**
 * Tessera (and the bare floor, same steps): app without session -> IdP /login -> 302 with token ->
 * app redeems -> 302 clean URL -> page.
 */
async function redirectHandover(b: Browser, appHost: string, appUrl: string, idpUrl: string): Promise<void> {
  b.clear(appHost) // no session at the app yet; the IdP session stays
  const start = `${appUrl}/private`
  let r = await b.get(start)
  r = await b.get(redirect(r, [302], startsWith(`${idpUrl}/login?`), 'app without session'))
  r = await b.get(redirect(r, [302], startsWith(`${appUrl}/private?token=`), 'IdP /login'))
  r = await b.get(redirect(r, [302], is(start), 'app redeeming the token'))
  expect(r.status === 200 && r.body.includes(WHO), `app page: ${r.status} ${r.body.slice(0, 80)}`)
}

/** Sign-in at the IdP once (the login form, argon2 and all), ending on the app's page. */
async function tesseraSignIn(b: Browser, appUrl: string, idpUrl: string): Promise<void> {
  let r = await b.get(`${appUrl}/private`)
  r = await b.get(redirect(r, [302], startsWith(`${idpUrl}/login?`), 'sign-in, app'))
  expect(r.status === 200, `sign-in, login form: ${r.status}`)
  r = await b.post(`${idpUrl}/login`, { ...formFields(r.body), username: USERNAME, password: PASSWORD })
  r = await b.get(redirect(r, [303], startsWith(`${appUrl}/private?token=`), 'sign-in, POST /login'))
  r = await b.get(redirect(r, [302], () => true, 'sign-in, redeem'))
  expect(r.status === 200 && r.body.includes(WHO), `sign-in, page: ${r.status}`)
}

/** OIDC: RP without session -> /auth -> 302 with code -> RP exchanges it (PKCE) and validates the ID token -> 302 -> page. */
async function oidcHandover(b: Browser, rpUrl: string, opUrl: string): Promise<void> {
  b.clear(HOSTS.rp)
  const start = `${rpUrl}/private`
  let r = await b.get(start)
  r = await b.get(redirect(r, [302], startsWith(`${opUrl}/auth?`), 'RP without session'))
  r = await b.get(redirect(r, [302, 303], startsWith(`${rpUrl}/cb?code=`), 'OP /auth'))
  r = await b.get(redirect(r, [302], is(start), 'RP callback'))
  expect(r.status === 200 && r.body.includes(WHO), `RP page: ${r.status} ${r.body.slice(0, 80)}`)
}

/** One real interaction at the provider (login form, then consent), through its documented interaction API. */
async function oidcSignIn(b: Browser, rpUrl: string): Promise<void> {
  let url = `${rpUrl}/private`
  const trail: string[] = []
  for (let hops = 0; hops < 20; hops++) {
    const r = await b.get(url)
    trail.push(`${r.status} ${url.slice(0, 60)}`)
    const location = r.location()
    if (r.status >= 300 && r.status < 400 && location !== undefined) { url = location; continue }
    expect(r.status === 200, `OIDC sign-in at ${url}: ${r.status} ${r.body.slice(0, 200)}`)
    if (r.body.includes(WHO)) return
    const action = formAction(r.body, url)
    expect(action !== undefined, `OIDC sign-in: no form at ${url}`)
    const posted = await b.post(action, action.endsWith('/login') ? { login: USERNAME, password: PASSWORD } : {})
    const next = posted.location()
    expect(next !== undefined, `OIDC sign-in, POST ${action}: ${posted.status} ${posted.body.slice(0, 200)}`)
    url = next
  }
  throw new CheckError(`OIDC sign-in: too many redirects: ${trail.join(' -> ')}`)
}

async function withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  // Servers connect to Redis on their own at start-up; give them a moment.
  for (let i = 0; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= 20) throw new Error(`${what}: ${(err as Error).message}`)
      await sleep(100)
    }
  }
}

// ---------------------------------------------------------------- measurements

/** Every bench server, for the machine-wide CPU account. */
const allServers: ServerProcess[] = []
/** Per timed window: the share of the machine's CPU used by processes other than ours (other users' jobs). */
const foreignCpuPct: number[] = []

/** Busy CPU time of the whole machine so far, in ms (Linux /proc/stat; undefined elsewhere). */
function machineBusyMs(): number | undefined {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string).trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f
    return (user + nice + system + irq + softirq + steal) * 10 // USER_HZ = 100
  } catch {
    return undefined
  }
}

interface Snapshot {
  readonly at: number
  readonly machineMs: number | undefined
  readonly servers: Map<ServerProcess, ChildStats>
  readonly redisMs: number
  readonly driverMs: number
}

async function snapshot(redis: BenchRedis): Promise<Snapshot> {
  const [stats, redisMs] = await Promise.all([Promise.all(allServers.map((s) => s.stats())), redis.cpuMs()])
  const cpu = process.cpuUsage()
  return {
    at: performance.now(), machineMs: machineBusyMs(), redisMs, driverMs: (cpu.user + cpu.system) / 1000,
    servers: new Map(allServers.map((s, i) => [s, stats[i] as ChildStats])),
  }
}

/** CPU ms of `server` between two snapshots. */
const cpuOf = (a: Snapshot, b: Snapshot, server: ServerProcess): number => (b.servers.get(server)?.cpuMs ?? NaN) - (a.servers.get(server)?.cpuMs ?? NaN)

function recordForeign(a: Snapshot, b: Snapshot): void {
  if (a.machineMs === undefined || b.machineMs === undefined) return
  let ours = (b.redisMs - a.redisMs) + (b.driverMs - a.driverMs)
  for (const s of allServers) ours += cpuOf(a, b, s)
  const capacity = (b.at - a.at) * cpus().length
  foreignCpuPct.push(Math.max(0, (100 * (b.machineMs - a.machineMs - ours)) / capacity))
}

interface HandoverResult {
  perSec: number
  completed: number
  errors: number
  serverCpuMsPerHandover: number
  perServerCpuMs: number[]
  redisCpuMsPerHandover: number
  /** The load driver's own CPU (this process), for context: it shares the machine's cores. */
  driverCpuMsPerHandover: number
  /** Redis commands per hand-over, by name (info commands excluded). */
  redisCommandsPerHandover: Record<string, number>
  p50Ms: number
  p99Ms: number
  rssMb: number[]
  heapTotalMb: number[]
}

const errorLog = new Map<string, { count: number; samples: string[] }>()
function recordError(system: string, err: unknown): void {
  let entry = errorLog.get(system)
  if (entry === undefined) { entry = { count: 0, samples: [] }; errorLog.set(system, entry) }
  entry.count++
  if (entry.samples.length < 5) entry.samples.push(err instanceof Error ? err.message : String(err))
}

async function runHandovers(sys: HandoverSystem, redis: BenchRedis, seconds: number, measure: boolean): Promise<HandoverResult | undefined> {
  let stop = false
  let counting = false
  let completed = 0
  let errors = 0
  const latencies: number[] = []
  const workers = sys.browsers.map(async (b) => {
    while (!stop) {
      const t = performance.now()
      try {
        await sys.handover(b)
        if (counting) { completed++; latencies.push(performance.now() - t) }
      } catch (err) {
        errors++ // every error counts, in the warm-up too; none is retried or skipped
        recordError(sys.name, err)
      }
    }
  })
  if (!measure) {
    await sleep(seconds * 1000)
    stop = true
    await Promise.all(workers)
    return undefined
  }
  await sleep(LEAD_IN_S * 1000)
  const commandsBefore = await redis.commands()
  const before = await snapshot(redis)
  counting = true
  await sleep(seconds * 1000)
  counting = false
  const after = await snapshot(redis)
  const commandsAfter = await redis.commands()
  stop = true
  await Promise.all(workers)
  recordForeign(before, after)
  const perServerCpuMs = sys.servers.map((srv) => cpuOf(before, after, srv))
  const serverCpu = perServerCpuMs.reduce((x, y) => x + y, 0)
  latencies.sort((a, b) => a - b)
  return {
    perSec: completed / ((after.at - before.at) / 1000),
    completed,
    errors,
    serverCpuMsPerHandover: serverCpu / completed,
    perServerCpuMs,
    redisCpuMsPerHandover: (after.redisMs - before.redisMs) / completed,
    driverCpuMsPerHandover: (after.driverMs - before.driverMs) / completed,
    redisCommandsPerHandover: Object.fromEntries(Object.entries(commandsAfter)
      .filter(([name]) => name !== 'info')
      .map(([name, n]) => [name, round((n - (commandsBefore[name] ?? 0)) / completed, 2)] as const)
      .filter(([, n]) => n > 0)),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    rssMb: sys.servers.map((srv) => after.servers.get(srv)?.rssMb ?? NaN),
    heapTotalMb: sys.servers.map((srv) => after.servers.get(srv)?.heapTotalMb ?? NaN),
  }
}

interface PageviewSystem {
  readonly name: string
  readonly url: string
  readonly server: ServerProcess
  readonly headers: Record<string, string>
  readonly expectBody: string
}

interface PageviewResult { perSec: number; errors: number; serverCpuUsPerRequest: number; p99Ms: number; ok: number; seconds: number; cpuMs: number }

async function runPageviews(sys: PageviewSystem, seconds: number, redis: BenchRedis, measure: boolean): Promise<PageviewResult> {
  const before = measure ? await snapshot(redis) : undefined
  const result = await autocannon({
    url: sys.url, connections: CONCURRENCY, pipelining: 1, duration: seconds,
    headers: sys.headers, expectBody: sys.expectBody,
  })
  const after = measure ? await snapshot(redis) : undefined
  if (before !== undefined && after !== undefined) recordForeign(before, after)
  const ok = result['2xx'] - result.mismatches
  const errors = result.non2xx + result.errors + result.timeouts + result.mismatches
  if (errors > 0) recordError(sys.name, new Error(`${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${result.mismatches} wrong bodies`))
  const cpuMs = before !== undefined && after !== undefined ? cpuOf(before, after, sys.server) : NaN
  return { perSec: ok / result.duration, errors, serverCpuUsPerRequest: (cpuMs * 1000) / ok, p99Ms: result.latency.p99, ok, seconds: result.duration, cpuMs }
}

/**
 * One round of page views: the systems take turns in 1-second slices (Tessera, @fastify/session
 * rolling: false, default, hello-world, and again) until each has had DURATION_S seconds. On this
 * shared 2-core machine the speed drifts by tens of percent within seconds; slices put every system
 * through the same drift, where one 5-second block each let a slow spell land on one system only.
 */
async function pageviewRound(systems: readonly PageviewSystem[], redis: BenchRedis): Promise<[PageviewResult, PageviewResult, PageviewResult, PageviewResult]> {
  const totals = systems.map(() => ({ ok: 0, seconds: 0, cpuMs: 0, errors: 0, p99Ms: 0 }))
  for (let slice = 0; slice < Math.max(1, Math.round(DURATION_S)); slice++) {
    for (const [i, p] of systems.entries()) {
      const r = await runPageviews(p, 1, redis, true)
      const t = totals[i] as (typeof totals)[number]
      t.ok += r.ok; t.seconds += r.seconds; t.cpuMs += r.cpuMs; t.errors += r.errors; t.p99Ms = Math.max(t.p99Ms, r.p99Ms)
    }
  }
  return totals.map((t) => ({
    perSec: t.ok / t.seconds, errors: t.errors, serverCpuUsPerRequest: (t.cpuMs * 1000) / t.ok, p99Ms: t.p99Ms, ok: t.ok, seconds: t.seconds, cpuMs: t.cpuMs,
  })) as [PageviewResult, PageviewResult, PageviewResult, PageviewResult]
}

/**
 * One hand-over measurement's samples, under `prefix` (`''` for Tessera, `oidc_`): rate, CPU (all
 * servers, each server, Redis, driver), latency, RSS and Redis commands. `servers` names the
 * provider side and the app side, in the order of the system's servers.
 */
function recordHandover(add: (key: string, v: number) => void, prefix: string, servers: readonly [string, string], r: HandoverResult): void {
  add(`${prefix}handover_per_s`, r.perSec)
  add(`${prefix}server_cpu_ms_per_handover`, r.serverCpuMsPerHandover)
  servers.forEach((name, i) => {
    add(`${prefix}${name}_cpu_ms_per_handover`, (r.perServerCpuMs[i] as number) / r.completed)
    add(`${prefix}${name}_rss_mb`, r.rssMb[i] as number)
  })
  add(`${prefix}redis_cpu_ms_per_handover`, r.redisCpuMsPerHandover)
  add(`${prefix}driver_cpu_ms_per_handover`, r.driverCpuMsPerHandover)
  add(`${prefix}handover_p50_ms`, r.p50Ms)
  add(`${prefix}handover_p99_ms`, r.p99Ms)
  add(`${prefix}redis_commands_per_handover`, Object.values(r.redisCommandsPerHandover).reduce((a, b) => a + b, 0))
}

/** Operations per second of `op` in this process, run back to back for `seconds`. */
async function opsPerSecond(seconds: number, op: () => unknown): Promise<number> {
  let n = 0
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  while (performance.now() < deadline) {
    for (let i = 0; i < 200; i++) {
      const pending = op()
      if (pending instanceof Promise) await pending // only the async peer (jose) pays for an await
    }
    n += 200
  }
  return n / ((performance.now() - t0) / 1000)
}

interface MintOpenRound { tessera: number; jose: number; rawGcm: number }

/**
 * Mint + open pairs per second in one process, each opened token checked, side by side with
 * (1) jose's compact JWE (dir + A256GCM, what oidc-provider and openid-client use) sealing the same
 * claims and (2) the floor: bare node:crypto AES-256-GCM seal + open of the same bytes, no encoding.
 */
function mintOpenPeers(): (seconds: number) => Promise<MintOpenRound> {
  const problems: string[] = []
  const material = randomBytes(32)
  const keyring = parseSyncKeys(`k1:${material.toString('base64url')}`, 'bench', problems)
  if (keyring === undefined) throw new Error(problems.join('; '))
  const aud = `http://${HOSTS.app}:3001`
  const st = randomBytes(32).toString('base64url')
  const sid = randomBytes(16).toString('base64url')
  const claims = Buffer.from(JSON.stringify({ sid, aud, st, iat: 1, exp: 2, jti: randomBytes(16).toString('base64url') }))
  const tessera = (): void => {
    const { token } = mintToken(keyring, { sid, aud, st, ttlSeconds: 10 })
    if (openToken(keyring, token, aud).sid !== sid) throw new Error('mint/open: wrong claims')
  }
  const joseKey = webcrypto.subtle.importKey('raw', material, 'AES-GCM', false, ['encrypt', 'decrypt'])
  const jose = async (): Promise<void> => {
    const key = await joseKey
    const jwe = await new CompactEncrypt(claims).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'k1' }).encrypt(key)
    const { plaintext } = await compactDecrypt(jwe, key)
    if ((JSON.parse(new TextDecoder().decode(plaintext)) as { sid: string }).sid !== sid) throw new Error('jose: wrong claims')
  }
  const aad = Buffer.from(`v1.k1.${aud}`)
  const rawKey = createSecretKey(material)
  const ivs = randomBytes(12 * 4096)
  let ivAt = 0
  const rawGcm = (): void => {
    // IVs pre-drawn 4,096 at a time, so the floor pays for almost no CSPRNG call; never reused.
    if (ivAt === ivs.length) { randomFillSync(ivs); ivAt = 0 }
    const iv = ivs.subarray(ivAt, ivAt + 12)
    ivAt += 12
    const c = createCipheriv('aes-256-gcm', rawKey, iv)
    c.setAAD(aad)
    const body = c.update(claims)
    c.final()
    const d = createDecipheriv('aes-256-gcm', rawKey, iv)
    d.setAAD(aad)
    d.setAuthTag(c.getAuthTag())
    d.update(body)
    d.final()
  }
  return async (seconds) => ({
    tessera: await opsPerSecond(seconds, tessera),
    jose: await opsPerSecond(seconds, jose),
    rawGcm: await opsPerSecond(seconds, rawGcm),
  })
}

/**
 * A fixed CPU-bound yardstick (HMAC-SHA256 of 64 bytes, one core), so runs on a quiet and on a busy
 * or slower machine can be told apart.
 */
function calibrate(): number {
  const key = randomBytes(32)
  const msg = randomBytes(64)
  let best = 0
  for (let r = 0; r < 3; r++) {
    let n = 0
    const t0 = performance.now()
    while (performance.now() - t0 < 100) { for (let i = 0; i < 200; i++) createHmac('sha256', key).update(msg).digest(); n += 200 }
    best = Math.max(best, n / ((performance.now() - t0) / 1000))
  }
  return best
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  mkdirSync(runDir, { recursive: true })
  mkdirSync(resultsDir, { recursive: true })
  const startedAt = performance.now()
  const loadBefore = loadavg()
  const calibrationBefore = calibrate()
  log(`tessera bench: ${ROUNDS} rounds x ${DURATION_S} s per measurement, warm-up ${WARMUP_S} s (OIDC ${OIDC_WARMUP_S} s), concurrency ${CONCURRENCY}` +
    `${QUICK ? ' (BENCH_QUICK)' : ''}; server logs at level '${LOG_LEVEL}' in ${runDir}`)

  const redis = await startBenchRedis()
  const servers: ServerProcess[] = []
  const agents: Agent[] = []
  const cleanup = async (): Promise<void> => {
    await Promise.allSettled(servers.map((s) => s.stop()))
    await Promise.allSettled(agents.map((a) => a.close()))
    await redis.stop()
  }
  const onSignal = (): void => { void cleanup().then(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  try {
    const ports = Object.fromEntries(await Promise.all(Object.entries(HOSTS).map(async ([k, h]) => [k, await freePort(h)] as const))) as Record<keyof typeof HOSTS, number>
    const url = (k: keyof typeof HOSTS): string => `http://${HOSTS[k]}:${ports[k]}`
    const syncKeys = `k1:${randomBytes(32).toString('base64url')}`
    const secret = (): string => randomBytes(32).toString('base64url')
    const profileDir = join(runDir, 'profiles')
    const spawnServer = (name: string, script: string, config: Omit<ChildConfig, 'redisUrl'> & Record<string, unknown>): ServerProcess => {
      const execArgv = PROFILE.has(name) || PROFILE.has('all') ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []
      const s = new ServerProcess(name, new URL(`servers/${script}`, here), { ...config, redisUrl: redis.url } as ChildConfig, { logFile: join(runDir, `${name}.log`), execArgv })
      servers.push(s)
      allServers.push(s)
      return s
    }

    const idp = spawnServer('idp', 'idp.js', {
      host: HOSTS.idp, port: ports.idp, knownRemoteHosts: url('app'), syncKeys, sessionSecret: secret(), usersFile: writeUsersFile(), logLevel: LOG_LEVEL, autoPipelining: AUTO_PIPELINING,
    })
    const app = spawnServer('app', 'app.js', {
      host: HOSTS.app, port: ports.app, idpUrl: url('idp'), syncKeys, sessionSecret: secret(), logLevel: LOG_LEVEL, autoPipelining: AUTO_PIPELINING,
    })
    const clientSecret = secret()
    const op = spawnServer('op', 'oidc-provider.js', {
      host: HOSTS.op, port: ports.op, clientId: 'bench-rp', clientSecret, redirectUri: `${url('rp')}/cb`,
    })
    const fsNoRolling = spawnServer('fastify-session', 'fastify-session.js', { host: HOSTS.fastifySession, port: ports.fastifySession, rolling: false, sessionSecret: secret(), logLevel: LOG_LEVEL })
    const fsDefault = spawnServer('fastify-session-default', 'fastify-session.js', { host: HOSTS.fastifySessionDefault, port: ports.fastifySessionDefault, rolling: true, sessionSecret: secret(), logLevel: LOG_LEVEL })
    const hello = spawnServer('hello', 'hello.js', { host: HOSTS.hello, port: ports.hello })
    const bareKey = secret()
    const bareIdp = spawnServer('bare-idp', 'bare.js', { host: HOSTS.bareIdp, port: ports.bareIdp, role: 'idp', peerUrl: url('bareApp'), key: bareKey })
    const bareApp = spawnServer('bare-app', 'bare.js', { host: HOSTS.bareApp, port: ports.bareApp, role: 'app', peerUrl: url('bareIdp'), key: bareKey })
    await op.ready // the RP reads the provider's discovery document when it starts
    const rp = spawnServer('rp', 'oidc-rp.js', {
      host: HOSTS.rp, port: ports.rp, issuer: url('op'), clientId: 'bench-rp', clientSecret, sessionSecret: secret(), logLevel: LOG_LEVEL, verifySignature: VERIFY_SIGNATURE,
    })
    await Promise.all(servers.map((s) => s.ready))
    const atStart = await snapshot(redis)
    log(`servers up: IdP ${idp.url}, app ${app.url}, OP ${op.url}, RP ${rp.url}, @fastify/session ${fsNoRolling.url} / ${fsDefault.url}, hello ${hello.url}; redis ${redis.url}`)

    // Virtual users: signed in once at the provider, for real, then reused for every hand-over.
    const agent = (): Agent => { const a = new Agent({ keepAliveTimeout: 30_000, connections: null, pipelining: 1 }); agents.push(a); return a }
    const tesseraAgent = agent()
    const oidcAgent = agent()
    const tesseraBrowsers = Array.from({ length: CONCURRENCY }, () => benchBrowser(tesseraAgent))
    const oidcBrowsers = Array.from({ length: CONCURRENCY }, () => benchBrowser(oidcAgent))
    await Promise.all(tesseraBrowsers.map((b) => withRetry('Tessera sign-in', () => tesseraSignIn(b, app.url, idp.url))))
    await Promise.all(oidcBrowsers.map((b) => withRetry('OIDC sign-in', () => oidcSignIn(b, rp.url))))

    const tessera: HandoverSystem = {
      name: 'tessera-handover', servers: [idp, app], browsers: tesseraBrowsers,
      handover: (b) => redirectHandover(b, HOSTS.app, app.url, idp.url),
    }
    const bareBrowsers = Array.from({ length: CONCURRENCY }, () => benchBrowser(tesseraAgent))
    for (const b of bareBrowsers) expect((await b.get(`${bareIdp.url}/bare-sign-in?user=${USERNAME}`)).status === 200, 'bare sign-in')
    const bare: HandoverSystem = {
      name: 'bare-handover', servers: [bareIdp, bareApp], browsers: bareBrowsers,
      handover: (b) => redirectHandover(b, HOSTS.bareApp, bareApp.url, bareIdp.url),
    }
    const oidc: HandoverSystem = {
      name: 'oidc-handover', servers: [op, rp], browsers: oidcBrowsers,
      handover: (b) => oidcHandover(b, rp.url, op.url),
    }

    // Page views: a valid session cookie from one real sign-in per system.
    const viewer = benchBrowser(agent())
    await tesseraSignIn(viewer, app.url, idp.url)
    const tesseraCookie = viewer.cookies(HOSTS.app).get('tessera')
    expect(tesseraCookie !== undefined, 'no tessera cookie after sign-in')
    const fsCookie = async (s: ServerProcess, host: string): Promise<string> => {
      const r = await withRetry('@fastify/session sign-in', () => viewer.post(`${s.url}/login`, { username: USERNAME, password: PASSWORD }))
      expect(r.status === 303, `@fastify/session sign-in: ${r.status}`)
      const c = viewer.cookies(host).get('sid')
      expect(c !== undefined, 'no sid cookie after sign-in')
      return c
    }
    const expected = page(USERNAME)
    const html = { accept: 'text/html,application/xhtml+xml' }
    const pageviews: PageviewSystem[] = [
      { name: 'tessera-pageview', url: `${app.url}/private`, server: app, headers: { ...html, cookie: `tessera=${tesseraCookie}` }, expectBody: expected },
      { name: 'fastify-session-pageview', url: `${fsNoRolling.url}/private`, server: fsNoRolling, headers: { ...html, cookie: `sid=${await fsCookie(fsNoRolling, HOSTS.fastifySession)}` }, expectBody: expected },
      { name: 'fastify-session-default-pageview', url: `${fsDefault.url}/private`, server: fsDefault, headers: { ...html, cookie: `sid=${await fsCookie(fsDefault, HOSTS.fastifySessionDefault)}` }, expectBody: expected },
      { name: 'hello-world', url: `${hello.url}/`, server: hello, headers: {}, expectBody: JSON.stringify({ hello: 'world' }) },
    ]
    for (const p of pageviews) {
      const probe = await viewer.get(p.url).catch(() => undefined)
      expect(probe !== undefined, `${p.name}: no answer`)
    }

    // Warm-up: every system, several seconds, before any measurement.
    log(`warm-up: Tessera hand-over ${WARMUP_S} s, OIDC hand-over ${OIDC_WARMUP_S} s, page views ${WARMUP_S} s each`)
    if (ONLY.has('handover')) await runHandovers(tessera, redis, WARMUP_S, false)
    if (ONLY.has('oidc')) await runHandovers(oidc, redis, OIDC_WARMUP_S, false)
    if (ONLY.has('bare')) await runHandovers(bare, redis, WARMUP_S, false)
    if (ONLY.has('pageview')) for (const p of pageviews) await runPageviews(p, WARMUP_S, redis, false)
    const mintOpen = mintOpenPeers()
    if (ONLY.has('mint')) await mintOpen(Math.min(WARMUP_S, 1))

    // Rounds: the systems alternate, so drift (thermal, noisy neighbours) hits both sides alike.
    const samples: Record<string, number[]> = {}
    const add = (key: string, v: number): void => { (samples[key] ??= []).push(v) }
    const redisCommands: Record<string, Record<string, number>> = {}
    for (let round = 1; round <= ROUNDS; round++) {
      const line: string[] = []
      const t = ONLY.has('handover') ? await runHandovers(tessera, redis, DURATION_S, true) : undefined
      if (t !== undefined) {
        recordHandover(add, '', ['idp', 'app'], t)
        add('idp_heap_total_mb', t.heapTotalMb[0] as number)
        redisCommands.tessera = t.redisCommandsPerHandover
        line.push(`Tessera ${fmt(t.perSec)} hand-overs/s (${fmt(t.serverCpuMsPerHandover)} ms CPU)`)
      }
      const o = ONLY.has('oidc') ? await runHandovers(oidc, redis, DURATION_S, true) : undefined
      if (o !== undefined) {
        recordHandover(add, 'oidc_', ['provider', 'rp'], o)
        redisCommands.oidc = o.redisCommandsPerHandover
        line.push(`OIDC ${fmt(o.perSec)} hand-overs/s (${fmt(o.serverCpuMsPerHandover)} ms CPU)`)
      }
      const f = ONLY.has('bare') ? await runHandovers(bare, redis, DURATION_S, true) : undefined
      if (f !== undefined) {
        add('bare_handover_per_s', f.perSec)
        add('bare_server_cpu_ms_per_handover', f.serverCpuMsPerHandover)
        line.push(`bare ${fmt(f.perSec)} hand-overs/s (${fmt(f.serverCpuMsPerHandover)} ms CPU)`)
        if (t !== undefined) add('server_cpu_ratio_tessera_vs_bare', t.serverCpuMsPerHandover / f.serverCpuMsPerHandover)
      }
      if (t !== undefined && o !== undefined) {
        add('handover_ratio_vs_oidc', t.perSec / o.perSec)
        add('server_cpu_ratio_oidc_vs_tessera', o.serverCpuMsPerHandover / t.serverCpuMsPerHandover)
      }
      if (ONLY.has('pageview')) {
        const [pv, fs, fsd, hw] = await pageviewRound(pageviews, redis)
        add('pageview_per_s', pv.perSec)
        add('pageview_server_cpu_us', pv.serverCpuUsPerRequest)
        add('pageview_p99_ms', pv.p99Ms)
        add('fastify_session_pageview_per_s', fs.perSec)
        add('fastify_session_server_cpu_us', fs.serverCpuUsPerRequest)
        add('fastify_session_default_pageview_per_s', fsd.perSec)
        add('fastify_session_default_server_cpu_us', fsd.serverCpuUsPerRequest)
        add('hello_world_per_s', hw.perSec)
        add('hello_world_server_cpu_us', hw.serverCpuUsPerRequest)
        add('pageview_ratio_vs_fastify_session', pv.perSec / fs.perSec)
        add('pageview_ratio_vs_fastify_session_default', pv.perSec / fsd.perSec)
        add('pageview_fraction_of_hello_world', pv.perSec / hw.perSec)
        line.push(`page views/s Tessera ${fmt(pv.perSec)}, @fastify/session ${fmt(fs.perSec)} (default ${fmt(fsd.perSec)}), hello ${fmt(hw.perSec)}`)
      }
      if (ONLY.has('mint')) {
        const m = await mintOpen(MINT_OPEN_S)
        add('mint_open_per_s', m.tessera)
        add('jose_jwe_mint_open_per_s', m.jose)
        add('raw_gcm_seal_open_per_s', m.rawGcm)
        add('mint_open_ratio_vs_jose', m.tessera / m.jose)
        add('mint_open_fraction_of_raw_gcm', m.tessera / m.rawGcm)
        line.push(`mint+open ${fmt(m.tessera)}/s (jose JWE ${fmt(m.jose)}, bare GCM ${fmt(m.rawGcm)})`)
      }
      log(`round ${round}/${ROUNDS}: ${line.join('; ')}`)
    }
    const redisInfo = await redis.info()

    // Stop the servers now so profiles (BENCH_PROFILE) are written.
    await Promise.allSettled(servers.map((s) => s.stop()))
    const summaries = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)])) as Record<string, Summary>
    const med = (k: string): number => summaries[k]?.median ?? NaN
    const errorsTotal = [...errorLog.values()].reduce((n, e) => n + e.count, 0)
    const foreign = summarize(foreignCpuPct)

    const target = (name: string, key: string, goal: number, ok: (v: number) => boolean): { name: string; key: string; target: number; met: boolean | null } =>
      ({ name, key, target: goal, met: Number.isFinite(med(key)) ? ok(med(key)) : null })
    const targets = [
      target('hand-over >= 5x OIDC', 'handover_ratio_vs_oidc', 5, (v) => v >= 5),
      target('server CPU <= 0.25 ms per hand-over', 'server_cpu_ms_per_handover', 0.25, (v) => v <= 0.25),
      target('page view >= 1.3x @fastify/session (rolling: false)', 'pageview_ratio_vs_fastify_session', 1.3, (v) => v >= 1.3),
      target('mint+open > 100,000/s', 'mint_open_per_s', 100_000, (v) => v > 100_000),
      target('IdP RSS < 120 MB', 'idp_rss_mb', 120, (v) => v < 120),
    ]

    const rows: [string, string, string][] = [
      ['Tessera hand-overs/s', 'handover_per_s', ''],
      ['oidc-provider + openid-client hand-overs/s', 'oidc_handover_per_s', ''],
      ['  ratio Tessera / OIDC (per round)', 'handover_ratio_vs_oidc', 'x'],
      ['Tessera server CPU ms / hand-over (IdP + app)', 'server_cpu_ms_per_handover', ''],
      ['    IdP', 'idp_cpu_ms_per_handover', ''],
      ['    app', 'app_cpu_ms_per_handover', ''],
      ['OIDC server CPU ms / hand-over (OP + RP)', 'oidc_server_cpu_ms_per_handover', ''],
      ['    OP', 'oidc_provider_cpu_ms_per_handover', ''],
      ['    RP', 'oidc_rp_cpu_ms_per_handover', ''],
      ['bare hand-over (floor, no checks) hand-overs/s', 'bare_handover_per_s', ''],
      ['bare hand-over server CPU ms / hand-over', 'bare_server_cpu_ms_per_handover', ''],
      ['  ratio Tessera / bare server CPU (per round)', 'server_cpu_ratio_tessera_vs_bare', 'x'],
      ['Redis CPU ms / hand-over: Tessera', 'redis_cpu_ms_per_handover', ''],
      ['Redis CPU ms / hand-over: OIDC', 'oidc_redis_cpu_ms_per_handover', ''],
      ['load driver CPU ms / hand-over: Tessera', 'driver_cpu_ms_per_handover', ''],
      ['load driver CPU ms / hand-over: OIDC', 'oidc_driver_cpu_ms_per_handover', ''],
      ['Tessera hand-over latency p50 ms', 'handover_p50_ms', ''],
      ['  p99 ms', 'handover_p99_ms', ''],
      ['OIDC hand-over latency p50 ms', 'oidc_handover_p50_ms', ''],
      ['  p99 ms', 'oidc_handover_p99_ms', ''],
      ['Tessera page views/s', 'pageview_per_s', ''],
      ['@fastify/session page views/s (rolling: false)', 'fastify_session_pageview_per_s', ''],
      ['@fastify/session page views/s (default, rolling)', 'fastify_session_default_pageview_per_s', ''],
      ['Fastify hello-world req/s', 'hello_world_per_s', ''],
      ['  ratio Tessera / @fastify/session rolling:false', 'pageview_ratio_vs_fastify_session', 'x'],
      ['  ratio Tessera / @fastify/session default', 'pageview_ratio_vs_fastify_session_default', 'x'],
      ['  Tessera page views / hello-world', 'pageview_fraction_of_hello_world', ''],
      ['server CPU us / page view: Tessera', 'pageview_server_cpu_us', ''],
      ['server CPU us / page view: @fastify/session', 'fastify_session_server_cpu_us', ''],
      ['server CPU us / page view: @fastify/session default', 'fastify_session_default_server_cpu_us', ''],
      ['server CPU us / request: hello-world', 'hello_world_server_cpu_us', ''],
      ['token mint + open /s (one process)', 'mint_open_per_s', ''],
      ['jose compact JWE (dir, A256GCM) encrypt + decrypt /s', 'jose_jwe_mint_open_per_s', ''],
      ['bare node:crypto AES-256-GCM seal + open /s (floor)', 'raw_gcm_seal_open_per_s', ''],
      ['  ratio Tessera / jose JWE', 'mint_open_ratio_vs_jose', 'x'],
      ['  Tessera / bare GCM', 'mint_open_fraction_of_raw_gcm', ''],
      ['IdP RSS MB after hand-overs', 'idp_rss_mb', ''],
      ['  of which V8 heap (reserved)', 'idp_heap_total_mb', ''],
      ['app RSS MB after hand-overs', 'app_rss_mb', ''],
      ['OIDC provider RSS MB after hand-overs', 'oidc_provider_rss_mb', ''],
      ['OIDC RP RSS MB after hand-overs', 'oidc_rp_rss_mb', ''],
    ]
    const table: string[] = []
    const w = 52
    table.push(`${'metric'.padEnd(w)}${'median'.padStart(10)}   min - max`)
    table.push('-'.repeat(w + 32))
    for (const [label, key, unit] of rows) {
      const s = summaries[key]
      if (s === undefined) continue
      table.push(`${label.padEnd(w)}${(fmt(s.median) + unit).padStart(10)}   ${fmt(s.min)} - ${fmt(s.max)}`)
    }
    log('')
    for (const line of table) log(line)
    log('')
    log('targets:')
    for (const t of targets) log(`  ${t.met === null ? 'n/a    ' : t.met ? 'MET    ' : 'MISSED '} ${t.name} (median ${fmt(med(t.key))})`)
    // The issue's reference machine ran a bare prototype hand-over in 0.19 ms against the 0.25 ms
    // target: 1.32x. The same allowance over this run's bare floor says whether a miss is the machine's.
    if (Number.isFinite(med('bare_server_cpu_ms_per_handover'))) {
      log(`  for reference: the 0.25 ms target is 1.32x the issue's bare prototype (0.19 ms); here the bare floor took ${fmt(med('bare_server_cpu_ms_per_handover'))} ms, ` +
        `so the same allowance is ${fmt(1.32 * med('bare_server_cpu_ms_per_handover'))} ms; Tessera took ${fmt(med('server_cpu_ratio_tessera_vs_bare'))}x the floor`)
    }
    if (Number.isFinite(foreign.median)) {
      log(`other processes on this machine used ${fmt(foreign.median)}% of its CPU during the timed windows (median; max ${fmt(foreign.max)}%)` +
        `${foreign.max > 10 ? ': the machine was shared, absolute numbers are lower than on a quiet one' : ''}`)
    }
    log(`errors: ${errorsTotal === 0 ? 'none' : ''}`)
    for (const [system, e] of errorLog) log(`  ${system}: ${e.count} (${e.samples.join(' | ')})`)

    const logs = readdirSync(runDir).filter((f) => f.endsWith('.log')).map((f) => {
      const text = readFileSync(join(runDir, f), 'utf8')
      return { server: f.replace(/\.log$/, ''), lines: text === '' ? 0 : text.trimEnd().split('\n').length }
    })
    const noisy = logs.filter((l) => l.lines > 0)
    if (noisy.length > 0) log(`server log lines (level '${LOG_LEVEL}'): ${noisy.map((l) => `${l.server} ${l.lines}`).join(', ')} — see ${runDir}`)
    let profiles: string[] = []
    try { profiles = readdirSync(profileDir).filter((f) => statSync(join(profileDir, f)).isFile()).map((f) => join(profileDir, f)) } catch { /* none asked for */ }
    if (profiles.length > 0) log(`CPU profiles: ${profiles.join(', ')}`)

    const json = {
      handover_per_s: round(med('handover_per_s'), 0),
      oidc_handover_per_s: round(med('oidc_handover_per_s'), 0),
      handover_ratio_vs_oidc: round(med('handover_ratio_vs_oidc'), 2),
      pageview_per_s: round(med('pageview_per_s'), 0),
      fastify_session_pageview_per_s: round(med('fastify_session_pageview_per_s'), 0),
      fastify_session_default_pageview_per_s: round(med('fastify_session_default_pageview_per_s'), 0),
      pageview_ratio_vs_fastify_session: round(med('pageview_ratio_vs_fastify_session'), 2),
      hello_world_per_s: round(med('hello_world_per_s'), 0),
      mint_open_per_s: round(med('mint_open_per_s'), 0),
      jose_jwe_mint_open_per_s: round(med('jose_jwe_mint_open_per_s'), 0),
      raw_gcm_seal_open_per_s: round(med('raw_gcm_seal_open_per_s'), 0),
      idp_rss_mb: round(med('idp_rss_mb'), 1),
      app_rss_mb: round(med('app_rss_mb'), 1),
      server_cpu_ms_per_handover: round(med('server_cpu_ms_per_handover'), 3),
      oidc_server_cpu_ms_per_handover: round(med('oidc_server_cpu_ms_per_handover'), 3),
      bare_handover_per_s: round(med('bare_handover_per_s'), 0),
      bare_server_cpu_ms_per_handover: round(med('bare_server_cpu_ms_per_handover'), 3),
      server_cpu_ratio_tessera_vs_bare: round(med('server_cpu_ratio_tessera_vs_bare'), 2),
      valid: errorsTotal === 0,
      errors: { total: errorsTotal, by_system: Object.fromEntries(errorLog) },
      targets: targets.map((t) => ({ ...t, value: round(med(t.key), 3) })),
      metrics: Object.fromEntries(Object.entries(summaries).map(([k, s]) => [k, {
        median: round(s.median), min: round(s.min), max: round(s.max), samples: s.samples.map((x) => round(x)),
      }])),
      rss_mb_at_start: Object.fromEntries([...atStart.servers].map(([srv, st]) => [srv.name, round(st.rssMb, 1)])),
      redis_commands_per_handover_last_round: redisCommands,
      redis_after_run: { keys: redisInfo.keys, used_memory_mb: round(redisInfo.usedMemoryMb, 1) },
      settings: {
        rounds: ROUNDS, duration_s: DURATION_S, warmup_s: WARMUP_S, oidc_warmup_s: OIDC_WARMUP_S, lead_in_s: LEAD_IN_S,
        concurrency: CONCURRENCY, quick: QUICK, server_log_level: LOG_LEVEL, oidc_verify_id_token_signature: VERIFY_SIGNATURE, tessera_redis_auto_pipelining: AUTO_PIPELINING,
        hosts: HOSTS,
      },
      machine: { calibration_hmac_sha256_per_s: { before: round(calibrationBefore, 0), after: round(calibrate(), 0) }, foreign_cpu_pct_during_windows: { median: round(foreign.median, 1), max: round(foreign.max, 1) }, load_average_before: loadBefore.map((x) => round(x, 2)), load_average_after: loadavg().map((x) => round(x, 2)), cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version, platform: process.platform },
      table,
      generated_at: new Date().toISOString(),
      wall_time_s: round((performance.now() - startedAt) / 1000, 1),
    }
    writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`)
    log(`wrote ${join(resultsDir, 'latest.json')} (${json.wall_time_s} s)`)
    if (errorsTotal > 0) log('INVALID RUN: some hand-overs or page views failed (see errors above); the numbers are not comparable.')
    return errorsTotal > 0 ? 1 : 0
  } finally {
    await cleanup()
  }
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`)
  process.exit(2)
})
