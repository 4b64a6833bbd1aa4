import assert from 'node:assert/strict'
import { test, before, after } from 'node:test'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import tesseraRemote, { type TesseraRemoteOptions } from '../../src/remote/index.js'
import { resolveOptions } from '../../src/remote/options.js'
import { TesseraError } from '../../src/shared/errors.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { newKey } from '../helpers/stack.js'

let redis: TestRedis
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

const good = (): TesseraRemoteOptions => ({
  idpUrl: 'http://127.0.0.1:3000', origin: 'http://127.0.0.2:3001', syncKeys: newKey('k1'),
  redis: redis.url, sessionSecret: randomBytes(32).toString('base64url'),
})

/** Registers the plugin on a real Fastify app: resolves to what `ready()` rejected with, or undefined. */
async function readyError(opts: object): Promise<unknown> {
  const app = Fastify({ logger: false })
  app.register(tesseraRemote, opts as unknown as TesseraRemoteOptions)
  try {
    await app.ready()
    return undefined
  } catch (err) {
    return err
  } finally {
    await app.close()
  }
}

async function assertRefused(change: Record<string, unknown>, expected: RegExp): Promise<void> {
  const err = await readyError({ ...good(), ...change })
  assert.ok(err instanceof TesseraError, `${JSON.stringify(change)}: ready() rejected with ${String(err)}`)
  assert.equal(err.code, 'TESSERA_ERR_OPTIONS')
  assert.match(err.message, expected)
}

test('a redis option that is not Redis is refused at ready() with TESSERA_ERR_OPTIONS', async () => {
  for (const value of ['http://127.0.0.1:6379', '127.0.0.1:6379', 'localhost', '', 'redis//127.0.0.1', 42, null, true]) {
    await assertRefused({ redis: value }, /redis: must be a redis:\/\/ or rediss:\/\/ URL/)
  }
  await assertRefused({ redis: { url: 'http://127.0.0.1:6379' } }, /redis\.url: must be a redis:\/\/ or rediss:\/\/ URL/)
  await assertRefused({ redis: { host: '127.0.0.1', port: 6379 } }, /redis: unknown key "host"/)
  await assertRefused({ redis: { sentinels: ['127.0.0.1:26379'] } }, /redis\.sentinels: must be a list of \{ host, port \}/)
  await assertRefused({ redis: { clusterNodes: [{ host: '127.0.0.1', port: 70000 }] } }, /redis\.clusterNodes: must be a list of \{ host, port \}/)
})

test('a redis URL ioredis would crash on or misread is refused at ready() with TESSERA_ERR_OPTIONS', async () => {
  // /abc sent SELECT NaN, and the rejected SELECT crashed the app's process.
  await assertRefused({ redis: `${redis.url}/abc` }, /redis: the path is the database number and must be digits only/)
  await assertRefused({ redis: { url: `${redis.url}/abc` } }, /redis\.url: the path is the database number/)
  await assertRefused({ redis: `${redis.url}?db=abc` }, /redis: must have no query/)
  await assertRefused({ redis: 'redis://:%zz@127.0.0.1:6379' }, /redis: the user name or password has a bad %-escape/)
  assert.equal(await readyError({ ...good(), redis: `${redis.url}/3` }), undefined)
})

test('a refused redis URL is not echoed: it may hold a password', async () => {
  const err = await readyError({ ...good(), redis: 'http://:hunter2hunter2@127.0.0.1:6379' })
  assert.ok(err instanceof TesseraError)
  assert.ok(!err.message.includes('hunter2hunter2'), err.message)
})

test('every other bad option is refused at ready() with TESSERA_ERR_OPTIONS, naming it', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ origin: undefined }, /origin: required/],
    [{ origin: 'https://app.example.com/path' }, /origin: .* must be an origin: http\(s\):\/\/host/],
    [{ idpUrl: 'ftp://sso.example.com' }, /idpUrl: .* must be an origin: http\(s\):\/\/host/],
    [{ syncKeys: undefined }, /appKeys: required, as printed by npx tessera app-key/],
    [{ syncKeys: 'k1:short' }, /syncKeys\[0\] \(id k1\): key must be 32 random bytes/],
    [{ sessionSecret: 'short' }, /sessionSecret: must be a string of at least 32 characters/],
    [{ redis: undefined }, /redis: must be/],
    [{ cookie: { sameSite: 'strict' } }, /cookie\.sameSite: strict would drop the cookie/],
    [{ cookie: { sameSite: 'sideways' } }, /cookie\.sameSite: must be lax, strict or none/],
    [{ cookie: { sameSite: 'none' } }, /cookie\.sameSite: none needs secure cookies/],
    [{ cookie: { path: 'app' } }, /cookie\.path: must start with \//],
    // What `cookie` would refuse when the first cookie is set: a start-up problem, not a 500 later.
    [{ cookie: { name: 'a b' } }, /cookie\.name: cookie name is invalid: a b/],
    [{ cookie: { domain: 'exa mple.com' } }, /cookie\.domain: cookie domain is invalid: exa mple\.com/],
    [{ cookie: { path: '/a;b' } }, /cookie\.path: cookie path is invalid: \/a;b/],
    [{ cookie: { path: 7 } }, /cookie\.path: must be a string/],
    [{ publicPaths: ['health'] }, /publicPaths\[0\]: must be an exact path \(\/about\) or a prefix ending in \/\*/],
    [{ publicPaths: 'health' }, /publicPaths: must be a list of paths starting with \//],
    // Forms that would never match a request's path: refused rather than quietly protecting it.
    [{ publicPaths: ['/ok', '/assets*'] }, /publicPaths\[1\]: must be an exact path/],
    [{ publicPaths: ['/a?b=1'] }, /publicPaths\[0\]: must be an exact path/],
    [{ publicPaths: ['/a*/b'] }, /publicPaths\[0\]: must be an exact path/],
    [{ cookie: 'mycookie' }, /cookie: must be an object/],
    // A misspelt option would otherwise be ignored, its setting left at the default.
    [{ publicPath: ['/health'] }, /publicPath: not an option \(the options are idpUrl, origin/],
    [{ cookie: { httpOnly: false } }, /cookie\.httpOnly: not a cookie option/],
    // A string would have been truthy: Secure cookies on an http origin, which no browser keeps.
    [{ cookie: { secure: 'false' } }, /cookie\.secure: must be true or false/],
    // Prefixed names a browser would drop with these attributes: every sign-in would end in a 403.
    [{ cookie: { name: '__Host-sess', secure: true, domain: 'example.com' } }, /cookie\.name: a __Host- cookie needs secure cookies \(an https origin\), no domain and path \//],
    [{ cookie: { name: '__host-sess', secure: true, path: '/app' } }, /cookie\.name: a __Host- cookie needs/],
    [{ cookie: { name: '__Host-sess' } }, /cookie\.name: a __Host- cookie needs/], // the origin is http: not secure
    [{ cookie: { name: '__Secure-sess', secure: false } }, /cookie\.name: a __Secure- cookie needs secure cookies/],
    [{ waitReplicas: -1 }, /waitReplicas: must be an integer from 0 to 16/],
    // One origin parser with the IdP's: no user-info or fragment, nothing the URL parser repaired.
    [{ origin: 'https://user:pw@app.example.com' }, /origin: .* no path, query or user-info/],
    [{ origin: 'https://app.example.com#x' }, /origin: .* no path, query or user-info/],
  ]
  for (const [change, expected] of cases) await assertRefused(change, expected)
  // Every problem at once.
  await assertRefused({ origin: 'nope', sessionSecret: 'short', redis: 'http://x' }, /origin: .*; sessionSecret: .*; redis: /)
  await assertRefused({ sessionSecret: 'short', cookie: { name: 'a b' } }, /sessionSecret: .*; cookie\.name: /)
  await assertRefused({ sessionSecret: 'short', cookie: { sameSite: 'none' } }, /sessionSecret: .*; cookie\.sameSite: none needs secure cookies/)
  await assertRefused({ origin: 'nope', syncKeys: undefined, appKeys: 'garbage' }, /origin: .*; appKeys\[0\]: must be/)
})

test('redis:// and rediss:// URLs, a connection object and an ioredis instance are accepted', async () => {
  assert.equal(await readyError(good()), undefined)
  assert.equal(await readyError({ ...good(), redis: { url: redis.url } }), undefined)
  assert.equal(await readyError({ ...good(), prefix: '/app', logLevel: 'warn' }), undefined, "Fastify's own register options pass")
  for (const cookie of [{ name: '__Host-sess', secure: true }, { name: '__Secure-sess', secure: true, path: '/app' }]) {
    assert.doesNotThrow(() => resolveOptions({ ...good(), cookie }), JSON.stringify(cookie))
  }
  const client = new Redis(redis.url)
  try {
    assert.equal(await readyError({ ...good(), redis: client }), undefined)
  } finally {
    client.disconnect()
  }
  // TLS and topologies: checked without connecting (no TLS server or sentinels here).
  for (const value of ['rediss://:pw@redis.example.com:6380/0', { url: 'rediss://redis.example.com', sentinels: [{ host: '10.0.0.1', port: 26379 }], sentinelName: 'main', sentinelPassword: 'x' },
    { clusterNodes: [{ host: '10.0.0.1', port: 7000 }], password: 'x' }]) {
    assert.doesNotThrow(() => resolveOptions({ ...good(), redis: value as TesseraRemoteOptions['redis'] }), JSON.stringify(value))
  }
})

test('with NODE_ENV=production the plugin refuses an http: origin other than loopback, as the IdP does', async () => {
  const previous = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  try {
    await assertRefused({ origin: 'http://app.example.com' }, /origin: "http:\/\/app.example.com" uses http: in production/)
    assert.equal(await readyError({ ...good(), origin: 'http://app.localhost:3001' }), undefined)
  } finally {
    if (previous === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = previous
  }
})
