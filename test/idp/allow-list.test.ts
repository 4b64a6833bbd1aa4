import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AllowList, MAX_CALLBACK_LENGTH } from '../../src/idp/allow-list.js'
import {
  ALLOWED_NON_ASCII, ALLOWED_ORIGINS, ALLOWED_WITH_STANDARD_BASE64, HOSTILE_URLS, fixtureCases, fixturePayloads, goQueryUnescape, hostileCases,
} from '../helpers/callbacks.js'

const list = new AllowList(ALLOWED_ORIGINS)
const b64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')

function assertAllowed(param: unknown, href: string, origin: string): void {
  const result = list.check(param)
  assert.equal(result.kind, 'allowed', `${JSON.stringify(param)}: ${JSON.stringify(result)}`)
  if (result.kind !== 'allowed') return
  assert.equal(result.url.href, href)
  assert.equal(result.url.origin, origin)
}

test('the fixture is oauth2-proxy\'s payload list, read from test/fixtures', () => {
  const payloads = fixturePayloads()
  assert.equal(payloads.length, 558)
  assert.equal(payloads[0], '";alert(0);//')
  assert.ok(payloads.includes('/%09/example.com'))
})

test('goQueryUnescape behaves like Go\'s url.QueryUnescape', () => {
  assert.equal(goQueryUnescape('a+b%20c%2F')?.toString('latin1'), 'a b c/')
  assert.deepEqual(goQueryUnescape('%ff%FE'), Buffer.from([0xff, 0xfe]))
  assert.equal(goQueryUnescape('%'), undefined)
  assert.equal(goQueryUnescape('%2'), undefined)
  assert.equal(goQueryUnescape('%zz'), undefined)
  assert.equal(goQueryUnescape('ｗ')?.toString('utf8'), 'ｗ')
})

test('every open-redirect payload, raw and query-unescaped, base64url-encoded, is not allowed', () => {
  const cases = fixtureCases()
  assert.equal(cases.length, 2 * 558)
  const accepted = cases.filter((c) => list.check(c.param).kind === 'allowed').map((c) => c.label)
  assert.deepEqual(accepted, [])
  // ...and the same payloads given to checkUrl directly (the CLI's path), where they are text.
  const acceptedText = fixturePayloads().filter((line) => list.checkUrl(line).kind === 'allowed')
  assert.deepEqual(acceptedText, [])
})

test(`at least 100 hand-written hostile callbacks are all refused (${HOSTILE_URLS.length} URLs)`, () => {
  const cases = hostileCases()
  assert.ok(HOSTILE_URLS.length >= 100, `only ${HOSTILE_URLS.length} hostile URLs`)
  const wrong = cases
    .map((c) => ({ label: c.label, result: list.check(c.param) }))
    .filter(({ result }) => result.kind !== 'refused')
  assert.deepEqual(wrong, [])
  // checkUrl on the decoded text refuses them too.
  const wrongText = HOSTILE_URLS.filter(([, url]) => list.checkUrl(url).kind !== 'refused')
  assert.deepEqual(wrongText, [])
})

test('each hostile category is refused for the expected reason family', () => {
  const reason = (url: string): string => {
    const r = list.checkUrl(url)
    return r.kind === 'refused' ? r.reason : `NOT REFUSED (${r.kind})`
  }
  assert.match(reason('http://www.whitelisteddomain.tld@evil.com'), /user-info/)
  assert.match(reason('http://evil.com@www.whitelisteddomain.tld'), /user-info/)
  assert.match(reason('http://user:pass@www.whitelisteddomain.tld/'), /user-info/)
  assert.match(reason('http://www.whitelisteddomain.tld\\@evil.com'), /backslash/)
  assert.match(reason('http://ｗｗｗ.whitelisteddomain.tld/'), /non-ASCII/)
  assert.match(reason('http://www.whitelisteddomain.tld\r\nLocation: http://evil.com/'), /control/)
  assert.match(reason('http://%77ww.whitelisteddomain.tld/'), /repaired/)
  assert.match(reason('http://2130706434:3002/'), /repaired/)
  assert.match(reason('http:www.whitelisteddomain.tld'), /with \/\//)
  assert.match(reason('http:///www.whitelisteddomain.tld/'), /repaired/)
  assert.match(reason('http://www.whitelisteddomain.tld./'), /dot/)
  assert.match(reason('blob:http://www.whitelisteddomain.tld/x'), /with \/\//)
  assert.match(reason('https://app.test:3001/'), /not in KNOWN_REMOTE_HOSTS/)
  assert.match(reason(`http://www.whitelisteddomain.tld/${'a'.repeat(MAX_CALLBACK_LENGTH)}`), /too long/)
  assert.match(reason('http://www.whitelisteddomain.tld%2fevil.com/'), /not a valid URL/)
})

test('an https twin is refused when only the http origin is listed', () => {
  const httpOnly = new AllowList(['http://app.test:3001'])
  assert.equal(httpOnly.check(b64url('http://app.test:3001/x')).kind, 'allowed')
  for (const url of ['https://app.test:3001/x', 'https://app.test:3001', 'HTTPS://app.test:3001/', 'https://app.test/', 'http://app.test/', 'ws://app.test:3001/']) {
    assert.equal(httpOnly.check(b64url(url)).kind, 'refused', url)
  }
})

test('non-string parameters are refused: repeated (array), number, object, null', () => {
  for (const param of [[b64url('https://www.whitelisteddomain.tld/')], [b64url('https://evil.com/'), b64url('https://www.whitelisteddomain.tld/')], 42, {}, null, true]) {
    assert.deepEqual(list.check(param), { kind: 'refused', reason: 'repeated or not a string' }, JSON.stringify(param))
  }
})

test('no callback is "none", not refused', () => {
  assert.deepEqual(list.check(undefined), { kind: 'none' })
  assert.deepEqual(list.check(''), { kind: 'none' })
})

test('allowed origins are accepted with path, query and fragment, normalised by the URL parser', () => {
  assertAllowed(b64url('http://www.whitelisteddomain.tld/a/b?c=1&token=old#frag'), 'http://www.whitelisteddomain.tld/a/b?c=1&token=old#frag', 'http://www.whitelisteddomain.tld')
  assertAllowed(b64url('https://www.whitelisteddomain.tld'), 'https://www.whitelisteddomain.tld/', 'https://www.whitelisteddomain.tld')
  assertAllowed(b64url('HTTP://WWW.WhiteListedDomain.TLD/x'), 'http://www.whitelisteddomain.tld/x', 'http://www.whitelisteddomain.tld')
  assertAllowed(b64url('https://www.whitelisteddomain.tld:443/'), 'https://www.whitelisteddomain.tld/', 'https://www.whitelisteddomain.tld')
  assertAllowed(b64url('http://www.whitelisteddomain.tld:80/p'), 'http://www.whitelisteddomain.tld/p', 'http://www.whitelisteddomain.tld')
  assertAllowed(b64url('http://app.test:3001/x?y=%20z'), 'http://app.test:3001/x?y=%20z', 'http://app.test:3001')
  assertAllowed(b64url('http://APP.test:3001'), 'http://app.test:3001/', 'http://app.test:3001')
  assertAllowed(b64url('http://127.0.0.2:3002/'), 'http://127.0.0.2:3002/', 'http://127.0.0.2:3002')
  // Look-alike redirects in the path or query stay on the allowed origin.
  assertAllowed(b64url('https://www.whitelisteddomain.tld/?next=//evil.com'), 'https://www.whitelisteddomain.tld/?next=//evil.com', 'https://www.whitelisteddomain.tld')
  assertAllowed(b64url('https://www.whitelisteddomain.tld//evil.com'), 'https://www.whitelisteddomain.tld//evil.com', 'https://www.whitelisteddomain.tld')
  // Percent-encoded CR LF in the path stays encoded: no header can be split.
  assertAllowed(b64url('http://www.whitelisteddomain.tld/%0d%0aSet-Cookie:x=1'), 'http://www.whitelisteddomain.tld/%0d%0aSet-Cookie:x=1', 'http://www.whitelisteddomain.tld')
})

test('standard base64 (+, / and = padding) is accepted for an allowed URL and still refused for a hostile one', () => {
  const standard = Buffer.from(ALLOWED_WITH_STANDARD_BASE64).toString('base64')
  assert.match(standard, /\+/)
  assert.match(standard, /\//)
  assert.match(standard, /=$/)
  assertAllowed(standard, ALLOWED_WITH_STANDARD_BASE64, 'https://www.whitelisteddomain.tld')
  // base64url of the same text, with and without padding.
  assertAllowed(Buffer.from(ALLOWED_WITH_STANDARD_BASE64).toString('base64url'), ALLOWED_WITH_STANDARD_BASE64, 'https://www.whitelisteddomain.tld')
  assert.ok(standard.endsWith('=='))
  assertAllowed(`${Buffer.from(ALLOWED_WITH_STANDARD_BASE64).toString('base64url')}==`, ALLOWED_WITH_STANDARD_BASE64, 'https://www.whitelisteddomain.tld')
  for (const hostile of ['https://evil.com/~?????', 'http://www.whitelisteddomain.tld@evil.com/??~???a', 'https://www.whitelisteddomain.tld.evil.com/?~????']) {
    const enc = Buffer.from(hostile).toString('base64')
    assert.match(enc, /[+/].*=$/, enc)
    assert.equal(list.check(enc).kind, 'refused', hostile)
  }
})

test('exactly MAX_CALLBACK_LENGTH characters is accepted, one more is refused', () => {
  const base = 'https://www.whitelisteddomain.tld/'
  const atLimit = base + 'a'.repeat(MAX_CALLBACK_LENGTH - base.length)
  assert.equal(list.check(b64url(atLimit)).kind, 'allowed')
  assert.equal(list.check(b64url(`${atLimit}a`)).kind, 'refused')
})

test('non-ASCII text in the path, query or fragment is honoured, percent-encoded as UTF-8; in the scheme or host it is refused', () => {
  for (const [url, href] of ALLOWED_NON_ASCII) {
    assertAllowed(b64url(url), href, new URL(href).origin)
    assert.equal(list.checkUrl(url).kind, 'allowed', url)
  }
  const reason = (url: string): string => {
    const r = list.checkUrl(url)
    return r.kind === 'refused' ? r.reason : `NOT REFUSED (${r.kind})`
  }
  for (const url of ['http://café.whitelisteddomain.tld/', 'http://www.whitelisteddomain.tld:８０/é', 'ｈttp://www.whitelisteddomain.tld/', 'http://é@www.whitelisteddomain.tld/']) {
    assert.match(reason(url), /non-ASCII characters in the scheme or host/, url)
  }
  // Unicode spaces and controls stay refused wherever they are.
  for (const url of ['http://www.whitelisteddomain.tld/a\u00a0b', 'http://www.whitelisteddomain.tld/a\u2028b', 'http://www.whitelisteddomain.tld/?q=\u0085', 'http://www.whitelisteddomain.tld/#\u3000']) {
    assert.match(reason(url), /spaces, control characters/, JSON.stringify(url))
  }
})
