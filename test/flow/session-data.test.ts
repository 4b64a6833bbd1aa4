import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { type Browser } from '../helpers/browser.js'
import { signInThroughA } from '../helpers/sso-scenarios.js'
import { useStack, type Stack } from '../helpers/stack.js'

// Routes an app might write: session keys chosen by the user.
function kvRoutes(app: FastifyInstance): void {
  app.post<{ Body: { name: string; value: string } }>('/kv', async (req) => {
    req.session.set(req.body.name, JSON.parse(req.body.value))
    return { own: describe(req.session.get(req.body.name)), isAdmin: describe(req.session.get('isAdmin')) }
  })
  app.get<{ Querystring: { name: string } }>('/kv', async (req) => ({ value: describe(req.session.get(req.query.name)) }))
}

/** A JSON-safe picture of what get() returned, functions included. */
function describe(v: unknown): unknown {
  return typeof v === 'function' ? `function ${(v as { name: string }).name}` : v === undefined ? 'undefined' : v
}

let stack: Stack
useStack((_r, s) => { stack = s }, { appRoutes: kvRoutes })

async function read(b: Browser, base: string, name: string): Promise<unknown> {
  const page = await b.get(`${base}/kv?name=${encodeURIComponent(name)}`, 'application/json')
  assert.equal(page.status, 200, page.body)
  return page.json<{ value: unknown }>().value
}

test('a fresh session inherits no keys: get() of Object.prototype names is undefined in every app', async () => {
  const b = await signInThroughA(stack)
  await b.navigate(`${stack.appBUrl}/private`)
  for (const base of [stack.appAUrl, stack.appBUrl]) {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__', 'isAdmin']) {
      assert.equal(await read(b, base, name), 'undefined', `${base} get('${name}')`)
    }
  }
})

test('set("__proto__", {...}) stores a real key and pollutes nothing, in the writing app or another', async () => {
  const b = await signInThroughA(stack)
  await b.navigate(`${stack.appBUrl}/private`)
  const wrote = await b.post(`${stack.appAUrl}/kv`, { name: '__proto__', value: '{"isAdmin":true}' }, 'application/json')
  assert.equal(wrote.status, 200, wrote.body)
  assert.deepEqual(wrote.json(), { own: { isAdmin: true }, isAdmin: 'undefined' })
  for (const base of [stack.appAUrl, stack.appBUrl]) {
    assert.deepEqual(await read(b, base, '__proto__'), { isAdmin: true }, `${base} reads the key back`)
    assert.equal(await read(b, base, 'isAdmin'), 'undefined', `${base}: no key isAdmin was ever set`)
    assert.equal(await read(b, base, 'constructor'), 'undefined', base)
  }
  assert.equal((Object.prototype as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched')
  // Other ordinary keys keep working next to it.
  await b.post(`${stack.appBUrl}/kv`, { name: 'constructor', value: '"mine"' }, 'application/json')
  assert.equal(await read(b, stack.appAUrl, 'constructor'), 'mine')
})
