/**
 * @fastify/session support for the baselines and the OIDC relying party: a Redis store (the
 * documented set/get/destroy callback interface, as connect-redis implements it: one JSON string
 * per session, TTL from the cookie's expiry) and a typed view of request.session.
 */
import { createRequire } from 'node:module'
import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'

/**
 * @fastify/session, loaded with require() on purpose: its typings augment FastifyRequest.session,
 * which tessera/remote also declares, and the two declarations cannot live in one TypeScript program.
 */
export const fastifySession = createRequire(import.meta.url)('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>

/** The part of @fastify/session's request.session used here. */
export interface FastifySessionObject {
  get(key: string): unknown
  set(key: string, value: unknown): void
  regenerate(): Promise<void>
}

export const sessionOf = (req: FastifyRequest): FastifySessionObject => (req as unknown as { session: FastifySessionObject }).session

type Callback = (err?: unknown, value?: unknown) => void
interface StoredSession { cookie?: { expires?: string | Date | null } }

export class RedisSessionStore {
  constructor(private readonly redis: Redis, private readonly prefix = 'sess:', private readonly defaultTtlMs = 8 * 3600_000) {}

  set(sid: string, session: StoredSession, cb: Callback): void {
    const expires = session.cookie?.expires
    const ttl = expires ? Math.max(1, new Date(expires).getTime() - Date.now()) : this.defaultTtlMs
    this.redis.set(this.prefix + sid, JSON.stringify(session), 'PX', ttl).then(() => cb(), cb)
  }

  get(sid: string, cb: Callback): void {
    this.redis.get(this.prefix + sid).then((v) => cb(null, v === null ? null : JSON.parse(v)), cb)
  }

  destroy(sid: string, cb: Callback): void {
    this.redis.del(this.prefix + sid).then(() => cb(), cb)
  }
}
