/**
 * An Express 5 app (tessera/express) and a Fastify app (tessera/remote) share one session: signed in
 * once, data written in one is read in the other, and a logout in either (or at the IdP) ends both.
 * Run both ways round: Fastify as app A and Express as app B, then the reverse.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { startStack, type Adapter, type Stack } from '../helpers/stack.js'
import { assertFullFlow, assertLogoutEverywhere, assertSignedOutEverywhere, me } from '../helpers/sso-scenarios.js'

let redis: TestRedis
const stacks = new Map<string, Stack>()
const PAIRS: readonly (readonly [Adapter, Adapter])[] = [['fastify', 'express'], ['express', 'fastify']]
before(async () => {
  redis = await startRedis()
  for (const [a, b] of PAIRS) stacks.set(`${a}+${b}`, await startStack(redis, { adapter: a, adapterB: b }))
})
after(async () => {
  for (const s of stacks.values()) await s.close()
  await redis.stop()
})

for (const [a, b] of PAIRS) {
  const stack = (): Stack => stacks.get(`${a}+${b}`) as Stack

  test(`${a} app A and ${b} app B: one sign-in, one user, data written in each read in the other`, async () => {
    const s = stack()
    // Signs in at A, reaches B with no form; a note written at A is read at B; one visit counter.
    const browser = await assertFullFlow(s)
    const written = await browser.post(`${s.appBUrl}/api/note`, { note: `written at B (${b})` }, 'application/json')
    assert.equal(written.status, 200)
    const seenInA = (await me(browser, s.appAUrl)).json<{ data: { note: string; visits: number } }>().data
    assert.equal(seenInA.note, `written at B (${b})`, 'data written at B is read at A')
    assert.equal(seenInA.visits, 2)
    // Both apps' private pages count on the same shared counter.
    await browser.get(`${s.appBUrl}/private`)
    assert.equal((await me(browser, s.appAUrl)).json<{ data: { visits: number } }>().data.visits, 3)
  })

  test(`${a} app A and ${b} app B: logout at B or at the IdP ends the session in both`, async () => {
    await assertLogoutEverywhere(stack())
  })

  test(`${a} app A and ${b} app B: logout at A ends the session at B and at the IdP`, async () => {
    const s = stack()
    const browser = await assertFullFlow(s)
    const out = await browser.post(`${s.appAUrl}/logout`, {})
    assert.equal(out.status, 303)
    assert.equal(out.headers.get('location'), `${s.appAUrl}/`)
    await assertSignedOutEverywhere(browser, s, `logout at ${a} app A`)
  })
}
