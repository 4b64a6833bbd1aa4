/** Tessera's pino options: what a written line may and may not hold. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { loggerOptions } from '../../src/shared/logger.js'

function capture(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = []
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk.toString()); done() } })
  const log = pino(loggerOptions('trace'), stream)
  return { log, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

test('secret fields are censored at the top level and one level down, and the logged objects are left as they were', () => {
  const { log, lines } = capture()
  const user = { name: 'alice', password: 'pw-one-level-down' }
  const form = { csrf: 'csrf-one-level-down', state: 'state-one-level-down', keep: 'visible' }
  log.info({ token: 'token-top-level', user, form }, 'signed in')
  const [line] = lines()
  assert.equal(line?.token, '[redacted]')
  assert.deepEqual(line?.user, { name: 'alice', password: '[redacted]' })
  assert.deepEqual(line?.form, { csrf: '[redacted]', state: '[redacted]', keep: 'visible' })
  assert.equal(user.password, 'pw-one-level-down', "the caller's object is not changed")
  assert.equal(form.csrf, 'csrf-one-level-down')
})

test("a child logger's bindings are censored the same way", () => {
  const { log, lines } = capture()
  log.child({ ctx: { sessionId: 'sid-in-bindings', app: 'shop' } }).warn('x')
  const [line] = lines()
  assert.deepEqual(line?.ctx, { sessionId: '[redacted]', app: 'shop' })
})

test('an error with a secret property stays an error in the log: message and stack kept, the secret censored', () => {
  const { log, lines } = capture()
  const err = Object.assign(new Error('login failed'), { password: 'pw-on-an-error' })
  log.error({ err }, 'failed')
  const [line] = lines()
  const logged = line?.err as Record<string, unknown>
  assert.equal(logged.message, 'login failed')
  assert.match(String(logged.stack), /login failed/)
  assert.equal(logged.password, '[redacted]')
  assert.equal(err.password, 'pw-on-an-error')
})

test("a client's error (4xx) is logged without its stack; any other error keeps it", () => {
  const { log, lines } = capture()
  const client = Object.assign(new Error('Body is not valid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' })
  log.info({ err: client }, 'client error')
  log.error({ err: Object.assign(new Error('a bug'), { statusCode: 500 }) }, 'bug')
  const [clientLine, bugLine] = lines()
  const logged = clientLine?.err as Record<string, unknown>
  assert.equal(logged.message, 'Body is not valid JSON')
  assert.equal(logged.code, 'FST_ERR_CTP_INVALID_JSON_BODY')
  assert.equal(logged.stack, undefined)
  assert.match(String((bugLine?.err as Record<string, unknown>).stack), /a bug/)
})

test('a request is logged by its path, never its query; a reply by its status only', () => {
  const { log, lines } = capture()
  log.info({ req: { method: 'GET', url: '/private?token=v1.k.a.b.c', ip: '127.0.0.1', headers: { cookie: 'tessera=s.e.m' } }, res: { statusCode: 302, headers: { 'set-cookie': 'x' } } }, 'done')
  const text = JSON.stringify(lines())
  assert.doesNotMatch(text, /v1\.k\.a\.b\.c|tessera=s\.e\.m|set-cookie/)
  assert.match(text, /"path":"\/private"/)
})
