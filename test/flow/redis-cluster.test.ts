/**
 * Tessera on a real 3-master Redis Cluster, configured only through the environment (the IdP's
 * REDIS_CLUSTER_NODES) and the plugin's `redis: { clusterNodes }` option: the full SSO flow, logout
 * everywhere and token replay, with sessions spread over every master.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Browser } from '../helpers/browser.js'
import { startCluster, type TestCluster } from '../helpers/redis-topologies.js'
import { useStackOn, type Stack } from '../helpers/stack.js'
import { assertSignedOutEverywhere, me, signInThroughA, topologyScenarioTests } from '../helpers/sso-scenarios.js'
import { UserIndex } from '../../src/shared/user-index.js'
import { waitForRedis } from '../../src/shared/redis.js'

let cluster: TestCluster
let stack: Stack
useStackOn(startCluster, (c) => ({
  ownRedis: true,
  env: { REDIS_CLUSTER_NODES: c.nodesEnv },
  appRedis: { clusterNodes: c.nodes },
}), (c, s) => { cluster = c; stack = s })

test('cluster: the IdP and the apps connect from configuration alone', async () => {
  assert.deepEqual(stack.config.redis.clusterNodes, cluster.nodes)
  const ready = await fetch(`${stack.idpUrl}/readyz`)
  assert.equal(ready.status, 200)
})

topologyScenarioTests('cluster', () => stack)

test('cluster: sessions live on every master, each session in one slot; revoking a user ends them all', async () => {
  const browsers: Browser[] = []
  for (let i = 0; i < 9; i++) browsers.push(await signInThroughA(stack))
  const redis = cluster.client()
  assert.ok(await waitForRedis(redis, 10_000), 'the assertion client is ready')
  assert.equal(redis.nodes('master').length, 3)
  const slotsOf = new Map<string, Set<number>>() // sid -> slots of its keys
  const mastersWithSessions = new Set<string>()
  for (const node of redis.nodes('master')) {
    const keys = await node.keys('tessera:*')
    for (const key of keys) {
      const sid = /^tessera:\{([A-Za-z0-9_-]{22})\}:/.exec(key)?.[1]
      if (sid === undefined) continue
      mastersWithSessions.add(`${node.options.host}:${node.options.port}`)
      const slot = Number(await node.call('CLUSTER', 'KEYSLOT', key))
      slotsOf.set(sid, (slotsOf.get(sid) ?? new Set()).add(slot))
    }
  }
  assert.ok(mastersWithSessions.size >= 2, `sessions spread over the masters (${[...mastersWithSessions].join(', ')})`)
  for (const [sid, slots] of slotsOf) assert.equal(slots.size, 1, `every key of session ${sid.slice(0, 4)}… is in one slot`)

  // The user index is in its own slot; revoking walks it and deletes sessions on every master.
  const store = new UserIndex(redis)
  assert.ok((await store.list('alice')).length >= browsers.length)
  assert.ok(await store.revokeAll('alice') >= browsers.length)
  for (const b of browsers) assert.equal((await me(b, stack.appAUrl)).status, 401)
  await assertSignedOutEverywhere(browsers[0] as Browser, stack, 'revoked')
})
