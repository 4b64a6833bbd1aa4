import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseSetCookie, stringifySetCookie } from 'cookie'
import { setCookieLines, type CookieAttributes } from '../../src/remote/set-cookie.js'

const variants: CookieAttributes[] = [
  { secure: false, sameSite: 'lax', path: '/', httpOnly: true },
  { secure: true, sameSite: 'lax', path: '/', httpOnly: true },
  { secure: true, sameSite: 'none', path: '/app', httpOnly: true, domain: 'example.com' },
]

// Attribute order is not part of the format: compare what a browser would read from the line.
const read = (line: string): Record<string, unknown> => ({ ...parseSetCookie(line) })

test("each line reads as `cookie`'s own serializer would write it, for every attribute set", () => {
  for (const attrs of variants) {
    const line = setCookieLines(attrs, ['tessera', 'tessera_state'])
    assert.deepEqual(read(line({ name: 'tessera', value: 'abc.DEF_-1' })), read(stringifySetCookie({ name: 'tessera', value: 'abc.DEF_-1', ...attrs })))
    assert.deepEqual(read(line({ name: 'tessera_state', value: 'xyz', maxAge: 900 })), read(stringifySetCookie({ name: 'tessera_state', value: 'xyz', maxAge: 900, ...attrs })))
    const cleared = read(line({ name: 'tessera_state', value: null }))
    assert.deepEqual(cleared, read(stringifySetCookie({ name: 'tessera_state', value: '', maxAge: 0, expires: new Date(0), ...attrs })))
    assert.equal(cleared.maxAge, 0)
    assert.equal(cleared.httpOnly, true)
    assert.equal(cleared.secure, attrs.secure ? true : undefined)
  }
})

test('a value that would need encoding, or a cookie the app does not own, is refused rather than written', () => {
  const line = setCookieLines(variants[0] as CookieAttributes, ['tessera'])
  assert.throws(() => line({ name: 'tessera', value: 'a;b' }), /not base64url/)
  assert.throws(() => line({ name: 'tessera', value: 'a b' }), /not base64url/)
  assert.throws(() => line({ name: 'other', value: 'x' }), /not one of this app's/)
})
