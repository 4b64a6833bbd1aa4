import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { logRedisErrors } from '../../src/shared/redis-errors.js'

test('an outage is logged at once, then at most once per interval with what was left out; a reconnection starts over', () => {
  const redis = new Redis({ lazyConnect: true }) // never connects: the events are ioredis's own, emitted here
  const lines: { obj: Record<string, unknown>; msg: string }[] = []
  logRedisErrors(redis, (obj, msg) => { lines.push({ obj: obj as Record<string, unknown>, msg }) }, 'redis connection error', 60_000)
  for (let i = 0; i < 50; i++) redis.emit('error', new Error('connect ECONNREFUSED'))
  assert.deepEqual(lines, [{ obj: { err: { message: 'connect ECONNREFUSED' } }, msg: 'redis connection error' }], 'one line for 50 retries')
  redis.emit('ready')
  redis.emit('error', new Error('read ECONNRESET'))
  assert.equal(lines.length, 2, 'the next outage is logged at once')
  assert.deepEqual(lines[1]?.obj, { err: { message: 'read ECONNRESET' } })
  redis.disconnect()
})

test('once the interval has passed, the next line counts the errors left out', () => {
  const redis = new Redis({ lazyConnect: true })
  const lines: Record<string, unknown>[] = []
  let now = 0
  logRedisErrors(redis, (obj) => { lines.push(obj as Record<string, unknown>) }, 'x', 30_000, () => now)
  for (let i = 0; i < 3; i++) redis.emit('error', new Error('refused'))
  now = 29_999
  redis.emit('error', new Error('refused'))
  now = 30_000
  redis.emit('error', new Error('refused'))
  assert.deepEqual(lines.map((l) => l.errorsNotLogged), [undefined, 3])
  redis.disconnect()
})
