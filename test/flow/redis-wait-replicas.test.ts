/**
 * `waitReplicas` / REDIS_WAIT_REPLICAS on a real primary with one real replica: a logout and a
 * redemption are confirmed by the replica (Redis WAIT) before the browser is told they happened.
 * With the replica frozen (SIGSTOP: connected, acknowledging nothing), they answer 503 instead of
 * a success that a failover could undo; thawed, the same steps succeed.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { test, before, after } from 'node:test'
import { Redis } from 'ioredis'
import { StoreUnavailableError } from '../../src/shared/errors.js'
import { PWD, storesFor } from '../helpers/stores.js'
import { waitForRedis } from '../../src/shared/redis.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { waitFor } from '../helpers/redis-topologies.js'
import { me, signInThroughA } from '../helpers/sso-scenarios.js'
import { startStack, type Stack } from '../helpers/stack.js'

let primary: TestRedis
let replica: ChildProcess
let stack: Stack

before(async () => {
  primary = await startRedis()
  const port = await freePort('127.0.0.1')
  replica = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--replicaof', '127.0.0.1', String(primary.port), '--repl-diskless-sync-delay', '0'], { stdio: 'ignore' })
  const probe = primary.client()
  await waitFor('the replica online', async () => /slave0:.*state=online/.test(await probe.info('replication')))
  // The IdP does not wait, the apps do: a failed WAIT at an app is then the app's, not the IdP's.
  stack = await startStack(primary, { appWaitReplicas: 1 })
})
after(async () => {
  replica?.kill('SIGCONT')
  await stack?.close()
  replica?.kill('SIGKILL')
  await primary?.stop()
})

const frozen = async (during: () => Promise<void>): Promise<void> => {
  replica.kill('SIGSTOP')
  try {
    await during()
  } finally {
    replica.kill('SIGCONT')
  }
}

test('session store: a logout is confirmed by a replica, or fails with StoreUnavailableError', async () => {
  const client = new Redis(primary.url)
  try {
    // Connected first: WAIT vouches only for writes made on the connection it is asked on.
    assert.ok(await waitForRedis(client))
    const { sessions: store, signer } = storesFor(client, { waitReplicas: 1 })
    const user = { username: 'bob', displayName: 'Bob', email: 'bob@example.com', groups: [] }
    const limits = { idleMs: 60_000, absoluteMs: 600_000 }
    const a = await store.create(user, PWD, limits, 'http://127.0.0.2', signer)
    const b = await store.create(user, PWD, limits, 'http://127.0.0.2', signer)
    await store.destroy(a.sid)
    assert.equal(await store.resolve(a, 'http://127.0.0.2'), undefined)
    await frozen(async () => {
      await assert.rejects(store.destroy(b.sid), StoreUnavailableError)
    })
    await store.destroy(b.sid)
    assert.equal(await store.resolve(b, 'http://127.0.0.2'), undefined)
  } finally {
    client.disconnect()
  }
})

test('plugin with waitReplicas: redemption and logout answer 503 while no replica acknowledges, and succeed once one does', async () => {
  const b: Browser = await signInThroughA(stack)
  await frozen(async () => {
    // Hand-over to app B: the IdP mints (it does not wait), app B cannot confirm the new handle.
    const hops = await b.navigate(`${stack.appBUrl}/private`)
    assert.deepEqual(hops.map((h) => h.status), [302, 302, 503])
  })
  const hops = await b.navigate(`${stack.appBUrl}/private`)
  assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200], 'app B hands over once the replica acknowledges')
  assert.equal((await me(b, stack.appBUrl)).status, 200)

  await frozen(async () => {
    // Logout at app A: done on the primary, but not confirmed by a replica, so not reported as done.
    const out = await b.post(`${stack.appAUrl}/logout`, {})
    assert.equal(out.status, 503)
  })
  // Once the replica has it, the session is gone everywhere (the logout failed closed, not open).
  for (const base of [stack.appAUrl, stack.appBUrl]) assert.equal((await me(b, base)).status, 401, `signed out at ${base}`)
  assert.match((await b.get(`${stack.idpUrl}/`)).body, /You are not signed in/)
})
