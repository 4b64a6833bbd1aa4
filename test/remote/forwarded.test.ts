import assert from 'node:assert/strict'
import { test } from 'node:test'
import { originalRequest, parseProxies, type ProxyStyle, type ProxyTrust } from '../../src/remote/forwarded.js'
import { ForwardAuthError } from '../../src/shared/errors.js'

const APP = 'https://app.example.com'
const ORIGINS = new Set([APP, 'http://127.0.0.4:8080'])
const PROXY = '10.0.0.5'

function trust(raw: string | readonly string[]): ProxyTrust {
  const problems: string[] = []
  const t = parseProxies(raw, 'FORWARD_AUTH_PROXIES', problems)
  assert.deepEqual(problems, [])
  return t as ProxyTrust
}

const PROXIES = trust('10.0.0.0/24, 127.0.0.1, fd00::/8')

const forwarded = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', 'x-forwarded-uri': '/a/b?token=t&x=1' }
const original = { 'x-original-method': 'GET', 'x-original-url': 'https://app.example.com/a/b?token=t&x=1' }

/** The ForwardAuthError's detail, or a failure when the call does not throw one. */
function refusal(style: ProxyStyle, headers: Record<string, string | string[] | undefined>, peer: string | undefined = PROXY, t: ProxyTrust = PROXIES): string {
  try {
    originalRequest(style, headers, peer, t, ORIGINS)
  } catch (err) {
    assert.ok(err instanceof ForwardAuthError, String(err))
    assert.equal(err.statusCode, 403)
    assert.equal(err.code, 'TESSERA_ERR_FORWARD_AUTH')
    return err.detail ?? ''
  }
  assert.fail(`not refused: ${JSON.stringify(headers)} from ${peer}`)
}

test('proxy list: addresses and CIDR ranges parse; anything else is named and refused', () => {
  for (const ok of ['', '127.0.0.1', '10.0.0.0/8, 192.168.1.1', '::1', 'fd00::/8', ['10.1.2.3', ' 10.1.2.4 ']]) trust(ok)
  for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.1/8/2', '::1/129', '10.0.0.0/x', '1.2.3', 'http://10.0.0.1', '10.0.0.0/']) {
    const problems: string[] = []
    assert.equal(parseProxies(`127.0.0.1,${bad}`, 'FORWARD_AUTH_PROXIES', problems), undefined, bad)
    assert.equal(problems.length, 1, bad)
    assert.match(problems[0] as string, /^FORWARD_AUTH_PROXIES\[1\]: /)
  }
})

test('only the listed proxies are trusted; an empty list trusts no one', () => {
  assert.ok(PROXIES.trusts('10.0.0.5'))
  assert.ok(PROXIES.trusts('10.0.0.255'))
  assert.ok(PROXIES.trusts('::ffff:127.0.0.1'), 'an IPv4 peer on a dual-stack listener')
  assert.ok(PROXIES.trusts('fd12::1'))
  for (const no of ['10.0.1.5', '127.0.0.2', '::1', 'fe80::1', '', 'garbage', undefined]) assert.ok(!PROXIES.trusts(no), String(no))
  const none = trust('')
  for (const peer of ['127.0.0.1', '10.0.0.5', '::1']) assert.ok(!none.trusts(peer))
  assert.match(refusal('forward-auth', forwarded, '127.0.0.1', none), /trusted proxy/)
})

test('forward-auth reads X-Forwarded-Method, -Proto, -Host and -Uri', () => {
  assert.deepEqual(originalRequest('forward-auth', forwarded, PROXY, PROXIES, ORIGINS), { method: 'GET', origin: APP, url: '/a/b?token=t&x=1' })
  assert.deepEqual(originalRequest('forward-auth', { ...forwarded, 'x-forwarded-proto': 'http', 'x-forwarded-host': '127.0.0.4:8080', 'x-forwarded-method': 'POST' }, PROXY, PROXIES, ORIGINS),
    { method: 'POST', origin: 'http://127.0.0.4:8080', url: '/a/b?token=t&x=1' })
  // A default port or upper case names the same origin, as the URL parser says.
  assert.equal(originalRequest('forward-auth', { ...forwarded, 'x-forwarded-host': 'APP.example.com:443' }, PROXY, PROXIES, ORIGINS).origin, APP)
})

test('auth-request reads X-Original-URL and X-Original-Method', () => {
  assert.deepEqual(originalRequest('auth-request', original, PROXY, PROXIES, ORIGINS), { method: 'GET', origin: APP, url: '/a/b?token=t&x=1' })
  assert.deepEqual(originalRequest('auth-request', { 'x-original-method': 'HEAD', 'x-original-url': 'http://127.0.0.4:8080/' }, PROXY, PROXIES, ORIGINS),
    { method: 'HEAD', origin: 'http://127.0.0.4:8080', url: '/' })
})

test('each endpoint reads only its own headers: a client-sent header of the other set is never believed', () => {
  // Caddy copies a client's X-Original-URL into its forward-auth request: forward-auth never reads it.
  assert.equal(originalRequest('forward-auth', { ...forwarded, 'x-original-url': 'https://evil.example/x' }, PROXY, PROXIES, ORIGINS).origin, APP)
  assert.match(refusal('forward-auth', { 'x-original-url': `${APP}/`, 'x-original-method': 'GET' }), /x-forwarded-proto/)
  // nginx passes a client's X-Forwarded-Host along: auth-request never reads it.
  assert.equal(originalRequest('auth-request', { ...original, 'x-forwarded-host': 'evil.example' }, PROXY, PROXIES, ORIGINS).origin, APP)
  assert.match(refusal('auth-request', forwarded), /x-original-url/)
})

test('the host must be one of the protected origins, exactly', () => {
  for (const host of ['other.example.com', 'app.example.com:8443', 'app.example.com.evil.example', 'evil.example']) {
    assert.match(refusal('forward-auth', { ...forwarded, 'x-forwarded-host': host }), /not a host this gate protects/, host)
  }
  assert.match(refusal('forward-auth', { ...forwarded, 'x-forwarded-proto': 'http' }), /not a host this gate protects/, 'the http twin')
  for (const url of ['http://app.example.com/', 'https://app.example.com:8443/', 'https://evil.example/?https://app.example.com/']) {
    assert.match(refusal('auth-request', { ...original, 'x-original-url': url }), /not a host this gate protects/, url)
  }
})

test('headers that do not say one request plainly are refused', () => {
  const fwd = (over: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> => ({ ...forwarded, ...over })
  const cases: [string, Record<string, string | string[] | undefined>][] = [
    ['missing host', fwd({ 'x-forwarded-host': undefined })],
    ['empty host', fwd({ 'x-forwarded-host': '' })],
    ['a list of hosts', fwd({ 'x-forwarded-host': 'evil.example, app.example.com' })],
    ['a repeated header', fwd({ 'x-forwarded-host': ['app.example.com', 'app.example.com'] })],
    ['user-info in the host', fwd({ 'x-forwarded-host': 'evil.example@app.example.com' })],
    ['a path in the host', fwd({ 'x-forwarded-host': 'app.example.com/x' })],
    ['a space in the host', fwd({ 'x-forwarded-host': 'app.example.com x' })],
    ['a proto list', fwd({ 'x-forwarded-proto': 'https,http' })],
    ['another proto', fwd({ 'x-forwarded-proto': 'ftp' })],
    ['no method', fwd({ 'x-forwarded-method': undefined })],
    ['a bad method', fwd({ 'x-forwarded-method': 'GET /' })],
    ['no uri', fwd({ 'x-forwarded-uri': undefined })],
    ['an absolute uri', fwd({ 'x-forwarded-uri': 'https://evil.example/' })],
    ['a uri with a space', fwd({ 'x-forwarded-uri': '/a b' })],
    ['a uri with a fragment', fwd({ 'x-forwarded-uri': '/a#b' })],
    ['a uri with a control character', fwd({ 'x-forwarded-uri': '/a\tb' })],
    ['a huge uri', fwd({ 'x-forwarded-uri': `/${'a'.repeat(9000)}` })],
  ]
  for (const [what, headers] of cases) assert.ok(refusal('forward-auth', headers), what)
  const orig = (over: Record<string, string | undefined>): Record<string, string | undefined> => ({ ...original, ...over })
  const originalCases: [string, Record<string, string | undefined>][] = [
    ['no url', orig({ 'x-original-url': undefined })],
    ['not a URL', orig({ 'x-original-url': '/a/b' })],
    ['another scheme', orig({ 'x-original-url': 'ftp://app.example.com/' })],
    ['user-info', orig({ 'x-original-url': 'https://u:p@app.example.com/' })],
    ['a fragment', orig({ 'x-original-url': 'https://app.example.com/#x' })],
    ['two URLs, as Node joins a repeated header', orig({ 'x-original-url': 'https://app.example.com/a, https://evil.example/' })],
    ['a space', orig({ 'x-original-url': 'https://app.example.com/a b' })],
    ['a huge URL', orig({ 'x-original-url': `https://app.example.com/${'a'.repeat(9000)}` })],
    ['no method', orig({ 'x-original-method': undefined })],
  ]
  for (const [what, headers] of originalCases) assert.ok(refusal('auth-request', headers), what)
})

test('logout reads only X-Forwarded-Proto and -Host', () => {
  assert.deepEqual(originalRequest('logout', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com' }, PROXY, PROXIES, ORIGINS), { method: 'POST', origin: APP, url: '/' })
  assert.match(refusal('logout', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' }), /not a host/)
  assert.match(refusal('logout', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com' }, '192.0.2.1'), /trusted proxy/)
})
