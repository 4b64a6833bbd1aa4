/** The plugin's keys: its own app keys, or (the old way, warned) the IdP's SYNC_KEYS. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { before, after, test } from 'node:test'
import Fastify from 'fastify'
import tesseraRemote, { tesseraLoggerOptions } from '../../src/remote/index.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { newKey } from '../helpers/stack.js'

const ORIGIN = 'https://shop.example.com'
const SYNC_KEYS = `${newKey('new')},${newKey('old')}`
const keyring = parseSyncKeys(SYNC_KEYS, 'SYNC_KEYS', []) as Keyring
let redis: TestRedis
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

/** Registers the plugin with `keys` and resolves to what it logged at start-up, or to the error. */
async function start(keys: Record<string, unknown>): Promise<{ lines: string[]; error?: Error & { code?: string } }> {
  const lines: string[] = []
  const app = Fastify({ logger: { ...tesseraLoggerOptions('info'), stream: new Writable({ write(c: Buffer, _e, done) { lines.push(c.toString()); done() } }) } })
  void app.register(tesseraRemote, {
    idpUrl: 'https://sso.example.com', origin: ORIGIN, redis: redis.url, sessionSecret: randomBytes(32).toString('base64url'), ...keys,
  })
  try {
    await app.ready()
    return { lines }
  } catch (error) {
    return { lines, error: error as Error }
  } finally {
    await app.close().catch(() => {})
  }
}

test('an app with its own app keys starts without a warning', async () => {
  const { lines, error } = await start({ appKeys: formatAppKeys(keyring, ORIGIN) })
  assert.equal(error, undefined)
  assert.ok(!lines.some((l) => l.includes('SYNC_KEYS')))
})

test("an app still given the IdP's SYNC_KEYS works, and says at start-up that it should not hold them", async () => {
  const { lines, error } = await start({ syncKeys: SYNC_KEYS })
  assert.equal(error, undefined)
  const warning = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.includes("holds the IdP's SYNC_KEYS"))
  assert.equal(warning?.level, 40)
  assert.ok(!lines.join('').includes(SYNC_KEYS.split(':')[1] as string), 'no key material in the log')
})

test('bad or missing keys stop ready() with TESSERA_ERR_OPTIONS naming the option, never the key', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /appKeys: required/],
    [{ appKeys: 'nope' }, /appKeys\[0\]: must be <id>\.<token key>\.<public key>/],
    [{ appKeys: formatAppKeys(keyring, ORIGIN), syncKeys: SYNC_KEYS }, /appKeys and syncKeys: give appKeys only/],
    [{ appKeys: `${formatAppKeys(keyring, ORIGIN)},${formatAppKeys(keyring, ORIGIN)}` }, /key id new appears twice/],
  ]
  for (const [keys, expected] of cases) {
    const { error } = await start(keys)
    assert.equal(error?.code, 'TESSERA_ERR_OPTIONS', JSON.stringify(Object.keys(keys)))
    assert.match(error?.message ?? '', expected)
    assert.ok(!(error?.message ?? '').includes(formatAppKeys(keyring, ORIGIN).split('.')[1] as string))
  }
})
