/**
 * SIGTERM (what `docker stop`, compose and Kubernetes send) stops the IdP and the example app within a
 * couple of seconds whatever Redis is doing: down, frozen (connected, answering nothing), not yet
 * reachable while the process starts, or its host name's lookups hanging. A request in flight still gets its answer. The processes are the
 * real entry points (`npm start`, the compose app's command), so this needs no container engine.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeHandle } from '../src/shared/handle-cookie.js'
import { randomId } from '../src/shared/crypto.js'
import { freePort } from './helpers/net.js'
import { startRedis, type TestRedis } from './helpers/redis-server.js'
import { appCookies } from './helpers/app-cookies.js'
import { nameServerSocket, ownResolverSkip, resolvConfFile, withResolvConf } from './helpers/own-resolver.js'

/** Compose and Kubernetes wait 10 s and 30 s before SIGKILL; "a couple of seconds" with room to spare. */
const STOP_DEADLINE_MS = 3000
/** Bounds on what this file waits for, so a failure reports instead of hanging the run. */
const LINE_TIMEOUT_MS = 15_000
const TEST_TIMEOUT = { timeout: 60_000 }

const running = new Set<ChildProcess>()
const redises: TestRedis[] = []
after(async () => {
  for (const c of running) c.kill('SIGKILL')
  for (const r of redises) { r.thaw(); await r.stop() }
})

interface Proc {
  readonly child: ChildProcess
  readonly url: string
  /** A request that reads Redis, so that it is in flight while Redis is frozen. */
  readonly redisRequest: { path: string; headers: Record<string, string> }
  /** Resolves at the first stdout line that matches. */
  line(pattern: RegExp): Promise<void>
}

type Kind = 'idp' | 'app'

async function spawnProcess(kind: Kind, redisUrl: string, opts: { resolvConf?: string; usersFile?: string } = {}): Promise<Proc> {
  const port = await freePort('127.0.0.1')
  const url = `http://127.0.0.1:${port}`
  const syncKeys = `k1:${randomBytes(32).toString('base64url')}`
  const appSecret = randomBytes(32).toString('base64url')
  const env = kind === 'idp'
    ? {
        REDIS_URL: redisUrl, SYNC_KEYS: syncKeys, SESSION_SECRET: randomBytes(32).toString('base64url'),
        USERS_FILE: opts.usersFile ?? 'examples/users.yml', PUBLIC_URL: url, KNOWN_REMOTE_HOSTS: 'http://127.0.0.2:3001',
        PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      }
    : {
        REDIS_URL: redisUrl, SYNC_KEYS: syncKeys, APP_SESSION_SECRET: appSecret, APP_ORIGIN: url,
        IDP_URL: 'http://127.0.0.1:3000', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      }
  const script = kind === 'idp' ? 'dist/src/server.js' : 'dist/examples/app-server.js'
  // With a resolv.conf of its own: the same process (sh and unshare exec it), in a mount namespace
  // where that file is /etc/resolv.conf.
  const [command, args] = opts.resolvConf === undefined
    ? [process.execPath, [script]]
    : withResolvConf(opts.resolvConf, process.execPath, [script])
  const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let out = ''
  const waiters: { pattern: RegExp; resolve: () => void }[] = []
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    for (const w of [...waiters]) if (w.pattern.test(out)) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
  })
  // A well-formed, correctly signed cookie for a session that does not exist: the app must ask Redis.
  const cookie = `${appCookies(url).session}=${encodeHandle({ sid: randomId(16), secret: randomId(32) }, appSecret, url)}`
  return {
    child, url,
    redisRequest: kind === 'idp' ? { path: '/readyz', headers: {} } : { path: '/api/me', headers: { cookie, accept: 'application/json' } },
    // Bounded, so a process that never says it is a failure with its output, not a hung run.
    line: (pattern) => new Promise((resolve, reject) => {
      if (pattern.test(out)) { resolve(); return }
      const timer = setTimeout(() => reject(new Error(`${kind} never printed ${pattern}; its output: ${out.slice(-500)}`)), LINE_TIMEOUT_MS)
      waiters.push({ pattern, resolve: () => { clearTimeout(timer); resolve() } })
    }),
  }
}

async function untilHealthy(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} never became healthy`)
}

/** SIGTERM, then how the process ended, or a failure if it still runs at the deadline. */
async function terminate(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running ${STOP_DEADLINE_MS} ms after SIGTERM`)), STOP_DEADLINE_MS)
  })
  try {
    return await Promise.race([ended, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A DNS server that reads every query and answers none: a name it serves never resolves, and each
 * lookup lasts the resolver's whole timeout, as when compose's DNS no longer knows a stopped service.
 */
async function silentResolver(): Promise<{ resolvConf: string; nextQuery(): Promise<void> }> {
  const { socket, address } = await nameServerSocket()
  // One try, 10 s: a lookup in flight at the signal would hold an exit up to 10 s, far past the deadline.
  const resolvConf = resolvConfFile(`nameserver ${address}\noptions timeout:10 attempts:1\n`)
  return {
    resolvConf,
    nextQuery: () => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no DNS query reached ${address} in ${LINE_TIMEOUT_MS} ms`)), LINE_TIMEOUT_MS)
      socket.once('message', () => { clearTimeout(timer); resolve() })
    }),
  }
}

async function newRedis(): Promise<TestRedis> {
  const r = await startRedis()
  redises.push(r)
  return r
}

test('the IdP stops on a SIGTERM that came while it was still reading its configuration', TEST_TIMEOUT, async () => {
  // The users file is a FIFO: the IdP's synchronous read blocks in it until we write, so the signal
  // surely comes while its start-up code runs and before its stop handler replaces the loading one.
  // Swapping the handlers closed Node's signal watcher in between, and the pending SIGTERM was lost.
  const redis = await newRedis()
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fifo-'))
  after(() => { rmSync(dir, { recursive: true, force: true }) })
  const fifo = join(dir, 'users.yml')
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo')
  const proc = await spawnProcess('idp', redis.url, { usersFile: fifo })
  // Opening a FIFO to write returns once the reader has opened it: the IdP is now in its read.
  const writer = await open(fifo, 'w')
  const stopped = terminate(proc.child)
  // Well after the signal has reached the process, which cannot run any handler while it reads.
  await new Promise((r) => setTimeout(r, 300))
  await writer.writeFile(readFileSync('examples/users.yml'))
  await writer.close()
  assert.deepEqual(await stopped, { code: 0, signal: null })
})

for (const kind of ['idp', 'app'] as const) {
  const name = kind === 'idp' ? 'the IdP' : 'the example app'

  test(`${name} stops cleanly on SIGTERM with Redis up`, TEST_TIMEOUT, async () => {
    const redis = await newRedis()
    const proc = await spawnProcess(kind, redis.url)
    await untilHealthy(proc.url)
    assert.deepEqual(await terminate(proc.child), { code: 0, signal: null })
  })

  test(`${name} stops cleanly on SIGTERM while Redis is down (no reconnect loop keeps it alive)`, TEST_TIMEOUT, async () => {
    const redis = await newRedis()
    const proc = await spawnProcess(kind, redis.url)
    await untilHealthy(proc.url)
    await redis.stop()
    await proc.line(/redis connection error/)
    assert.deepEqual(await terminate(proc.child), { code: 0, signal: null })
  })

  test(`${name} answers the request in flight and stops on SIGTERM while Redis is frozen`, TEST_TIMEOUT, async () => {
    const redis = await newRedis()
    const proc = await spawnProcess(kind, redis.url)
    await untilHealthy(proc.url)
    // A kept-alive connection that is busy when SIGTERM comes: once answered, it must not hold the
    // process open for Fastify's 72 s keep-alive timeout.
    redis.freeze()
    const inFlight = fetch(`${proc.url}${proc.redisRequest.path}`, { headers: proc.redisRequest.headers, signal: AbortSignal.timeout(20_000) })
      .then(async (res) => { await res.arrayBuffer(); return res.status })
    // Well into Redis's 2 s command timeout: the answer comes about 1 s after the signal.
    await new Promise((r) => setTimeout(r, 1000))
    const stopped = terminate(proc.child)
    assert.equal(await inFlight, 503, 'the request in flight gets its answer (Redis gave up), not a reset')
    assert.deepEqual(await stopped, { code: 0, signal: null })
    redis.thaw()
  })

  test(`${name} stops cleanly on SIGTERM while it is still starting and Redis is unreachable`, TEST_TIMEOUT, async () => {
    // No Redis answers on this port: the process waits up to 2 s for Redis before it listens. In a
    // container it is PID 1, where a signal without a handler is ignored, so it must handle SIGTERM
    // from the start, not only once it listens. The port is one we hold, resetting every connection,
    // so no other test's server can take it meanwhile (a free port, closed, once was).
    // The moment to signal is the process's first connection attempt, seen here rather than in its
    // log: under load a log line can come late, and the attempt is what "still starting" means.
    let tried: () => void = () => {}
    const attempted = new Promise<void>((resolve) => { tried = resolve })
    const refuser = createServer((socket) => { tried(); socket.resetAndDestroy() })
    await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve))
    after(() => { refuser.close() })
    const proc = await spawnProcess(kind, `redis://127.0.0.1:${(refuser.address() as AddressInfo).port}`)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([attempted, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${kind} never tried to reach Redis`)), LINE_TIMEOUT_MS)
    })]).finally(() => clearTimeout(timer))
    assert.deepEqual(await terminate(proc.child), { code: 0, signal: null })
  })

  test(`${name} stops cleanly on SIGTERM while a DNS lookup of Redis's host name hangs (its compose service gone)`, { ...TEST_TIMEOUT, skip: ownResolverSkip }, async () => {
    // Redis's name is served by a resolver that never answers: every reconnect's lookup hangs. A
    // lookup by getaddrinfo runs on libuv's thread pool, and a Node process's exit joins those
    // threads, so it waited for the lookup in flight, up to the resolver's timeout (10 s here).
    const resolver = await silentResolver()
    const proc = await spawnProcess(kind, 'redis://tessera-redis-gone:6379', { resolvConf: resolver.resolvConf })
    await untilHealthy(proc.url) // it listens after waiting 2 s for Redis
    await resolver.nextQuery() // a reconnect's lookup, just sent: 10 s from its end
    assert.deepEqual(await terminate(proc.child), { code: 0, signal: null })
  })
}
