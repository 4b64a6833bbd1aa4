import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { Browser, type Page } from '../helpers/browser.js'
import { loadConfig } from '../../src/idp/config.js'
import { buildIdp } from '../../src/idp/app.js'
import { loggerOptions } from '../../src/shared/logger.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { formFields, newKey, PASSWORD, useStack, type Stack } from '../helpers/stack.js'
import { writeProductionUsersFile } from '../helpers/users.js'

// Behind one proxy on this host (TRUST_PROXY=127.0.0.1, its address), as deploy.md recommends. The proxy appends the address it saw,
// so whatever a client forges stands to the left of its real address.
let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, {
  env: { TRUST_PROXY: '127.0.0.1', LOGIN_IP_MAX_RETRIES: '3', LOGIN_IP_FIND_TIME_SECONDS: '120', LOGIN_IP_BAN_TIME_SECONDS: '60' },
})

async function attempt(username: string, password: string, forwardedFor: string): Promise<Page> {
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login`)
  return b.request(`${stack.idpUrl}/login`, {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor },
    body: new URLSearchParams({ ...formFields(form.body), username, password }).toString(),
  })
}

test("with the proxy's address, a forged X-Forwarded-For neither bans the victim nor frees the sender", async () => {
  await redis.client().flushall()
  const victim = '198.51.100.7'
  const attacker = '203.0.113.9'
  // The attacker's failures, each claiming the victim's address (the proxy appends the real one).
  for (const name of ['user-a', 'user-b', 'user-c']) assert.equal((await attempt(name, 'guess', `${victim}, ${attacker}`)).status, 401)
  // The victim, through the same proxy, still gets in.
  assert.equal((await attempt('alice', PASSWORD, victim)).status, 303)
  // The attacker's real address is banned, whatever it forges next.
  assert.equal((await attempt('alice', PASSWORD, `192.0.2.55, ${attacker}`)).status, 401)
})

const production = (trustProxy: string): Record<string, string> => ({
  NODE_ENV: 'production',
  SYNC_KEYS: newKey('k1'),
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  USERS_FILE: writeProductionUsersFile(),
  PUBLIC_URL: 'https://sso.example.com',
  KNOWN_REMOTE_HOSTS: 'https://app.example.com',
  TRUST_PROXY: trustProxy,
})

test('TRUST_PROXY=true in production starts with a warning naming the variable; proxy addresses do not', async () => {
  assert.deepEqual(loadConfig(production('10.0.0.0/8')).warnings, [])
  assert.deepEqual(loadConfig({ ...production('true'), NODE_ENV: 'development' }).warnings, [])
  const config = loadConfig(production('true'))
  assert.equal(config.warnings.length, 1)
  assert.match(config.warnings[0] as string, /^TRUST_PROXY: /)
  const lines: string[] = []
  const idp = buildIdp(config, {
    logger: { ...loggerOptions('info'), stream: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } }) },
    redis: redis.client(),
  })
  await idp.ready()
  await idp.close()
  const warning = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.includes('TRUST_PROXY'))
  assert.equal(warning?.level, 40)
})
