import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildIdp } from '../../src/idp/app.js'
import { loadConfig } from '../../src/idp/config.js'
import { buildExampleApp } from '../../examples/remote-app.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { newKey } from '../helpers/stack.js'
import { writeProductionUsersFile } from '../helpers/users.js'

let redis: TestRedis
let idp: FastifyInstance
let app: FastifyInstance
const keys = newKey('k1')
before(async () => {
  redis = await startRedis()
  idp = buildIdp(loadConfig({
    REDIS_URL: redis.url, KNOWN_REMOTE_HOSTS: 'https://shop.example.com', SYNC_KEYS: keys, NODE_ENV: 'production',
    SESSION_SECRET: randomBytes(32).toString('base64url'), USERS_FILE: writeProductionUsersFile(), PUBLIC_URL: 'https://sso.example.com',
  }), { logger: false })
  app = buildExampleApp({ name: 'Shop', origin: 'https://shop.example.com', idpUrl: 'https://sso.example.com', syncKeys: keys, redis: redis.url, sessionSecret: randomBytes(32).toString('base64url') })
  await Promise.all([idp.ready(), app.ready()])
})
after(async () => {
  await Promise.all([idp?.close(), app?.close()])
  await redis.stop()
})

test('every IdP page sends a CSP with no inline script, no framing, and no Referer', async () => {
  for (const url of ['/login', '/', '/nope', '/healthz']) {
    const res = await idp.inject({ url, headers: { accept: 'text/html' } })
    const csp = res.headers['content-security-policy'] as string
    assert.match(csp, /script-src 'self'(;|$)/, url)
    assert.match(csp, /connect-src 'self'(;|$)/, url)
    assert.match(csp, /frame-ancestors 'none'/, url)
    assert.match(csp, /object-src 'none'/, url)
    assert.match(csp, /base-uri 'none'/, url)
    assert.match(csp, /form-action 'self' https:\/\/shop\.example\.com/, url)
    assert.doesNotMatch(csp, /unsafe-inline/, url)
    assert.equal(res.headers['referrer-policy'], 'no-referrer', url)
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url)
  }
  const login = await idp.inject({ url: '/login', headers: { accept: 'text/html' } })
  // The passkey button's scripts are files of the IdP's own; nothing inline, no handler attributes.
  const scripts = [...login.body.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0])
  assert.deepEqual(scripts, ['<script src="/static/webauthn.js" defer>', '<script src="/static/passkeys.js" defer>'])
  assert.doesNotMatch(login.body, /<script>|\son[a-z]+=/i, 'no inline script on the login form')
  for (const src of ['/static/webauthn.js', '/static/passkeys.js']) {
    const js = await idp.inject({ url: src })
    assert.equal(js.statusCode, 200, src)
    assert.match(js.headers['content-type'] as string, /^text\/javascript/, src)
  }
  assert.match(login.headers['strict-transport-security'] as string, /max-age=31536000/)
})

test('with an https public URL the IdP cookies are __Host-, Secure, HttpOnly and SameSite=Lax', async () => {
  const res = await idp.inject({ url: '/login', headers: { accept: 'text/html' } })
  const cookie = String(res.headers['set-cookie'])
  assert.match(cookie, /^__Host-tessera_pre=[A-Za-z0-9_-]{43}; Max-Age=1800; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
})

test('with an https origin the app state cookie is __Host-, Secure, HttpOnly and SameSite=Lax', async () => {
  const res = await app.inject({ url: '/private', headers: { accept: 'text/html' } })
  assert.equal(res.statusCode, 302)
  const cookie = String(res.headers['set-cookie'])
  assert.match(cookie, /^__Host-tessera_state=[A-Za-z0-9_-]{43}; Max-Age=900; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  const location = new URL(res.headers.location as string)
  assert.equal(location.origin, 'https://sso.example.com')
  assert.equal(Buffer.from(location.searchParams.get('callback') as string, 'base64url').toString(), 'https://shop.example.com/private')
})

test('a request path like //evil.com stays on the app origin', async () => {
  const res = await app.inject({ url: '//evil.com/x', headers: { accept: 'text/html' } })
  assert.equal(res.statusCode, 302)
  const cb = Buffer.from(new URL(res.headers.location as string).searchParams.get('callback') as string, 'base64url').toString()
  assert.equal(new URL(cb).origin, 'https://shop.example.com')
})

test('unknown routes and bad bodies get 4xx pages or JSON, never 500', async () => {
  const missing = await idp.inject({ url: '/missing', headers: { accept: 'application/json' } })
  assert.equal(missing.statusCode, 404)
  assert.equal(missing.json().code, 'TESSERA_ERR_NOT_FOUND')
  const junk = await idp.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/json', accept: 'application/json' }, payload: '{nope' })
  assert.equal(junk.statusCode, 400)
  assert.equal(junk.json().code, 'TESSERA_ERR_BAD_REQUEST')
  const badCookie = await idp.inject({ url: '/', headers: { accept: 'text/html', cookie: '__Host-tessera_idp=%%%; x' } })
  assert.equal(badCookie.statusCode, 200)
  assert.match(badCookie.body, /not signed in/)
})
