/**
 * Bench server: a bare hand-over, the floor for Tessera's on this machine (issue 5 names "a bare
 * 116-line prototype of our hand-over", 4 Redis commands, as its reference). It runs the same four
 * requests and the same kind of token, and nothing else: no logger, no security headers, no
 * allow-list, no MACs on cookies (the app's cookie is the bare session id, as in the study's proof of
 * concept), no idle refresh, no error pages. NOT an example to copy; it exists to be measured.
 *
 * role 'idp': GET /login?callback=<base64url>&state=  cookie s=<sid>  -> GET session + SET ticket
 *             (one pipeline) -> 302 callback?token=
 * role 'app': GET /private  no cookie            -> 302 to the IdP, state cookie
 *                           ?token=              -> open, GETDEL ticket -> 302 clean URL, cookie s=<sid>
 *                           cookie s=<sid>       -> GET session (small JSON) -> page
 * The last line is also the bare page-view floor: one unsigned cookie, one Redis GET of a small
 * JSON session, nothing else (no MAC, no idle refresh, no logger, no headers).
 * role 'gate': the forward-auth floor, the same read behind nginx's auth_request (the docs' snippets,
 *             which ask /api/authz/auth-request): cookie s=<sid> -> GET session -> 200 Remote-User, else 401.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { childConfig, runChild } from '../lib/child.js'
import { page, type ChildConfig } from '../lib/common.js'

interface BareChildConfig extends ChildConfig {
  role: 'idp' | 'app' | 'gate'
  /** The other side's origin: the app's (for the IdP's redirect check) or the IdP's. */
  peerUrl: string
  /** base64url AES-256 key shared by both sides. */
  key: string
}

const cookieOf = (header: string | undefined, name: string): string | undefined =>
  header?.split('; ').find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1)

runChild(async () => {
  const c = childConfig<BareChildConfig>()
  const key = Buffer.from(c.key, 'base64url')
  const redis = new Redis(c.redisUrl)
  const app = Fastify({ logger: false })
  const origin = `http://${c.host}:${c.port}`

  if (c.role === 'gate') {
    app.get('/api/authz/auth-request', async (req, reply) => {
      const sid = cookieOf(req.headers.cookie, 's')
      const session = sid === undefined ? null : await redis.get(`bare:s:${sid}`)
      if (session === null) return reply.code(401).send()
      return reply.header('remote-user', (JSON.parse(session) as { user: { username: string } }).user.username).send()
    })
  } else if (c.role === 'idp') {
    app.get<{ Querystring: { callback: string; state: string } }>('/login', async (req, reply) => {
      const sid = cookieOf(req.headers.cookie, 's')
      const callback = Buffer.from(req.query.callback, 'base64url').toString()
      if (sid === undefined || !callback.startsWith(`${c.peerUrl}/`)) return reply.code(400).send('no')
      const random = randomBytes(28)
      const jti = random.subarray(12).toString('base64url')
      const [[, user]] = await redis.pipeline().get(`bare:s:${sid}`).set(`bare:t:${jti}`, '1', 'PX', 60_000).exec() as [[null, string | null]]
      if (user === null) return reply.code(401).send('sign in first')
      const cipher = createCipheriv('aes-256-gcm', key, random.subarray(0, 12))
      const body = Buffer.concat([cipher.update(JSON.stringify({ sid, st: req.query.state, jti })), cipher.final()])
      const token = `${random.subarray(0, 12).toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`
      return reply.redirect(`${callback}?token=${token}`, 302)
    })
    // Sign-in for the bench's virtual users: not timed, no password.
    app.get<{ Querystring: { user: string } }>('/bare-sign-in', async (req, reply) => {
      const sid = randomBytes(16).toString('base64url')
      await redis.set(`bare:s:${sid}`, JSON.stringify({ user: { username: req.query.user } }), 'PX', 3_600_000)
      return reply.header('set-cookie', `s=${sid}; Path=/; HttpOnly`).send('ok')
    })
  } else {
    app.get<{ Querystring: { token?: string } }>('/private', async (req, reply) => {
      const sid = cookieOf(req.headers.cookie, 's')
      if (sid !== undefined) {
        const session = await redis.get(`bare:s:${sid}`)
        if (session !== null) return reply.type('text/html; charset=utf-8').send(page((JSON.parse(session) as { user: { username: string } }).user.username))
      }
      const token = req.query.token
      if (token === undefined) {
        const state = randomBytes(32).toString('base64url')
        const callback = Buffer.from(`${origin}/private`).toString('base64url')
        return reply.header('set-cookie', `st=${state}; Path=/; HttpOnly`).redirect(`${c.peerUrl}/login?callback=${callback}&state=${state}`, 302)
      }
      const [iv, body, tag] = token.split('.') as [string, string, string]
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      const claims = JSON.parse(Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString()) as { sid: string; st: string; jti: string }
      if (claims.st !== cookieOf(req.headers.cookie, 'st') || await redis.getdel(`bare:t:${claims.jti}`) === null) return reply.code(403).send('no')
      return reply.header('set-cookie', `s=${claims.sid}; Path=/; HttpOnly`).redirect(`${origin}/private`, 302)
    })
  }
  await app.listen({ host: c.host, port: c.port })
  return { close: async () => { await app.close(); redis.disconnect() } }
})
