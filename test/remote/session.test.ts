/** `request.session`'s writes, with no framework and no Redis: what set() takes, copies and refuses. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_SESSION_DATA, TesseraSession } from '../../src/remote/session.js'
import type { SessionSnapshot } from '../../src/shared/session.js'

function session(data: Record<string, unknown> = {}): TesseraSession {
  const snapshot: SessionSnapshot = {
    sid: 'sid', user: { username: 'alice', displayName: 'Alice', email: '', groups: [] },
    auth: { methods: [{ method: 'pwd', at: 1 }], signedInAt: 1 }, data: new Map(Object.entries(data)), createdAt: 1, expiresAt: 2,
  }
  return new TesseraSession(snapshot)
}

test('a value JSON cannot hold is refused with a TypeError that says so, not a parser error', () => {
  const s = session()
  for (const value of [() => 1, Symbol('x')]) {
    assert.throws(() => { s.set('k', value) }, (err: unknown) => err instanceof TypeError && /session values are JSON: a (function|symbol) cannot be stored/.test(err.message))
  }
  assert.throws(() => { s.set('k', 1n) }, TypeError)
  assert.equal(s.get('k'), undefined, 'nothing was set')
})

test('set() stores a copy of the value as JSON: a later change to the object is not saved', () => {
  const s = session()
  const value = { list: [1] }
  s.set('k', value)
  value.list.push(2)
  assert.deepEqual(s.get('k'), { list: [1] })
  s.set('d', new Date(0))
  assert.equal(s.get('d'), '1970-01-01T00:00:00.000Z', 'as JSON.stringify writes it')
})

test(`session data is limited to ${MAX_SESSION_DATA} characters: growth past it is refused, shrinking and deleting are not`, () => {
  const s = session({ existing: 'x'.repeat(1000) })
  const room = MAX_SESSION_DATA - ('existing'.length + 1002) - 'big'.length - 2
  s.set('big', 'y'.repeat(room)) // exactly at the limit
  assert.throws(() => { s.set('one-more', 1) }, (err: unknown) => err instanceof RangeError && /session data is limited to 65536 characters/.test(err.message))
  assert.throws(() => { s.set('big', 'y'.repeat(room + 1)) }, RangeError)
  s.set('big', 'small')
  s.set('one-more', 1)
  assert.equal(s.get('one-more'), 1)
  // Many small keys in one request end at the limit with the same RangeError, not a stack overflow later.
  assert.throws(() => { for (let i = 0; i < 100_000; i++) s.set(`k${i}`, i) }, RangeError)
  // A session already over the limit (written by an earlier version) can still shrink.
  const over = session({ a: 'x'.repeat(MAX_SESSION_DATA), b: 'y'.repeat(10) })
  over.set('a', 'short')
  over.delete('b')
  assert.equal(over.get('a'), 'short')
})
