/**
 * `npm run demo`: the whole product in one terminal. A Redis (REDIS_URL if it answers, else
 * 127.0.0.1:6379, else a redis-server child on a free port), the IdP on http://idp.localhost:3000 and
 * two example apps on http://app.localhost:3001 and http://shop.localhost:3002. Browsers resolve
 * `*.localhost` to loopback (Chromium tries ::1 first, then 127.0.0.1), so each server listens on both,
 * and each host name keeps its own cookies, as separate domains would.
 *
 * Every run has fresh keys and secrets; nothing is written to disk. Never use this setup in production.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildIdp } from '../src/idp/app.js'
import { loadConfig } from '../src/idp/config.js'
import { VIEWS_DIR } from '../src/idp/paths.js'
import { loggerOptions } from '../src/shared/logger.js'
import { REDIS_OPTIONS, waitForRedis } from '../src/shared/redis.js'
import { buildExampleApp } from './remote-app.js'
import { formatAppKeys } from '../src/shared/app-keys.js'

/** The demo's FACTOR_KEYS, as in .env.example and docker-compose.yml; refused in production. */
const DEMO_FACTOR_KEYS = 'demo:ZGVtby1vbmx5LWZhY3Rvci1rZXktbm90LWluLXByb2Q'

export const DEMO_USER = { username: 'alice', password: 'tessera-demo' } as const

export interface DemoOptions {
  /** 0 picks a free port. Defaults: 3000, 3001, 3002. */
  idpPort?: number
  appPort?: number
  shopPort?: number
  /** No banner, no logs. */
  quiet?: boolean
  /** Tried first; defaults to process.env.REDIS_URL. */
  redisUrl?: string
}

export interface Demo {
  readonly urls: { readonly idp: string; readonly app: string; readonly shop: string }
  /** The Redis in use, and whether the demo started it. */
  readonly redis: { readonly url: string; readonly started: boolean }
  close(): Promise<void>
}

/** A problem the user can fix, reported as one line by `npm run demo`. */
export class DemoError extends Error {}

const LOOPBACK_V4 = '127.0.0.1'
const LOOPBACK_V6 = '::1'

/** Starts everything; `close()` stops it all (and the redis-server child, when one was started). */
export async function startDemo(opts: DemoOptions = {}): Promise<Demo> {
  const quiet = opts.quiet === true
  const redis = await findRedis(opts.redisUrl ?? process.env.REDIS_URL)
  const stops: (() => Promise<void>)[] = [redis.stop]
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {})
  }
  try {
    const [idpPort = 3000, appPort = 3001, shopPort = 3002] = await pickPorts([opts.idpPort ?? 3000, opts.appPort ?? 3001, opts.shopPort ?? 3002])
    const urls = {
      idp: `http://idp.localhost:${idpPort}`,
      app: `http://app.localhost:${appPort}`,
      shop: `http://shop.localhost:${shopPort}`,
    }
    const secret = (): string => randomBytes(32).toString('base64url')
    const syncKeys = `demo:${secret()}`
    const level = quiet ? 'silent' : (process.env.LOG_LEVEL ?? 'warn')
    const config = loadConfig({
      REDIS_URL: redis.url,
      KNOWN_REMOTE_HOSTS: `${urls.app},${urls.shop}`,
      SYNC_KEYS: syncKeys,
      // The published demo key, not a random one: TOTP secrets sealed with it stay readable when
      // the demo restarts on a Redis that kept them (docs/second-factor.md).
      FACTOR_KEYS: DEMO_FACTOR_KEYS,
      SESSION_SECRET: secret(),
      USERS_FILE: join(dirname(VIEWS_DIR), 'examples', 'users.yml'),
      PUBLIC_URL: urls.idp,
      PORT: String(idpPort),
      LOG_LEVEL: level,
    })

    // One client per server, ready before anything listens, so the first page is not a 503.
    const clients: Redis[] = []
    stops.push(async () => { for (const c of clients) c.disconnect() })
    const client = (): Redis => {
      const c = new Redis(redis.url, REDIS_OPTIONS)
      c.on('error', () => {}) // the servers answer 503 while Redis is away; buildIdp logs it too
      clients.push(c)
      return c
    }
    const idp = buildIdp(config, { redis: client(), logger: quiet ? false : loggerOptions(level) })
    const appLogger = quiet ? false : { level }
    // Each app holds only its own keys, as `npx tessera app-key <origin>` prints them.
    const appKeysFor = (origin: string): string => formatAppKeys(config.keyring, origin)
    const app = buildExampleApp({
      name: 'App', origin: urls.app, idpUrl: urls.idp, appKeys: appKeysFor(urls.app), redis: client(), sessionSecret: secret(),
      links: [urls.shop], accent: '#0f766e', logger: appLogger,
    })
    const shop = buildExampleApp({
      name: 'Shop', origin: urls.shop, idpUrl: urls.idp, appKeys: appKeysFor(urls.shop), redis: client(), sessionSecret: secret(),
      links: [urls.app], accent: '#9a4d0c', logger: appLogger,
    })
    const ready = await Promise.all(clients.map((c) => waitForRedis(c, 5000)))
    if (ready.includes(false)) throw new DemoError(`Redis at ${redis.url} stopped answering`)

    for (const [server, port] of [[idp, idpPort], [app, appPort], [shop, shopPort]] as const) {
      stops.push(await listenOnLoopback(server, port))
    }
    if (!quiet) {
      const started = redis.started ? `a redis-server started for this demo on ${redis.url} (stopped on exit)` : redis.url
      process.stdout.write([
        '',
        'Tessera demo',
        '',
        `  Sign-in service  ${urls.idp}`,
        `  App              ${urls.app}`,
        `  Shop             ${urls.shop}`,
        '',
        `  Sign in as ${DEMO_USER.username}, password ${DEMO_USER.password}`,
        `  Redis: ${started}`,
        '',
        `Open ${urls.shop}/private to start. Ctrl-C stops everything.`,
        '',
      ].join('\n') + '\n')
    }
    return { urls, redis: { url: redis.url, started: redis.started }, close }
  } catch (err) {
    await close()
    throw err
  }
}

/**
 * Listens on 127.0.0.1 and, when the host has IPv6, on ::1 too (connections there are handed to the
 * same server): Chromium resolves *.localhost to both and tries ::1 first.
 */
async function listenOnLoopback(server: FastifyInstance, port: number): Promise<() => Promise<void>> {
  try {
    await server.listen({ host: LOOPBACK_V4, port })
  } catch (err) {
    await server.close()
    throw portError(err, LOOPBACK_V4, port)
  }
  const v6 = createServer((socket) => server.server.emit('connection', socket))
  const bound = await new Promise<boolean>((resolve, reject) => {
    v6.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT') resolve(false) // no IPv6: 127.0.0.1 is enough
      else reject(portError(err, LOOPBACK_V6, port))
    })
    v6.listen(port, LOOPBACK_V6, () => resolve(true))
  }).catch(async (err: unknown) => { await server.close(); throw err })
  return async () => {
    if (bound) await new Promise<void>((resolve) => v6.close(() => resolve()))
    await server.close()
  }
}

function portError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') return new DemoError(`port ${port} is in use on ${host === LOOPBACK_V6 ? '[::1]' : host} (is another demo running?)`)
  return new DemoError(`cannot listen on ${host} port ${port}: ${(err as Error).message}`)
}

/** The ports asked for, with each 0 replaced by one free on both loopback addresses (and distinct). */
async function pickPorts(wanted: number[]): Promise<number[]> {
  const taken = new Set(wanted.filter((p) => p !== 0))
  const ports: number[] = []
  for (const p of wanted) {
    if (p !== 0) { ports.push(p); continue }
    const free = await freeLoopbackPort(taken)
    taken.add(free)
    ports.push(free)
  }
  return ports
}

async function freeLoopbackPort(taken: ReadonlySet<number>): Promise<number> {
  const listen = (port: number, host: string): Promise<Server | undefined> => new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(host === LOOPBACK_V6 && err.code !== 'EADDRINUSE' ? srv : undefined))
    srv.listen(port, host, () => resolve(srv))
  })
  const shut = (srv: Server | undefined): Promise<void> => new Promise((resolve) => {
    if (srv?.listening === true) srv.close(() => resolve())
    else resolve()
  })
  for (let i = 0; i < 20; i++) {
    const v4 = await listen(0, LOOPBACK_V4)
    const address = v4?.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    const v6 = port === 0 ? undefined : await listen(port, LOOPBACK_V6)
    await shut(v4)
    await shut(v6)
    if (port !== 0 && v6 !== undefined && !taken.has(port)) return port
  }
  throw new DemoError('no free port on loopback')
}

interface FoundRedis { url: string; started: boolean; stop(): Promise<void> }

/** REDIS_URL if it answers, else 127.0.0.1:6379 if it answers, else a redis-server child. */
async function findRedis(preferred: string | undefined): Promise<FoundRedis> {
  const candidates = [...new Set([preferred, 'redis://127.0.0.1:6379'].filter((u): u is string => u !== undefined && u !== ''))]
  for (const url of candidates) {
    if (await answers(url)) return { url, started: false, stop: async () => {} }
  }
  return startRedisServer(candidates)
}

async function answers(url: string): Promise<boolean> {
  let probe: Redis
  try {
    probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000, enableOfflineQueue: false })
  } catch {
    return false // not a redis:// URL
  }
  probe.on('error', () => {})
  try {
    await probe.connect()
    return (await probe.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

async function startRedisServer(tried: string[]): Promise<FoundRedis> {
  const port = await freeLoopbackPort(new Set())
  const url = `redis://127.0.0.1:${port}`
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', LOOPBACK_V4, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit) // even if the demo crashes
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit)
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM') })
  }
  const spawnError = new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve))
  for (let i = 0; i < 100; i++) {
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(r, 50, undefined))])
    if (failed !== undefined) {
      process.off('exit', killOnExit)
      throw new DemoError(`no Redis answers at ${tried.join(' or ')}, and redis-server ${failed.code === 'ENOENT' ? 'is not installed' : `cannot start (${failed.message})`}: ` +
        'install it (apt-get install redis-server, or brew install redis), or run one (docker run -p 6379:6379 redis) and set REDIS_URL')
    }
    if (child.exitCode !== null) break
    if (await answers(url)) return { url, started: true, stop }
  }
  await stop()
  throw new DemoError(`no Redis answers at ${tried.join(' or ')}, and the redis-server started on port ${port} did not answer; run one and set REDIS_URL`)
}

/** Run directly (`node dist/examples/demo.js`): start, print, stop cleanly on Ctrl-C or SIGTERM. */
async function main(): Promise<void> {
  let demo: Demo
  try {
    demo = await startDemo()
  } catch (err) {
    process.stderr.write(`tessera demo: ${err instanceof DemoError ? err.message : (err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  }
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      process.stdout.write('\nStopping the demo…\n')
      demo.close().then(() => process.exit(0), () => process.exit(1))
    })
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
  } catch {
    return false
  }
}
if (invokedDirectly()) await main()
