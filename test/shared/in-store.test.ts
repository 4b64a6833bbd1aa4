/**
 * `inStore`, the one way Tessera runs a Redis operation: a failure or no answer is Redis being
 * unavailable (StoreUnavailableError, a 503), on a real Redis that is frozen (SIGSTOP: connected,
 * answering nothing, as a hung or partitioned server).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis } from '../helpers/redis-server.js'
import { createRedis, inStore, waitForRedis } from '../../src/shared/redis.js'
import { StoreUnavailableError } from '../../src/shared/errors.js'

test('a Redis that stops answering: each operation in flight fails as unavailable, later ones too, and all goes on once it answers', { timeout: 30_000 }, async () => {
  const redis = await startRedis()
  const client = createRedis(redis.url)
  client.on('error', () => {})
  try {
    assert.ok(await waitForRedis(client))
    assert.equal(await inStore(() => client.set('k', 'v')), 'OK')
    redis.freeze()
    const first = inStore(() => client.get('k'))
    const second = inStore(() => client.get('k'))
    for (const pending of [first, second]) {
      await assert.rejects(pending, (err: unknown) => err instanceof StoreUnavailableError && /did not answer/.test(String((err as Error).cause)))
    }
    await assert.rejects(inStore(() => client.get('k')), StoreUnavailableError)
    redis.thaw()
    assert.equal(await inStore(() => client.get('k')), 'v')
    // A failure Redis reports is unavailable too, at once, with Redis's words kept as the cause.
    await assert.rejects(inStore(() => client.call('NO-SUCH-COMMAND')), (err: unknown) => err instanceof StoreUnavailableError && /unknown command/i.test(String((err as Error).cause)))
    // An operation that throws before it reaches Redis, likewise.
    await assert.rejects(inStore(() => { throw new Error('bad argument') }), StoreUnavailableError)
  } finally {
    redis.thaw()
    client.disconnect()
    await redis.stop()
  }
})
