/** Every log line of a full flow and of its failures, searched for every secret value (ASVS V16.2.5). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { Browser } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'
import { loggerOptions } from '../../src/shared/logger.js'

const lines: string[] = []
const sink = (): Writable => new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done() } })

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, {
    env: { LOG_LEVEL: 'trace' },
    idpLogger: { ...loggerOptions('trace'), stream: sink() },
    appLogger: { level: 'trace', stream: sink() },
  })

test('no password, token, cookie, state, callback, key or secret reaches a log line', async () => {
  const secrets: string[] = [PASSWORD, 'wrong-password-value', stack.config.sessionSecret]
  for (const k of stack.config.keyring.byId.values()) secrets.push(k.key.export().toString('base64url'))

  const b = new Browser()
  const first = await b.get(`${stack.appAUrl}/private?q=1`)
  const login = new URL(first.location() as string)
  secrets.push(login.searchParams.get('callback') as string, login.searchParams.get('state') as string)
  const form = await b.get(login.href)
  const fields = formFields(form.body)
  secrets.push(fields.csrf as string)
  await b.post(`${stack.idpUrl}/login`, { ...fields, username: 'alice', password: 'wrong-password-value' })
  const again = await b.get(login.href)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(again.body), username: 'alice', password: PASSWORD })
  const token = new URL(posted.location() as string).searchParams.get('token') as string
  secrets.push(token)
  await b.navigate(posted.location() as string)
  // Failures: a replayed token, a tampered one, a login without CSRF, a bad callback.
  await b.get(`${stack.appBUrl}/private?token=${encodeURIComponent(token)}`)
  await new Browser().get(`${stack.appAUrl}/private?token=${encodeURIComponent(token.slice(0, -3) + 'AAA')}`)
  await new Browser().post(`${stack.idpUrl}/login`, { username: 'alice', password: PASSWORD })
  await b.navigate(`${stack.appBUrl}/private`)
  for (const [host, jar] of b.jars) for (const [name, value] of jar) { if (value) secrets.push(value); assert.ok(name, host) }
  for (const line of b.setCookies) secrets.push((line.split(';')[0] as string).split('=').slice(1).join('='))
  await b.post(`${stack.appAUrl}/logout`, {})

  const real = secrets.filter((s) => s.length >= 8)
  assert.ok(lines.length > 20, `captured ${lines.length} log lines`)
  assert.ok(lines.some((l) => l.includes('request rejected')), 'failures were logged')
  for (const line of lines) {
    for (const secret of real) assert.ok(!line.includes(secret), `a secret reached the log: ${line.slice(0, 200)}`)
    // No part of a session handle either (sid or handle secret are each 22+ base64url characters).
    for (const secret of real) for (const part of secret.split('.')) if (part.length >= 16) assert.ok(!line.includes(part), `part of a secret in: ${line.slice(0, 200)}`)
  }
})
