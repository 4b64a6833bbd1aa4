/** The whole product on loopback: the IdP on 127.0.0.1, app A on 127.0.0.2, app B on 127.0.0.3, one Redis. */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { Redis } from 'ioredis'
import { buildIdp } from '../../src/idp/app.js'
import { loadConfig, type IdpConfig } from '../../src/idp/config.js'
import { buildExampleApp } from '../../examples/remote-app.js'
import { buildExpressExampleApp, type ExpressExampleApp } from '../../examples/express-app.js'
import { REDIS_OPTIONS, waitForRedis, type RedisConnection } from '../../src/shared/redis.js'
import { freePort } from './net.js'
import { appCookies } from './app-cookies.js'
import { before, after, test, type TestContext } from 'node:test'
import { startRedis, type TestRedis } from './redis-server.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { writeUsersFile } from './users.js'
import { newKey } from './sync-keys.js'
import { untilAppReadsRedis, untilStatus } from './wait.js'

export { appCookies }

// The users and forms every flow test signs in with, where the tests have always found them.
export { PASSWORD, PASSWORD_HASH, writeUsersFile } from './users.js'
export { formFields } from './forms.js'
export { newKey } from './sync-keys.js'

/** The remote adapters the apps can be built with: the Fastify plugin or the Express middleware. */
export type Adapter = 'fastify' | 'express'
export const ADAPTERS: readonly Adapter[] = ['fastify', 'express']

export interface Stack {
  readonly idp: FastifyInstance
  /** The example app (examples/remote-app.ts), or its Express twin (examples/express-app.ts). */
  readonly appA: FastifyInstance | ExpressExampleApp
  readonly appB: FastifyInstance | ExpressExampleApp
  readonly idpUrl: string
  readonly appAUrl: string
  readonly appBUrl: string
  readonly config: IdpConfig
  readonly syncKeys: string
  /** Each app's session secret (what a compromised app would hold). */
  readonly appSecrets: { readonly A: string; readonly B: string }
  close(): Promise<void>
}

export interface StackOptions {
  env?: Record<string, string>
  /** Keys the apps use, when they differ from the IdP's (rotation tests). */
  appSyncKeys?: string
  idpLogger?: unknown
  /** The IdP's request timeout (buildIdp's `requestTimeoutMs`), short for the tests of a stalled request. */
  idpRequestTimeoutMs?: number
  appLogger?: FastifyServerOptions['logger']
  /** Origins added to KNOWN_REMOTE_HOSTS after the apps' own (ignored when env.KNOWN_REMOTE_HOSTS is given). */
  extraRemoteHosts?: readonly string[]
  /**
   * The apps' `redis` plugin option (a URL or a `{ sentinels, sentinelName }` / `{ clusterNodes }`
   * object): the plugin connects by itself. Default: an ioredis client on the test Redis's URL.
   */
  appRedis?: string | RedisConnection | ((app: 'A' | 'B') => string)
  /**
   * The IdP connects by itself from its configuration (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES
   * in `env`), as `npm start` does. Default: an ioredis client on the test Redis's URL.
   */
  ownRedis?: boolean
  /** The apps' `waitReplicas` plugin option. */
  appWaitReplicas?: number
  /** Builds apps A and B with this adapter (default fastify). */
  adapter?: Adapter
  /** App B's adapter, when it differs from app A's (an Express app beside a Fastify one). */
  adapterB?: Adapter
  /** The apps whose plugin has `secondFactor: 'required'`. */
  secondFactorApps?: readonly ('A' | 'B')[]
  /** Adds routes to both apps (after the plugin, before they listen). */
  appRoutes?: (app: FastifyInstance) => void
}

export async function startStack(redis: Pick<TestRedis, 'url'>, options: StackOptions = {}): Promise<Stack> {
  const [idpPort, aPort, bPort] = await Promise.all([freePort('127.0.0.1'), freePort('127.0.0.2'), freePort('127.0.0.3')])
  const idpUrl = `http://127.0.0.1:${idpPort}`
  const appAUrl = `http://127.0.0.2:${aPort}`
  const appBUrl = `http://127.0.0.3:${bPort}`
  const syncKeys = options.env?.SYNC_KEYS ?? newKey('k1')
  const config = loadConfig({
    REDIS_URL: redis.url,
    KNOWN_REMOTE_HOSTS: [appAUrl, appBUrl, ...(options.extraRemoteHosts ?? [])].join(','),
    SYNC_KEYS: syncKeys,
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    USERS_FILE: writeUsersFile(),
    PUBLIC_URL: idpUrl,
    LOG_LEVEL: 'silent',
    // Tests sign in wrongly on purpose from one address; the regulation tests set their own limit.
    LOGIN_MAX_RETRIES: '100', LOGIN_IP_MAX_RETRIES: '100000',
    ...options.env,
  })
  const clients: Redis[] = []
  const client = (): Redis => { const c = new Redis(redis.url, REDIS_OPTIONS); c.on('error', () => {}); clients.push(c); return c }
  const idpOpts = { logger: options.idpLogger ?? false, ...(options.idpRequestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.idpRequestTimeoutMs }) }
  const idp = options.ownRedis === true ? buildIdp(config, idpOpts) : buildIdp(config, { redis: client(), ...idpOpts })
  // Each app holds only its own keys, as `npx tessera app-key` prints them (or, for the upgrade and
  // rotation tests, the IdP's own SYNC_KEYS).
  const keysFor = (origin: string): { appKeys: string } | { syncKeys: string } =>
    options.appSyncKeys === undefined ? { appKeys: formatAppKeys(config.keyring, origin) } : { syncKeys: options.appSyncKeys }
  const appOpts = {
    idpUrl, sessionSecret: randomBytes(32).toString('base64url'),
    ...(options.appLogger === undefined ? {} : { logger: options.appLogger }),
    ...(options.appWaitReplicas === undefined ? {} : { waitReplicas: options.appWaitReplicas }),
  }
  const secretB = randomBytes(32).toString('base64url')
  const appRedis = (name: 'A' | 'B'): string | RedisConnection | Redis =>
    typeof options.appRedis === 'function' ? options.appRedis(name) : (options.appRedis ?? client())
  const secondFactor = (name: 'A' | 'B'): { secondFactor?: 'required' } => (options.secondFactorApps?.includes(name) === true ? { secondFactor: 'required' } : {})
  const adapterA = options.adapter ?? 'fastify'
  const adapterB = options.adapterB ?? adapterA
  if ((adapterA === 'express' || adapterB === 'express') && options.appRoutes !== undefined) throw new Error('appRoutes adds Fastify routes: not with the express adapter')
  const build = (adapter: Adapter): typeof buildExampleApp | typeof buildExpressExampleApp => (adapter === 'express' ? buildExpressExampleApp : buildExampleApp)
  const appA = build(adapterA)({ ...appOpts, ...keysFor(appAUrl), ...secondFactor('A'), name: 'App A', origin: appAUrl, redis: appRedis('A'), links: [appBUrl] })
  const appB = build(adapterB)({ ...appOpts, ...keysFor(appBUrl), ...secondFactor('B'), name: 'App B', origin: appBUrl, redis: appRedis('B'), sessionSecret: secretB, links: [appAUrl] })
  if (options.appRoutes !== undefined) {
    options.appRoutes(appA as FastifyInstance)
    options.appRoutes(appB as FastifyInstance)
  }
  const listen = (app: FastifyInstance | ExpressExampleApp, host: string, port: number): Promise<unknown> =>
    'server' in app ? app.listen({ host, port }) : app.listen(host, port)
  await Promise.all(clients.map((c) => waitForRedis(c)))
  await idp.listen({ host: '127.0.0.1', port: idpPort })
  await listen(appA, '127.0.0.2', aPort)
  await listen(appB, '127.0.0.3', bPort)
  // Clients the IdP or the plugin made themselves: wait until a request that reads Redis is served.
  if (options.ownRedis === true) await untilStatus(`${idpUrl}/readyz`, {}, 200)
  if (options.appRedis !== undefined) {
    await untilAppReadsRedis(appAUrl, appOpts.sessionSecret)
    await untilAppReadsRedis(appBUrl, secretB)
  }
  return {
    idp, appA, appB, idpUrl, appAUrl, appBUrl, config, syncKeys,
    appSecrets: { A: appOpts.sessionSecret, B: secretB },
    close: async () => {
      await Promise.all([idp.close(), appA.close(), appB.close()])
      for (const c of clients) c.disconnect()
    },
  }
}

/**
 * Starts a Redis and the stack before a file's tests and stops both after them, handing them to
 * `use`: the set-up every flow test file shares.
 */
export function useStack(use: (redis: TestRedis, stack: Stack) => void, options: StackOptions = {}, redisOptions: { persistent?: boolean } = {}): void {
  useStackOn(() => startRedis(redisOptions), () => options, use)
}

/** As useStack, on the Redis `start` brings up (a Cluster, a Sentinel group), with options that may name it. */
export function useStackOn<R extends Pick<TestRedis, 'url' | 'stop'>>(start: () => Promise<R>, options: (redis: R) => StackOptions, use: (redis: R, stack: Stack) => void): void {
  let redis: R | undefined
  let stack: Stack | undefined
  before(async () => {
    redis = await start()
    stack = await startStack(redis, options(redis))
    use(redis, stack)
  })
  after(async () => {
    await stack?.close()
    await redis?.stop()
  })
}

/**
 * As useStack, with one stack per adapter (apps A and B built with the Fastify plugin, then with the
 * Express middleware), on one Redis. Returns the `test` to write the file's tests with: it registers
 * each test once per adapter (`fastify: <name>`, `express: <name>`) and hands `use` that adapter's
 * stack just before it runs, so one body of tests holds for every adapter.
 */
export function useStackPerAdapter(use: (redis: TestRedis, stack: Stack, adapter: Adapter) => void, options: StackOptions = {}): (name: string, fn: (t: TestContext) => Promise<void>) => void {
  let redis: TestRedis | undefined
  const stacks = new Map<Adapter, Stack>()
  before(async () => {
    redis = await startRedis()
    for (const adapter of ADAPTERS) stacks.set(adapter, await startStack(redis, { ...options, adapter }))
  })
  after(async () => {
    for (const stack of stacks.values()) await stack.close()
    await redis?.stop()
  })
  return (name, fn) => {
    for (const adapter of ADAPTERS) {
      test(`${adapter}: ${name}`, async (t) => {
        const stack = stacks.get(adapter)
        if (redis === undefined || stack === undefined) throw new Error('the stacks did not start')
        use(redis, stack, adapter)
        await fn(t)
      })
    }
  }
}
