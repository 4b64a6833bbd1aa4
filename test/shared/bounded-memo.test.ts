import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BoundedMemo } from '../../src/shared/bounded-memo.js'

test('a memo never holds more than its bound, and forgets what is not used', () => {
  const memo = new BoundedMemo<string, number>(100)
  memo.set('first', 0)
  for (let i = 0; i < 1000; i++) {
    memo.set(`k${i}`, i)
    assert.ok(memo.size <= 100, `size ${memo.size} after ${i + 1} more`)
  }
  assert.strictEqual(memo.get('first'), undefined)
  // The newest entries are all there.
  for (let i = 950; i < 1000; i++) assert.strictEqual(memo.get(`k${i}`), i)
})

test('an entry in use stays, however many others come and go; null is a value', () => {
  const memo = new BoundedMemo<string, number | null>(10)
  memo.set('kept', 7)
  memo.set('refused', null)
  for (let i = 0; i < 500; i++) {
    memo.set(`k${i}`, i)
    if (i % 4 === 0) {
      assert.strictEqual(memo.get('kept'), 7, `after ${i + 1} others`)
      assert.strictEqual(memo.get('refused'), null)
    }
  }
  assert.ok(memo.size <= 10)
})
