/**
 * Forward-auth through real proxies: Debian's nginx (on 127.0.0.4) and Caddy (on 127.0.0.5), each
 * configured with docs/forward-auth.md's snippets as written there, each in front of a plain HTTP echo
 * that knows nothing of Tessera, and a gate on 127.0.0.1 that trusts only 127.0.0.1 (where both proxies
 * connect from). The IdP and the Fastify apps A and B are the usual stack.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { Agent, request as undiciRequest } from 'undici'
import { Browser, type Page } from '../helpers/browser.js'
import { CADDY_HOST, CAROL, GATE_SECRET, NGINX_HOST, startForwardAuthStand, type ForwardAuthStand } from '../helpers/forward-auth.js'
import type { RunningProxy } from '../helpers/proxies.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { signInThroughA } from '../helpers/sso-scenarios.js'
import { appCookies, formFields, newKey, PASSWORD, type Stack } from '../helpers/stack.js'
import { keyringOf } from '../helpers/sync-keys.js'
import { buildGate } from '../../src/remote/gate.js'
import { formatAppKeys, mintingKeyFor } from '../../src/shared/app-keys.js'
import { mintToken } from '../../src/shared/token.js'
import { commandsSent } from '../helpers/redis-commands.js'

/** A client that is not the proxy: a loopback address the gate does not trust. */
const STRANGER = '127.0.0.7'

let redis: TestRedis
let stand: ForwardAuthStand
let stack: Stack
let gateUrl: string
let nginx: RunningProxy
let caddy: RunningProxy
const logs: string[] = []
/** Every token, state and cookie value the tests saw: none may reach the gate's log. */
const secrets = new Set<string>()
const keep = (b: Browser): void => { for (const jar of b.jars.values()) for (const v of jar.values()) if (v.length >= 8) secrets.add(v) }

before(async () => {
  redis = await startRedis()
  stand = await startForwardAuthStand(redis, { level: 'trace', stream: { write: (line: string) => { logs.push(line) } } })
  ;({ stack, gateUrl, nginx, caddy } = stand)
})

after(async () => {
  await stand?.close()
  await redis?.stop()
})

const proxies = (): readonly { readonly name: string; readonly url: string; readonly host: string }[] => [
  { name: 'nginx', url: nginx.url, host: NGINX_HOST },
  { name: 'Caddy', url: caddy.url, host: CADDY_HOST },
]

interface Echoed { path: string; method: string; remote: Record<string, string> }

const urls = (): { idpUrl: string; appAUrl: string; appBUrl: string } => ({ idpUrl: stack.idpUrl, appAUrl: stack.appAUrl, appBUrl: stack.appBUrl })

/** A browser signed in once at app A (a Fastify app), then at both proxied hosts with no form. */
async function signedInEverywhere(): Promise<Browser> {
  const b = await signInThroughA(urls())
  for (const p of proxies()) {
    const hops = await b.navigate(`${p.url}/dashboard?x=1`)
    assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200], `${p.name}: host -> IdP -> host with token -> clean URL`)
    assert.ok(hops[0]?.location()?.startsWith(`${stack.idpUrl}/login?`), `${p.name}: sent to the IdP`)
    assert.ok(new URL(hops[1]?.location() as string).searchParams.get('token'), `${p.name}: back with a token`)
    assert.equal(hops[2]?.location(), `${p.url}/dashboard?x=1`, `${p.name}: the token is dropped from the URL`)
    assert.ok(!hops.some((h) => h.body.includes('action="/login"')), `${p.name}: no login form`)
    const seen = hops.at(-1)?.json<Echoed>()
    assert.equal(seen?.path, '/dashboard?x=1')
    assert.deepEqual(seen?.remote, {
      'remote-user': 'alice', 'remote-groups': 'admins,staff', 'remote-name': 'Alice Example',
      'remote-email': 'alice@example.com', 'remote-auth-methods': 'pwd',
    }, `${p.name}: the app reads the user from Remote-* headers`)
    assert.ok(b.cookies(p.host).get(appCookies(p.url).session), `${p.name}: the host's own handle cookie`)
    assert.equal(b.cookies(p.host).get(appCookies(p.url).state), undefined, `${p.name}: the state cookie is cleared`)
    secrets.add(new URL(hops[1]?.location() as string).searchParams.get('token') as string)
  }
  keep(b)
  return b
}

/** The request the browser's jar would send to `url`, with the extra headers a client adds itself. */
async function asClient(b: Browser, url: string, headers: Record<string, string>, accept = 'application/json', method = 'GET'): Promise<Page> {
  return b.request(url, { method, headers: { accept, ...headers } })
}

test('signed in once through a Fastify app, the nginx- and Caddy-protected apps open with no form', async () => {
  const b = await signedInEverywhere()
  for (const p of proxies()) {
    const again = await b.get(`${p.url}/other`, 'application/json')
    assert.equal(again.status, 200, `${p.name}: the next request goes straight through`)
    assert.equal(again.json<Echoed>().remote['remote-user'], 'alice')
  }
  // The session is the one app A restores.
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).json<{ user: { username: string } }>().user.username, 'alice')
})

test('an authorized request through either proxy costs one Redis command', async () => {
  const b = await signedInEverywhere()
  for (const p of proxies()) {
    const seen = await commandsSent(redis, async () => {
      for (let i = 0; i < 10; i++) assert.equal((await b.get(`${p.url}/n${i}`, 'application/json')).status, 200)
    })
    // The plain read (HMGET), or the refreshing one (the RESOLVE script) at most every idle/60.
    assert.equal(seen.length, 10, `${p.name}: one round trip per request: ${seen.join(' ')}`)
    assert.ok(seen.every((c) => c === 'hmget' || c === 'evalsha'), `${p.name}: ${seen.join(' ')}`)
  }
})

test('without a session, a navigation goes to the IdP and anything else gets 401', async () => {
  for (const p of proxies()) {
    const b = new Browser()
    const nav = await b.get(`${p.url}/dashboard`)
    assert.equal(nav.status, 302, `${p.name}: navigation`)
    const login = new URL(nav.location() as string)
    assert.equal(`${login.origin}${login.pathname}`, `${stack.idpUrl}/login`)
    assert.equal(Buffer.from(login.searchParams.get('callback') as string, 'base64url').toString(), `${p.url}/dashboard`)
    assert.equal(login.searchParams.get('state'), b.cookies(p.host).get(appCookies(p.url).state), `${p.name}: the state cookie is set on the host`)
    const api = await b.get(`${p.url}/api/data`, 'application/json')
    assert.equal(api.status, 401, `${p.name}: API call`)
    assert.equal(api.headers.get('location'), null)
    if (p.name === 'Caddy') assert.equal(api.json().code, 'TESSERA_ERR_UNAUTHENTICATED')
  }
})

test('a Remote-User header sent by the client never reaches the app', async () => {
  const b = await signedInEverywhere()
  // Also spelt with underscores: CGI and WSGI servers read Remote_User as Remote-User (HTTP_REMOTE_USER).
  const forged = {
    'remote-user': 'mallory', 'remote-groups': 'root', 'remote-name': 'M', 'remote-email': 'm@evil.test', 'remote-auth-methods': 'pwd,otp,hwk',
    remote_user: 'mallory', remote_groups: 'root', remote_name: 'M', remote_email: 'm@evil.test', remote_auth_methods: 'pwd,otp,hwk',
  }
  for (const p of proxies()) {
    const res = await asClient(b, `${p.url}/x`, forged)
    assert.equal(res.status, 200)
    assert.deepEqual(res.json<Echoed>().remote, {
      'remote-user': 'alice', 'remote-groups': 'admins,staff', 'remote-name': 'Alice Example',
      'remote-email': 'alice@example.com', 'remote-auth-methods': 'pwd',
    }, `${p.name}: only the gate's values`)
    const anonymous = await asClient(new Browser(), `${p.url}/x`, forged)
    assert.equal(anonymous.status, 401, `${p.name}: a forged Remote-User opens nothing`)
    assert.ok(!anonymous.body.includes('mallory'))
  }
})

test('a Remote-* header the gate sends empty does not let the client\'s own value through', async () => {
  // carol has no groups and no email: the gate's Remote-Groups and Remote-Email are empty.
  const b = new Browser()
  const [n, c] = proxies() as [ReturnType<typeof proxies>[number], ReturnType<typeof proxies>[number]]
  const first = await b.get(`${n.url}/x`)
  const form = await b.get(first.location() as string)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: CAROL, password: PASSWORD })
  assert.equal(posted.status, 303)
  assert.equal((await b.navigate(posted.location() as string)).at(-1)?.status, 200)
  assert.equal((await b.navigate(`${c.url}/x`)).at(-1)?.status, 200)
  keep(b)
  for (const p of proxies()) {
    const res = await asClient(b, `${p.url}/x`, { 'remote-groups': 'admins', 'remote-email': 'boss@example.com', 'remote-user': 'alice' })
    assert.equal(res.status, 200)
    const remote = res.json<Echoed>().remote
    assert.equal(remote['remote-user'], CAROL, `${p.name}: the gate's user`)
    assert.ok(!remote['remote-groups'], `${p.name}: no groups, not the client's (${remote['remote-groups']})`)
    assert.ok(!remote['remote-email'], `${p.name}: no email, not the client's (${remote['remote-email']})`)
  }
})

/** A browser signed in at the IdP only, and a real token for `p` minted for it (not yet redeemed). */
async function realToken(p: { url: string; host: string }): Promise<{ browser: Browser; url: string; token: string; state: string }> {
  const browser = new Browser()
  const first = await browser.get(`${p.url}/page`)
  assert.equal(first.status, 302)
  const form = await browser.get(first.location() as string)
  const posted = await browser.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  const url = posted.location() as string
  const token = new URL(url).searchParams.get('token') as string
  assert.ok(url.startsWith(`${p.url}/page?token=`) && token)
  secrets.add(token)
  keep(browser)
  return { browser, url, token, state: browser.cookies(p.host).get(appCookies(p.url).state) as string }
}

/** 403, no redirect, no handle cookie set: through `p`, as JSON and as a navigation. */
async function assertRefused(p: { name: string; url: string }, b: Browser, url: string, what: string, method = 'GET'): Promise<void> {
  for (const accept of ['application/json', 'text/html']) {
    const res = await b.request(url, { method, headers: { accept } })
    const label = `${p.name}, ${what} (${accept})`
    assert.equal(res.status, 403, `${label}: status`)
    assert.equal(res.headers.get('location'), null, `${label}: no redirect, so no loop`)
    assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith(`${appCookies(p.url).session}=`) && !/Expires=Thu, 01 Jan 1970/.test(c)), `${label}: no handle cookie`)
    if (p.name === 'Caddy' && accept === 'application/json') assert.equal(res.json().code, 'TESSERA_ERR_INVALID_TOKEN', label)
  }
}

test('each invalid-token case answers 403 through nginx and Caddy', async () => {
  const [nginxP, caddyP] = proxies() as [ReturnType<typeof proxies>[number], ReturnType<typeof proxies>[number]]
  for (const [p, other] of [[nginxP, caddyP], [caddyP, nginxP]] as const) {
    const real = await realToken(p)
    const at = (token: string): string => `${p.url}/page?token=${encodeURIComponent(token)}`
    for (const bad of ['garbage', '', 'v1.k1.a.b.c', 'A'.repeat(4000)]) await assertRefused(p, real.browser, at(bad), `malformed ${bad.slice(0, 12)}`)
    const parts = real.token.split('.')
    const body = parts[3] as string
    parts[3] = body.slice(0, 5) + (body[5] === 'A' ? 'B' : 'A') + body.slice(6)
    await assertRefused(p, real.browser, at(parts.join('.')), 'tampered')
    const sid = (real.browser.cookies('127.0.0.1').get('tessera_idp') as string).split('.')[0] as string
    const { token: otherKey } = mintToken(mintingKeyFor(keyringOf(newKey('k1')), p.url), { sid, aud: p.url, st: real.state, ttlSeconds: 10 })
    await assertRefused(p, real.browser, at(otherKey), 'another key')
    const { token: neverRecorded } = mintToken(mintingKeyFor(stack.config.keyring, p.url), { sid, aud: p.url, st: real.state, ttlSeconds: 10 })
    await assertRefused(p, real.browser, at(neverRecorded), 'never minted by the IdP')
    const { token: forOther } = mintToken(mintingKeyFor(stack.config.keyring, other.url), { sid, aud: other.url, st: real.state, ttlSeconds: 10 })
    await assertRefused(p, real.browser, at(forOther), 'for the other proxied host')
    const { token: forA } = mintToken(mintingKeyFor(stack.config.keyring, stack.appAUrl), { sid, aud: stack.appAUrl, st: real.state, ttlSeconds: 10 })
    await assertRefused(p, real.browser, at(forA), 'for app A')
    const stranger = new Browser()
    await assertRefused(p, stranger, real.url, 'in a browser without the state cookie')
    const otherState = new Browser()
    otherState.cookies(p.host).set(appCookies(p.url).state, real.state.slice(0, -1) + (real.state.endsWith('A') ? 'B' : 'A'))
    await assertRefused(p, otherState, real.url, 'with another state cookie')
    await assertRefused(p, real.browser, real.url, 'on a POST', 'POST')
    // None of that spent the real token: its owner is signed in with it, once.
    const ok = await real.browser.get(real.url)
    assert.equal(ok.status, 302, `${p.name}: the real token still works`)
    assert.equal(ok.location(), `${p.url}/page`)
    const replay = new Browser()
    replay.cookies(p.host).set(appCookies(p.url).state, real.state)
    await assertRefused(p, replay, real.url, 'replayed')
  }
})

test('logout through any protected host ends the session everywhere', async () => {
  for (const p of proxies()) {
    const b = await signedInEverywhere()
    const out = await b.request(`${p.url}/tessera/logout?rd=/bye`, { method: 'POST', headers: { accept: 'text/html', origin: p.url } })
    assert.equal(out.status, 303, `${p.name}: logout`)
    assert.equal(out.location(), `${p.url}/bye`)
    assert.equal(b.cookies(p.host).get(appCookies(p.url).session), undefined, `${p.name}: the handle cookie is cleared`)
    for (const q of proxies()) {
      const res = await b.get(`${q.url}/x`, 'application/json')
      assert.equal(res.status, 401, `after logout at ${p.name}: signed out at ${q.name}`)
    }
    assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401, `after logout at ${p.name}: signed out at app A`)
  }
  // And a logout at a Fastify app ends the proxied hosts' sessions.
  const b = await signedInEverywhere()
  assert.equal((await b.request(`${stack.appAUrl}/logout`, { method: 'POST', headers: { accept: 'text/html' } })).status, 303)
  for (const q of proxies()) assert.equal((await b.get(`${q.url}/x`, 'application/json')).status, 401, `after logout at app A: ${q.name}`)
})

test('a logout posted from another site ends nothing', async () => {
  const b = await signedInEverywhere()
  const p = proxies()[1] as ReturnType<typeof proxies>[number]
  const forced = await b.request(`${p.url}/tessera/logout`, { method: 'POST', headers: { accept: 'text/html', origin: 'https://evil.test' } })
  assert.equal(forced.status, 403)
  assert.equal((await b.get(`${p.url}/x`, 'application/json')).status, 200, 'still signed in')
})

test('a forged X-Forwarded-Host or X-Original-URL from a client is not trusted', async () => {
  const b = await signedInEverywhere()
  const [n, c] = proxies() as [ReturnType<typeof proxies>[number], ReturnType<typeof proxies>[number]]
  const cookieOf = (p: { url: string; host: string }): string => `${appCookies(p.url).session}=${b.cookies(p.host).get(appCookies(p.url).session) as string}`
  const forwardedTo = (p: { url: string }): Record<string, string> => {
    const u = new URL(p.url)
    return { 'x-forwarded-proto': 'http', 'x-forwarded-host': u.host, 'x-forwarded-uri': '/x', 'x-forwarded-method': 'GET', 'x-original-url': `${p.url}/x`, 'x-original-method': 'GET' }
  }
  const plain = async (url: string, headers: Record<string, string>): Promise<number> => {
    const res = await fetch(url, { headers: { accept: 'application/json', ...headers }, redirect: 'manual' })
    await res.arrayBuffer()
    return res.status
  }
  // Through each proxy, a client names the other host and brings that host's cookie: the proxy's own
  // idea of the host wins, and this host's cookie is missing, so nothing opens.
  assert.equal(await plain(`${c.url}/x`, { cookie: cookieOf(n) }), 401, 'control: nginx\'s cookie opens nothing at Caddy\'s host')
  assert.equal(await plain(`${c.url}/x`, { ...forwardedTo(n), cookie: cookieOf(n) }), 401, 'Caddy: forged X-Forwarded-Host / X-Original-URL')
  assert.equal(await plain(`${n.url}/x`, { ...forwardedTo(c), cookie: cookieOf(c) }), 401, 'nginx: forged X-Forwarded-Host / X-Original-URL')
  assert.equal(await plain(`${n.url}/x`, { cookie: cookieOf(n) }), 200, 'control: the host\'s own cookie opens it')
  // nginx routes any Host to its default server: the snippet names its own host, not the client's.
  const withHost = (url: string, host: string, headers: Record<string, string>): Promise<{ status: number; body: string }> => new Promise((done, fail) => {
    const u = new URL(url)
    // node:http sends the Host header given (fetch would write its own).
    request({ host: u.hostname, port: u.port, path: u.pathname, headers: { ...headers, host, accept: 'application/json' } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() }).on('end', () => done({ status: res.statusCode ?? 0, body }))
    }).on('error', fail).end()
  })
  assert.equal((await withHost(`${n.url}/x`, new URL(n.url).host, { cookie: cookieOf(n) })).status, 200, 'control: node:http reaches nginx')
  // Another protected host's name and cookie, sent to this proxy: nginx routes any Host to its default
  // server, so its snippet names its own host, not the client's; Caddy serves no site for that name.
  for (const [p, other] of [[n, c], [c, n]] as const) {
    const res = await withHost(`${p.url}/x`, new URL(other.url).host, { cookie: cookieOf(other) })
    assert.ok(!res.body.includes('alice'), `${p.name}: another protected host in the Host header reached the app (${res.status})`)
  }

  // Straight to the gate: the same headers believed from the proxy's address, refused from any other.
  const stranger = new Agent({ localAddress: STRANGER })
  try {
    for (const style of ['forward-auth', 'auth-request'] as const) {
      const headers = { ...forwardedTo(n), cookie: cookieOf(n), accept: 'application/json' }
      assert.equal(await plain(`${gateUrl}/api/authz/${style}`, headers), 200, `${style}: from the proxy's address`)
      const res = await undiciRequest(`${gateUrl}/api/authz/${style}`, { headers, dispatcher: stranger })
      assert.equal(res.statusCode, 403, `${style}: from another address`)
      assert.equal(res.headers['remote-user'], undefined)
      assert.equal(((await res.body.json()) as { code: string }).code, 'TESSERA_ERR_FORWARD_AUTH')
    }
  } finally {
    await stranger.close()
  }
})

test('a gate host with secondFactor: required sends a password-only session to the IdP for a second factor', async () => {
  const b = await signedInEverywhere()
  const n = proxies()[0] as ReturnType<typeof proxies>[number]
  // A second gate for nginx's host, with the same cookie secret: it reads the same handle cookie.
  const strict = buildGate({
    idpUrl: stack.idpUrl, redis: redis.url, sessionSecret: GATE_SECRET, proxies: '127.0.0.1',
    hosts: [{ origin: n.url, appKeys: formatAppKeys(stack.config.keyring, n.url), secondFactor: 'required' }],
  })
  await strict.listen({ host: '127.0.0.1', port: 0 })
  try {
    const u = new URL(n.url)
    const headers = {
      'x-forwarded-proto': 'http', 'x-forwarded-host': u.host, 'x-forwarded-uri': '/x', 'x-forwarded-method': 'GET',
      cookie: `${appCookies(n.url).session}=${b.cookies(n.host).get(appCookies(n.url).session) as string}`,
    }
    const base = `http://127.0.0.1:${(strict.server.address() as AddressInfo).port}/api/authz/forward-auth`
    const lax = await fetch(`${gateUrl}/api/authz/forward-auth`, { headers: { ...headers, accept: 'text/html' }, redirect: 'manual' })
    assert.equal(lax.status, 200, 'control: the optional gate lets the password-only session through')
    assert.equal(lax.headers.get('remote-auth-methods'), 'pwd')
    const nav = await fetch(base, { headers: { ...headers, accept: 'text/html' }, redirect: 'manual' })
    assert.equal(nav.status, 302)
    const login = new URL(nav.headers.get('location') as string)
    assert.equal(`${login.origin}${login.pathname}`, `${stack.idpUrl}/login`)
    assert.equal(login.searchParams.get('mfa'), '1', 'the IdP is asked for a second factor')
    const api = await fetch(base, { headers: { ...headers, accept: 'application/json' }, redirect: 'manual' })
    assert.equal(api.status, 401)
    assert.equal(api.headers.get('remote-user'), null)
  } finally {
    await strict.close()
  }
})

test('the gate logs no token, state, cookie or handle, at level trace', () => {
  const text = logs.join('')
  assert.ok(text.includes('session handed over'), 'the gate logged its hand-overs')
  assert.ok(text.includes('request rejected'), 'the gate logged its refusals')
  assert.ok(secrets.size > 10, `${secrets.size} secrets collected`)
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret reached the gate's log: ${secret.slice(0, 6)}…`)
  assert.doesNotMatch(text, /token=|tessera_\d+=|set-cookie"?:\s*"[^[]/i)
})
