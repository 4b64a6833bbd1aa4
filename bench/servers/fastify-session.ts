/** Baseline: the same protected route with @fastify/session on the same Redis (rolling from config). */
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import { Redis } from 'ioredis'
import { waitForRedis } from '../../src/shared/redis.js'
import { childConfig, runChild } from '../lib/child.js'
import { page, type ChildConfig, BASELINE_REDIS_OPTIONS } from '../lib/common.js'
import { DISPLAY_NAME, PASSWORD, USERNAME } from '../../test/helpers/users.js'
import { RedisSessionStore, fastifySession, sessionOf } from './redis-session-store.js'

interface SessionChildConfig extends ChildConfig {
  rolling: boolean
  sessionSecret: string
  logLevel: string
}

runChild(async () => {
  const c = childConfig<SessionChildConfig>()
  const redis = new Redis(c.redisUrl, BASELINE_REDIS_OPTIONS)
  redis.on('error', () => {})
  if (!(await waitForRedis(redis))) throw new Error('redis not ready')
  const app = Fastify({ logger: { level: c.logLevel } })
  await app.register(cookie)
  await app.register(formbody)
  await app.register(fastifySession, {
    secret: c.sessionSecret,
    store: new RedisSessionStore(redis),
    cookieName: 'sid',
    // Plain http on loopback: Secure cookies would never come back (its README says to set false).
    cookie: { secure: false, httpOnly: true, sameSite: 'lax', path: '/', maxAge: 8 * 3600_000 },
    saveUninitialized: false,
    rolling: c.rolling,
  })
  app.post<{ Body: { username?: string; password?: string } }>('/login', async (req, reply) => {
    if (req.body?.username !== USERNAME || req.body?.password !== PASSWORD) return reply.code(401).send({ error: 'bad credentials' })
    await sessionOf(req).regenerate() // regenerate replaces request.session
    sessionOf(req).set('user', { username: USERNAME, displayName: DISPLAY_NAME })
    return reply.redirect('/private', 303)
  })
  app.get('/private', async (req, reply) => {
    const user = sessionOf(req).get('user') as { username: string } | undefined
    if (user === undefined) return reply.code(401).send({ error: 'unauthenticated' })
    return reply.type('text/html; charset=utf-8').send(page(user.username))
  })
  await app.listen({ host: c.host, port: c.port })
  return { close: async () => { await app.close(); redis.disconnect() } }
})
