/**
 * Redis CPU per step of a hand-over, each step alone on the bench's own `redis-server`: Tessera's
 * three (the IdP's read that records the token id, the app's redemption, the page's read) beside
 * the bare floor's (a GET + SET pipeline, a GETDEL, a GET), with `INFO commandstats` per step. Where
 * a step needs a token id recorded first (a redemption, a GETDEL), that SET is measured on its own
 * too, to be taken off. Not part of `npm test`; build first.
 *
 *   node dist/bench/redis-steps.js            # 20,000 of each, 10 in flight, two passes
 */
import { Redis } from 'ioredis'
import { startBenchRedis } from './lib/redis.js'
import { signedInSession } from './lib/signed-in.js'
import { storesFor } from '../test/helpers/stores.js'
import { randomId } from '../src/shared/crypto.js'
import { DISPLAY_NAME, USERNAME } from '../test/helpers/users.js'

const N = Number(process.env.STEPS_COUNT ?? 20_000)
const IN_FLIGHT = 10
const IDP = 'http://127.0.0.1:1'
const APP = 'http://127.0.0.2:2'

async function main(): Promise<void> {
  const server = await startBenchRedis()
  const redis = new Redis(server.url)
  try {
    const stores = storesFor(redis)
    const user = { username: USERNAME, displayName: DISPLAY_NAME, email: '', groups: [] }
    const { idp } = await signedInSession(stores, user, { idleMs: 3_600_000, absoluteMs: 28_800_000 }, IDP, [APP], 'tessera-bench')
    await redis.set('bare:s:x', JSON.stringify({ user: { username: USERNAME } }))
    const cpuS = async (): Promise<number> => {
      const info = await redis.info('cpu')
      return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
    }
    const measure = async (name: string, op: () => Promise<unknown>): Promise<void> => {
      await redis.config('RESETSTAT')
      const before = await cpuS()
      let started = 0
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (started < N) { started++; await op() } }))
      const us = ((await cpuS()) - before) * 1e6 / N
      const stats = (await redis.info('commandstats')).split('\n').flatMap((line) => {
        const m = /^cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/.exec(line)
        return m === null || m[1] === 'info' || m[1] === 'config|resetstat' ? [] : [`${m[1]} ×${(Number(m[2]) / N).toFixed(0)} ${(Number(m[3]) / N).toFixed(2)} µs`]
      })
      process.stdout.write(`${name.padEnd(36)} ${us.toFixed(1).padStart(5)} µs of Redis CPU per step   (${stats.join(', ')})\n`)
    }
    for (let pass = 1; pass <= 2; pass++) {
      process.stdout.write(`pass ${pass}\n`)
      await measure('Tessera IdP: read + record token id', () => stores.sessions.resolve(idp, IDP, { id: randomId(16), ttlMs: 60_000 }))
      await measure('Tessera app: record, then redeem', async () => {
        const jti = randomId(16)
        await stores.tokens.record(idp.sid, jti, 60_000)
        await stores.tokens.redeem(idp.sid, jti, APP)
      })
      await measure('  (the record alone)', () => stores.tokens.record(idp.sid, randomId(16), 60_000))
      await measure('Tessera page: plain read', () => stores.sessions.resolve(idp, IDP))
      await measure('bare IdP: GET + SET pipeline', () => redis.pipeline().get('bare:s:x').set(`bare:t:${randomId(16)}`, '1', 'PX', 60_000).exec())
      await measure('bare app: SET, then GETDEL', async () => {
        const key = `bare:t:${randomId(16)}`
        await redis.set(key, '1', 'PX', 60_000)
        await redis.getdel(key)
      })
      await measure('  (the SET alone)', () => redis.set(`bare:t:${randomId(16)}`, '1', 'PX', 60_000))
      await measure('bare page: GET', () => redis.get('bare:s:x'))
    }
  } finally {
    redis.disconnect()
    await server.stop()
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`)
  process.exit(1)
})
