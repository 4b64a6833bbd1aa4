/**
 * What the IdP answers to requests no browser sends, over real sockets: a request-target that is not
 * a path, a method Node's parser refuses, headers over its limit. Each gets Tessera's error with its
 * code (docs/errors.md), never Fastify's body, and nothing is served by the path inside a full URL.
 * A body that never finishes gets 408 and a closed socket; a path with a malformed percent-escape
 * gets 400 without its target echoed; all of these carry the IdP's security headers.
 * And form fields the login ignores (`next`, `mfa`) are ignored, not refused, whatever their value.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Browser, type Page } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw-http.js'
import { formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'

let stack: Stack
// A short request timeout, so a stalled request is answered in about a second, not 30.
const REQUEST_TIMEOUT_MS = 800
useStack((_redis, s) => { stack = s }, { idpRequestTimeoutMs: REQUEST_TIMEOUT_MS })

/** The browser security headers docs/security.md promises on every IdP answer, and no-store. */
function assertIdpHeaders(headers: string, what: string): void {
  assert.match(headers, /\r\ncontent-security-policy: default-src 'none';/, `${what}: CSP`)
  assert.match(headers, /\r\nx-content-type-options: nosniff/, `${what}: nosniff`)
  assert.match(headers, /\r\nreferrer-policy: no-referrer/, `${what}: Referrer-Policy`)
  assert.match(headers, /\r\ncache-control: no-store/, `${what}: no-store`)
}

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

test('a body that never finishes gets 408 TESSERA_ERR_BAD_REQUEST and its socket closed, once the request timeout passes', async () => {
  const started = Date.now()
  const { text, closed } = await new Promise<{ text: string; closed: boolean }>((resolve) => {
    const { hostname, port } = new URL(stack.idpUrl)
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    const give = (closed: boolean): void => { clearTimeout(timer); socket.destroy(); resolve({ text: Buffer.concat(chunks).toString('utf8'), closed }) }
    const timer = setTimeout(() => give(false), REQUEST_TIMEOUT_MS * 5)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => give(true))
    socket.on('error', () => give(true))
    socket.write(`POST /login HTTP/1.1\r\nHost: ${host()}\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a`)
  })
  assert.ok(closed, `the IdP closed the socket (${Date.now() - started} ms): ${JSON.stringify(text.slice(0, 200))}`)
  assert.ok(Date.now() - started >= REQUEST_TIMEOUT_MS - 50, 'not before the timeout')
  const end = text.indexOf('\r\n\r\n')
  assert.match(text, /^HTTP\/1\.1 408 /)
  assert.deepEqual(JSON.parse(text.slice(end + 4)), { code: 'TESSERA_ERR_BAD_REQUEST', message: 'The request took too long to arrive.' })
  assertIdpHeaders(text.slice(0, end).toLowerCase(), '408')
})

test('a malformed percent-escape in the path gets 400 TESSERA_ERR_BAD_REQUEST, JSON or a page, with no echo of the target', async () => {
  for (const target of ['/%zz?state=<b>x</b>', '/login%', '/%C0%AE', '/login/%E0%A4%A?next=%3Cscript%3E']) {
    const json = await rawRequest(stack.idpUrl, `GET ${target} HTTP/1.1\r\nHost: ${host()}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    assert.equal(json.status, 400, target)
    assert.deepEqual(JSON.parse(json.body), { code: 'TESSERA_ERR_BAD_REQUEST', message: 'The request was not understood.' }, target)
    assertIdpHeaders(json.headers, `${target} (JSON)`)
    const page = await rawRequest(stack.idpUrl, `GET ${target} HTTP/1.1\r\nHost: ${host()}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`)
    assert.equal(page.status, 400, target)
    assert.match(page.headers, /content-type: text\/html/, target)
    assert.match(page.body, /TESSERA_ERR_BAD_REQUEST/, target)
    assertIdpHeaders(page.headers, `${target} (page)`)
    for (const answer of [json, page]) {
      assert.ok(!answer.body.includes('<b>') && !answer.body.includes('%zz') && !answer.body.includes('script'), `${target}: no echo: ${answer.body.slice(0, 200)}`)
      assert.doesNotMatch(answer.body, /FST_ERR/)
    }
  }
})

test('the answers Node\'s parser gets (400, 431) carry the IdP\'s security headers too', async () => {
  const unknown = await rawRequest(stack.idpUrl, `FOO /login HTTP/1.1\r\nHost: ${host()}\r\n\r\n`)
  assert.equal(unknown.status, 400)
  assertIdpHeaders(unknown.headers, 'unknown method')
  const large = await rawRequest(stack.idpUrl, `GET /login HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  assert.equal(large.status, 431)
  assertIdpHeaders(large.headers, '431')
})

test('a form route takes its fields as a JSON object too, CSRF-checked as a form; text/plain gets 415 like any other non-form type', async () => {
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login`)
  const fields = { ...formFields(form.body), username: 'alice', password: PASSWORD }
  const post = (type: string, body: string): Promise<Page> => b.request(`${stack.idpUrl}/login`, { method: 'POST', headers: { accept: 'application/json', 'content-type': type }, body })
  for (const type of ['text/plain', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=x', 'application/xml']) {
    const refused = await post(type, new URLSearchParams(fields).toString())
    assert.equal(refused.status, 415, type)
    assert.equal(refused.json().code, 'TESSERA_ERR_BAD_REQUEST', type)
  }
  const forged = await post('application/json', JSON.stringify({ ...fields, csrf: 'forged' }))
  assert.equal(forged.status, 403, 'a JSON body is CSRF-checked as a form is (the login form shown again)')
  const notObject = await post('application/json', JSON.stringify(['alice']))
  assert.equal(notObject.status, 400)
  // The refused post showed a fresh form (a new pre-login cookie): its CSRF field is the one to send.
  const fresh = await b.get(`${stack.idpUrl}/login`)
  const signedIn = await post('application/json', JSON.stringify({ ...formFields(fresh.body), username: 'alice', password: PASSWORD }))
  assert.equal(signedIn.status, 303, 'the same fields as JSON sign in')
})
