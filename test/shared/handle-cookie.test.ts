import assert from 'node:assert/strict'
import { test } from 'node:test'
import { randomBytes } from 'node:crypto'
import { decodeHandle, encodeHandle } from '../../src/shared/handle-cookie.js'

const secretKey = randomBytes(32).toString('base64url')
const otherKey = randomBytes(32).toString('base64url')
const A = 'https://a.example.com'
const B = 'https://b.example.com'
const handle = () => ({ sid: randomBytes(16).toString('base64url'), secret: randomBytes(32).toString('base64url') })

test('a cookie opens only with the secret and audience it was signed for, also once it has been verified before', () => {
  const h = handle()
  const value = encodeHandle(h, secretKey, A)
  // Twice: the second answer comes from the memo of verified cookies and must agree with the first.
  for (let i = 0; i < 2; i++) {
    assert.deepStrictEqual(decodeHandle(value, secretKey, A), h)
    assert.strictEqual(decodeHandle(value, secretKey, B), undefined, 'another app\'s audience')
    assert.strictEqual(decodeHandle(value, otherKey, A), undefined, 'another app\'s secret')
  }
})

test('a forged or altered cookie is rejected, before and after the genuine one was verified', () => {
  const h = handle()
  const value = encodeHandle(h, secretKey, A)
  const [sid, secret, mac] = value.split('.') as [string, string, string]
  const forged = [
    `${sid}.${secret}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`,
    `${sid}.${handle().secret}.${mac}`,
    `${handle().sid}.${secret}.${mac}`,
    `${sid}.${secret}`,
    `${value}.x`,
    '',
  ]
  for (const f of forged) assert.strictEqual(decodeHandle(f, secretKey, A), undefined, f)
  assert.deepStrictEqual(decodeHandle(value, secretKey, A), h)
  for (const f of forged) assert.strictEqual(decodeHandle(f, secretKey, A), undefined, f)
})

test('past 10,000 remembered cookies, the answers stay the same', () => {
  const first = handle()
  const firstValue = encodeHandle(first, secretKey, A)
  assert.deepStrictEqual(decodeHandle(firstValue, secretKey, A), first)
  for (let i = 0; i < 10_050; i++) {
    const h = handle()
    assert.deepStrictEqual(decodeHandle(encodeHandle(h, secretKey, A), secretKey, A), h)
  }
  // Pushed out of the memo by now: verified again from its MAC, with the same answers.
  assert.deepStrictEqual(decodeHandle(firstValue, secretKey, A), first)
  assert.strictEqual(decodeHandle(firstValue, secretKey, B), undefined)
})
