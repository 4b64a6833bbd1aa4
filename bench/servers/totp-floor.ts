/**
 * Bench server: the floor of a TOTP sign-in step, beside Tessera's POST /login/second-factor. Only
 * the essential work: one Redis GETDEL of the pending sign-in (a small JSON: user and TOTP secret,
 * in clear), otpauth's validate (SHA-1, 6 digits, 30 s, ±1 step, as Tessera's), and the same Lua
 * step-accept as Tessera's factor store (each step accepted once). No logger, no CSRF, no regulation,
 * no sealed secret, no session, no token, no headers. NOT an example to copy; it exists to be measured.
 *
 * POST /second-factor  cookie p=<id>, body code=NNNNNN (urlencoded)
 *   -> GETDEL totp-floor:p:<id> -> validate -> EVAL step-accept on totp-floor:f:<user> -> 303 /done
 * The driver writes the pending states (SET totp-floor:p:<id> EX 300) before the timed window.
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Secret, TOTP } from 'otpauth'
import { childConfig, runChild } from '../lib/child.js'
import type { ChildConfig } from '../lib/common.js'

/** Tessera's ACCEPT_STEP (src/idp/factors/factor-store.ts), on the floor's own key, no enrolment check. */
const ACCEPT_STEP = `local last = tonumber(redis.call('HGET', KEYS[1], 'step') or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'step', ARGV[1])
return 1`

const cookieOf = (header: string | undefined, name: string): string | undefined =>
  header?.split('; ').find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1)

runChild(async () => {
  const c = childConfig<ChildConfig>()
  const redis = new Redis(c.redisUrl)
  redis.defineCommand('floorAcceptStep', { numberOfKeys: 1, lua: ACCEPT_STEP })
  const accept = (key: string, step: number): Promise<number> => (redis as Redis & { floorAcceptStep(k: string, s: number): Promise<number> }).floorAcceptStep(key, step)
  const app = Fastify({ logger: false })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => { done(null, new URLSearchParams(body as string)) })

  app.post('/second-factor', async (req, reply) => {
    const id = cookieOf(req.headers.cookie, 'p')
    const code = (req.body as URLSearchParams | undefined)?.get('code')
    if (id === undefined || code === null || code === undefined) return reply.code(400).send('no')
    const raw = await redis.getdel(`totp-floor:p:${id}`)
    if (raw === null) return reply.code(401).send('no pending sign-in')
    const pending = JSON.parse(raw) as { u: string; s: string }
    const now = Date.now()
    const delta = TOTP.validate({ token: code, secret: Secret.fromBase32(pending.s), algorithm: 'SHA1', digits: 6, period: 30, timestamp: now, window: 1 })
    if (delta === null) return reply.code(401).send('wrong code')
    const step = TOTP.counter({ period: 30, timestamp: now }) + delta
    if (await accept(`totp-floor:f:${pending.u}`, step) !== 1) return reply.code(401).send('replayed code')
    return reply.redirect('/done', 303)
  })
  await app.listen({ host: c.host, port: c.port })
  return { close: async () => { await app.close(); redis.disconnect() } }
})
