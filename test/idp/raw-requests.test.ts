/**
 * What the IdP answers to requests no browser sends, over real sockets: a request-target that is not
 * a path, a method Node's parser refuses, headers over its limit. Each gets Tessera's error with its
 * code (docs/errors.md), never Fastify's body, and nothing is served by the path inside a full URL.
 * And form fields the login ignores (`next`, `mfa`) are ignored, not refused, whatever their value.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw-http.js'
import { formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'

let stack: Stack
useStack((_redis, s) => { stack = s })

const host = (): string => new URL(stack.idpUrl).host

test('a request-target that is not a path gets 400 TESSERA_ERR_BAD_REQUEST, not the page at its path', async () => {
  for (const target of ['http://evil.example/login', `${stack.idpUrl}/login`, '*']) {
    for (const accept of ['application/json', 'text/html']) {
      const r = await rawRequest(stack.idpUrl, `GET ${target} HTTP/1.1\r\nHost: ${host()}\r\nAccept: ${accept}\r\nConnection: close\r\n\r\n`)
      assert.equal(r.status, 400, `${target} (${accept})`)
      assert.ok(r.body.includes('TESSERA_ERR_BAD_REQUEST'), `${target} (${accept}): ${r.body.slice(0, 200)}`)
      assert.ok(!r.body.includes('name="password"'), 'no login form')
    }
  }
  // The same path as origin-form is the login form.
  const ok = await rawRequest(stack.idpUrl, `GET /login HTTP/1.1\r\nHost: ${host()}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`)
  assert.equal(ok.status, 200)
  assert.ok(ok.body.includes('name="password"'))
})

test('a method or headers Node\'s parser refuses get JSON TESSERA_ERR_BAD_REQUEST (400, 431)', async () => {
  const unknown = await rawRequest(stack.idpUrl, `FOO /login HTTP/1.1\r\nHost: ${host()}\r\n\r\n`)
  assert.equal(unknown.status, 400)
  assert.deepEqual(JSON.parse(unknown.body), { code: 'TESSERA_ERR_BAD_REQUEST', message: 'The request was not understood.' })
  const large = await rawRequest(stack.idpUrl, `GET /login HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  assert.equal(large.status, 431)
  assert.equal((JSON.parse(large.body) as { code: string }).code, 'TESSERA_ERR_BAD_REQUEST')
  assert.match(large.headers, /content-type: application\/json/)
})

test('a login post with any next or mfa value signs in; only the listed pages are returned to', async () => {
  const extras: Record<string, string>[] = [{ next: `/${'x'.repeat(100)}` }, { mfa: 'yes' }, { next: 'https://evil.example/', mfa: '0' }]
  for (const extra of extras) {
    const b = new Browser()
    const form = await b.get(`${stack.idpUrl}/login`)
    assert.equal(form.status, 200)
    const r = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD, ...extra })
    assert.equal(r.status, 303, `${JSON.stringify(extra)}: ${r.status} ${r.body.slice(0, 200)}`)
    assert.equal(new URL(r.location() as string, stack.idpUrl).origin, stack.idpUrl, 'stays on the IdP')
    assert.equal(new URL(r.location() as string, stack.idpUrl).pathname, '/', 'an unlisted next is ignored')
  }
})
