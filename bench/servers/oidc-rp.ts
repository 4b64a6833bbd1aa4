/**
 * Bench server: a Fastify relying party with openid-client v6: authorization-code flow with PKCE
 * (S256), code exchange at the token endpoint, ID token validation, then its own session kept in the
 * same Redis by @fastify/session (rolling: false, saveUninitialized: false), pino at 'warn'.
 */
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import { Redis } from 'ioredis'
import * as client from 'openid-client'
import { waitForRedis } from '../../src/shared/redis.js'
import { childConfig, runChild } from '../lib/child.js'
import { page, type ChildConfig, BASELINE_REDIS_OPTIONS } from '../lib/common.js'
import { RedisSessionStore, fastifySession, sessionOf } from './redis-session-store.js'

interface RpChildConfig extends ChildConfig {
  issuer: string
  clientId: string
  clientSecret: string
  sessionSecret: string
  logLevel: string
  /** Also verify the ID token's signature (openid-client's enableNonRepudiationChecks). */
  verifySignature: boolean
}

const PKCE_COOKIE = 'oidc_pkce'

runChild(async () => {
  const c = childConfig<RpChildConfig>()
  const origin = `http://${c.host}:${c.port}`
  const redirectUri = `${origin}/cb`
  const redis = new Redis(c.redisUrl, BASELINE_REDIS_OPTIONS)
  redis.on('error', () => {})
  if (!(await waitForRedis(redis))) throw new Error('redis not ready')

  const config = await client.discovery(new URL(c.issuer), c.clientId, undefined, client.ClientSecretBasic(c.clientSecret), {
    // The bench runs on plain http over loopback; openid-client refuses http unless told.
    execute: [client.allowInsecureRequests, ...(c.verifySignature ? [client.enableNonRepudiationChecks] : [])],
  })

  const app = Fastify({ logger: { level: c.logLevel } })
  await app.register(cookie, { secret: c.sessionSecret }) // signs the PKCE cookie
  await app.register(fastifySession, {
    secret: c.sessionSecret,
    store: new RedisSessionStore(redis, 'rp:'),
    cookieName: 'rp_sid',
    cookie: { secure: false, httpOnly: true, sameSite: 'lax', path: '/', maxAge: 8 * 3600_000 },
    saveUninitialized: false,
    rolling: false,
  })

  app.get('/private', async (req, reply) => {
    const user = sessionOf(req).get('user') as { sub: string } | undefined
    if (user !== undefined) return reply.type('text/html; charset=utf-8').send(page(user.sub))
    // PKCE: a fresh verifier per redirect, kept in a signed, short-lived cookie scoped to the callback.
    const verifier = client.randomPKCECodeVerifier()
    const parameters: Record<string, string> = {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }
    let state = ''
    if (!config.serverMetadata().supportsPKCE()) { state = client.randomState(); parameters.state = state }
    reply.setCookie(PKCE_COOKIE, `${verifier}.${state}`, { signed: true, httpOnly: true, sameSite: 'lax', path: '/cb', maxAge: 600 })
    return reply.header('cache-control', 'no-store').redirect(client.buildAuthorizationUrl(config, parameters).href, 302)
  })

  app.get('/cb', async (req, reply) => {
    const raw = req.cookies[PKCE_COOKIE]
    const unsigned = raw === undefined ? undefined : req.unsignCookie(raw)
    if (unsigned?.valid !== true || unsigned.value === null) return reply.code(400).send({ error: 'no pending sign-in' })
    const [verifier, state] = unsigned.value.split('.') as [string, string]
    const tokens = await client.authorizationCodeGrant(config, new URL(req.url, origin), {
      pkceCodeVerifier: verifier,
      ...(state === '' ? {} : { expectedState: state }),
      idTokenExpected: true,
    })
    const claims = tokens.claims()
    if (claims === undefined) return reply.code(401).send({ error: 'no id token' })
    // A new session id at sign-in (fixation); when no session cookie came in, the session is new already.
    if (req.cookies.rp_sid !== undefined) await sessionOf(req).regenerate()
    sessionOf(req).set('user', { sub: claims.sub })
    reply.clearCookie(PKCE_COOKIE, { path: '/cb' })
    return reply.header('cache-control', 'no-store').redirect('/private', 302)
  })

  await app.listen({ host: c.host, port: c.port })
  return { close: async () => { await app.close(); redis.disconnect() } }
})
