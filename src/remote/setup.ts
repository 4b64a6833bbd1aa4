/**
 * What every adapter of the remote side sets up the same way, once: the checked options, the Redis
 * client (the app's own, or one connected from a URL or topology), the identity verifier and the core.
 * The Fastify plugin and the Express middleware differ only in how they log and when they close.
 */
import { IdentityVerifier } from '../shared/identity.js'
import { createRedis, type RedisClient, type RedisConnection } from '../shared/redis.js'
import { Sessions } from '../shared/sessions.js'
import { Tokens } from '../shared/tokens.js'
import { RemoteCore } from './core.js'
import { resolveOptions, type ResolvedOptions, type TesseraRemoteOptions } from './options.js'

/** The logger an adapter hands in: pino's (Fastify's `app.log`) or anything with the same two calls. */
export interface RemoteLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface RemoteSetup {
  readonly opts: ResolvedOptions
  readonly core: RemoteCore
  readonly redis: RedisClient
  /** Disconnects the client the adapter connected itself; an app's own client is left to the app. */
  close(): void
}

/** @throws OptionsError listing every bad option. */
export function setUpRemote(rawOpts: Partial<TesseraRemoteOptions> | undefined, log: RemoteLog): RemoteSetup {
  const opts = resolveOptions(rawOpts)
  // Duck-typed, not instanceof: the app's ioredis may be another copy than ours.
  const owned = typeof (opts.redis as Partial<RedisClient>).defineCommand !== 'function'
  const redis: RedisClient = owned ? createRedis(opts.redis as string | RedisConnection) : (opts.redis as RedisClient)
  if (owned) redis.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'tessera: redis connection error'))
  if (opts.holdsSyncKeys) log.warn({}, 'tessera: this app holds the IdP\'s SYNC_KEYS, which can mint tokens for every app; give it appKeys (npx tessera app-key <origin>) instead')
  const identity = new IdentityVerifier((kid) => opts.keys.byId.get(kid)?.identityKey,
    (reason) => log.warn({ reason }, 'tessera: session record refused: its identity does not verify'))
  const stores = { identity, waitReplicas: opts.waitReplicas }
  const core = new RemoteCore(opts, new Sessions(redis, stores), new Tokens(redis, stores))
  return { opts, core, redis, close: () => { if (owned) redis.disconnect() } }
}
