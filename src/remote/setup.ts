/**
 * What every adapter of the remote side sets up the same way, once: the Redis client (the app's own,
 * or one connected from a URL or topology) and the core with its stores and identity verifier. The
 * Fastify plugin and the Express middleware differ only in how they log and when they close.
 */
import { IdentityVerifier } from '../shared/identity.js'
import { createRedis, type RedisClient, type RedisConnection } from '../shared/redis.js'
import { logRedisErrors } from '../shared/redis-errors.js'
import { Sessions } from '../shared/sessions.js'
import { Tokens } from '../shared/tokens.js'
import { RemoteCore } from './core.js'
import type { ResolvedOptions } from './options.js'

/** The logger an adapter hands in: pino's (Fastify's `app.log`) or anything with the same two calls. */
export interface RemoteLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/**
 * The `redis` option as a client: the app's own instance as it is, or one connected from a URL or
 * connection object. `close()` disconnects only a client connected here; the app's stays the app's.
 */
export function connectRedis(opts: ResolvedOptions, log: RemoteLog): { readonly redis: RedisClient; close(): void } {
  // Duck-typed, not instanceof: the app's ioredis may be another copy than ours.
  const owned = typeof (opts.redis as Partial<RedisClient>).defineCommand !== 'function'
  if (!owned) return { redis: opts.redis as RedisClient, close: () => {} }
  const redis = createRedis(opts.redis as string | RedisConnection)
  logRedisErrors(redis, (obj, msg) => { log.warn(obj, msg) }, 'tessera: redis connection error')
  return { redis, close: () => { redis.disconnect() } }
}

/** The core for one app (one origin), on `redis`; warns once when the app holds the IdP's SYNC_KEYS. */
export function coreFor(opts: ResolvedOptions, redis: RedisClient, log: RemoteLog): RemoteCore {
  if (opts.holdsSyncKeys) log.warn({}, 'tessera: this app holds the IdP\'s SYNC_KEYS, which can mint tokens for every app; give it appKeys (npx tessera app-key <origin>) instead')
  const identity = new IdentityVerifier((kid) => opts.keys.byId.get(kid)?.identityKey,
    (reason) => log.warn({ reason }, 'tessera: session record refused: its identity does not verify'))
  const stores = { identity, waitReplicas: opts.waitReplicas, notice: (message: string) => { log.warn({}, `tessera: ${message}`) } }
  return new RemoteCore(opts, new Sessions(redis, stores), new Tokens(redis, stores))
}
