/** `tessera factors list|reset`: what an admin sees of a user's factors, and a reset that also ends the user's sessions. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TestRedis } from './helpers/redis-server.js'
import { emptyDir, runCli } from './helpers/cli.js'
import { newKey, useStack, type Stack } from './helpers/stack.js'
import { enrolOnSecurityPage, passwordOnly, postPassword, writeFactorUsers } from './helpers/factors.js'
import { Browser } from './helpers/browser.js'
import { keys } from '../src/shared/keys.js'

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers({ olga: [] }) } })
const cwd = emptyDir()

test('factors list shows what a user has; reset removes every factor and ends every session', async () => {
  const env = { REDIS_URL: redis.url }
  const none = await runCli(['factors', 'list', 'olga'], { cwd, env })
  assert.equal(none.status, 1)
  assert.match(none.stdout, /no second factor enrolled for olga/)

  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'olga')
  const { secret, codes } = await enrolOnSecurityPage(b, stack.idpUrl)
  // A passkey as the IdP registers one: its fields, and its owner key (no TTL).
  await redis.client().hset(keys.factors('olga'), 'pk:cred', JSON.stringify({ publicKey: 'AA', transports: [], createdAt: 1 }), 'pkm:cred', 'Laptop', 'pkn:cred', '0')
  await redis.client().set(keys.passkeyOwner('cred'), 'olga')
  await redis.client().set(keys.passkeyOwner('someone-elses'), 'mallory')
  const list = await runCli(['factors', 'list', 'olga'], { cwd, env })
  assert.equal(list.status, 0, list.stderr)
  assert.match(list.stdout, /authenticator app\s+on since \d{4}-/)
  assert.match(list.stdout, /passkeys\s+1/)
  assert.match(list.stdout, /recovery codes\s+10 unused/)
  for (const s of [secret, ...codes]) assert.ok(!list.stdout.includes(s), 'nothing secret is printed')

  const reset = await runCli(['factors', 'reset', 'olga'], { cwd, env })
  assert.equal(reset.status, 0, reset.stderr)
  assert.match(reset.stdout, /removed every second factor of olga; ended 1 session/)
  assert.equal(await redis.client().exists(keys.factors('olga')), 0)
  assert.equal(await redis.client().exists(keys.passkeyOwner('cred')), 0, 'the passkey\'s owner key goes with it')
  assert.equal(await redis.client().get(keys.passkeyOwner('someone-elses')), 'mallory', 'no one else\'s')
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401, 'the session ended at the app')
  const again = await postPassword(new Browser(), stack.idpUrl, stack.appAUrl, 'olga')
  assert.equal(new URL(again.location() as string).origin, stack.appAUrl, 'with no factor left, the password alone signs in (policy optional)')

  assert.equal((await runCli(['factors', 'wipe', 'olga'], { cwd, env })).status, 2)
  assert.equal((await runCli(['factors', 'list'], { cwd, env })).status, 2)
  const down = await runCli(['factors', 'list', 'olga'], { cwd, env: { REDIS_URL: 'redis://127.0.0.1:1' } })
  assert.equal(down.status, 3)
})
