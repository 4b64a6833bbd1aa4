import assert from 'node:assert/strict'
import { test } from 'node:test'
import { randomBytes } from 'node:crypto'
import { buildGate, resolveGateOptions, type TesseraGateOptions } from '../../src/remote/gate.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { OptionsError } from '../../src/shared/errors.js'
import { keyringOf, newKey } from '../helpers/sync-keys.js'

const ring = keyringOf(newKey('k1'))
const A = 'https://a.example.com'
const B = 'https://b.example.net'
const good: TesseraGateOptions = {
  idpUrl: 'https://sso.example.com',
  redis: 'redis://127.0.0.1:1',
  sessionSecret: randomBytes(32).toString('base64url'),
  proxies: '127.0.0.1',
  hosts: [{ origin: A, appKeys: formatAppKeys(ring, A) }, { origin: B, appKeys: formatAppKeys(ring, B), cookie: { name: 'b_handle' } }],
}

function problemsOf(opts: Partial<TesseraGateOptions>): readonly string[] {
  try {
    resolveGateOptions(opts)
  } catch (err) {
    assert.ok(err instanceof OptionsError)
    return err.problems
  }
  assert.fail('accepted')
}

test('each protected host gets its own origin, keys and handle cookie', () => {
  const { hosts, trust } = resolveGateOptions(good)
  assert.deepEqual([...hosts.keys()], [A, B])
  assert.equal(hosts.get(A)?.resolved.cookieName, '__Host-tessera')
  assert.equal(hosts.get(B)?.resolved.cookieName, 'b_handle')
  assert.ok(trust.trusts('127.0.0.1'))
  assert.ok(!trust.trusts('127.0.0.2'))
})

test('bad gate options are all named at once', () => {
  assert.deepEqual(problemsOf({ ...good, hosts: [] }), ['hosts: at least one { origin, appKeys } is required'])
  assert.match(problemsOf({ ...good, hosts: [good.hosts[0]!, good.hosts[0]!] }).join('\n'), /hosts\[1\]: https:\/\/a\.example\.com is listed twice/)
  assert.match(problemsOf({ ...good, hosts: [{ origin: 'https://a.example.com/path', appKeys: formatAppKeys(ring, A) }] }).join('\n'), /^hosts\[0\]\.origin: /)
  assert.match(problemsOf({ ...good, hosts: [{ origin: A, appKeys: 'nope' }] }).join('\n'), /^hosts\[0\]\.appKeys\[0\]: /)
  const { proxies: _, ...noProxies } = good
  assert.match(problemsOf(noProxies).join('\n'), /^proxies: required/)
  assert.match(problemsOf({ ...good, proxies: 'localhost' }).join('\n'), /^proxies\[0\]: /)
  const many = problemsOf({ ...good, sessionSecret: 'short', proxies: '1.2.3' })
  assert.ok(many.some((p) => p.includes('sessionSecret')) && many.some((p) => p.startsWith('proxies[0]')), many.join('\n'))
})

test('a gate with bad options does not start', async () => {
  const gate = buildGate({ ...good, proxies: 'not-an-address' })
  await assert.rejects(async () => { await gate.ready() }, { name: 'OptionsError', code: 'TESSERA_ERR_OPTIONS', message: /proxies\[0\]/ })
})

test('the gate bounds how long a request may take to arrive (60 s, headers included), as the IdP does', async () => {
  const gate = buildGate({ ...good, proxies: 'not-an-address' })
  try {
    assert.equal(gate.server.requestTimeout, 60_000, 'Fastify\'s default 0 would hold a stalled request open for ever')
    assert.equal(gate.server.headersTimeout, 60_000, 'above requestTimeout, Node would not time out a stalled body')
  } finally {
    await gate.close().catch(() => {})
  }
})
