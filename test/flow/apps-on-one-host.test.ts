/** Two apps on one host name, different ports, one browser: cookies ignore ports, so their names must differ. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildExampleApp } from '../../examples/remote-app.js'
import { resolveOptions } from '../../src/remote/options.js'
import { freePort } from '../helpers/net.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { newKey, useStack, type Stack } from '../helpers/stack.js'
import { me, signInThroughA } from '../helpers/sso-scenarios.js'

const HOST = '127.0.0.1'
const ports = [await freePort(HOST)]
while (ports.length < 2) { const p = await freePort(HOST); if (!ports.includes(p)) ports.push(p) }
const urls = ports.map((p) => `http://${HOST}:${p}`)

let redis: TestRedis
let stack: Stack
const apps: FastifyInstance[] = []
useStack((r, s) => { redis = r; stack = s }, { extraRemoteHosts: urls })
after(async () => { await Promise.all(apps.map((a) => a.close())) })

async function startApps(): Promise<void> {
  if (apps.length > 0) return
  for (const [i, url] of urls.entries()) {
    const app = buildExampleApp({
      name: `App ${i}`, origin: url, idpUrl: stack.idpUrl, syncKeys: stack.syncKeys, redis: redis.url,
      sessionSecret: randomBytes(32).toString('base64url'),
    })
    apps.push(app)
    await app.listen({ host: HOST, port: ports[i] as number })
  }
}

test('two apps on one host name and different ports keep their own sessions in one browser', async () => {
  await startApps()
  const b = await signInThroughA(stack)
  for (const url of urls) {
    const hops = await b.navigate(`${url}/private`)
    assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200], `${url}: one hand-over`)
  }
  // Each app still has its session: no hand-over, no 401, however often the user switches.
  for (let round = 0; round < 3; round++) {
    for (const url of urls) {
      const page = await b.get(`${url}/private`)
      assert.equal(page.status, 200, `round ${round}, ${url}: ${page.status} ${page.location() ?? ''}`)
      assert.equal((await me(b, url)).status, 200)
    }
  }
  const names = [...b.cookies(HOST).keys()].sort()
  for (const port of ports) assert.ok(names.includes(`tessera_${port}`), `tessera_${port} in ${names.join(', ')}`)
})

test('the default cookie names carry a non-default port; default ports, and names the app chose, stay as documented', () => {
  const base = { idpUrl: 'https://sso.example', syncKeys: newKey('k1'), redis: 'redis://127.0.0.1:6379', sessionSecret: 'x'.repeat(32) }
  const names = (origin: string, cookie?: { name?: string; path?: string }): [string, string] => {
    const o = resolveOptions({ ...base, origin, ...(cookie === undefined ? {} : { cookie }) })
    return [o.cookieName, o.stateCookieName]
  }
  assert.deepEqual(names('https://shop.example'), ['__Host-tessera', '__Host-tessera_state'])
  assert.deepEqual(names('https://shop.example:443'), ['__Host-tessera', '__Host-tessera_state'])
  assert.deepEqual(names('http://shop.example'), ['tessera', 'tessera_state'])
  assert.deepEqual(names('https://shop.example:8443'), ['__Host-tessera_8443', '__Host-tessera_8443_state'])
  assert.deepEqual(names('http://127.0.0.1:3001'), ['tessera_3001', 'tessera_3001_state'])
  assert.deepEqual(names('https://shop.example:8443', { path: '/shop' }), ['tessera_8443', 'tessera_8443_state'])
  assert.deepEqual(names('http://127.0.0.1:3001', { name: 'mine' }), ['mine', 'mine_state'])
})
