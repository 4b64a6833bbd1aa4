/**
 * Forward-auth in a real Chromium: sign in once at a Fastify app, then an nginx-protected and a
 * Caddy-protected app (docs/forward-auth.md's snippets, a plain echo behind each) open with no form,
 * with each host's own cookie as the browser keeps it; a logout form on one ends the session at all.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { buildGate } from '../../src/remote/gate.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { appCookies } from '../helpers/app-cookies.js'
import { at, launchChromium, newContext, responsesDuring } from '../helpers/chromium.js'
import { freePort } from '../helpers/net.js'
import { startCaddy, startEcho, startNginx, type Echo, type RunningProxy } from '../helpers/proxies.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { PASSWORD, startStack, type Stack } from '../helpers/stack.js'

let redis: TestRedis
let stack: Stack
let gate: FastifyInstance
let echo: Echo
let nginx: RunningProxy
let caddy: RunningProxy
let browser: Browser
let context: BrowserContext
let page: Page

before(async () => {
  redis = await startRedis()
  const [nginxPort, caddyPort, gatePort] = await Promise.all([freePort('127.0.0.4'), freePort('127.0.0.5'), freePort('127.0.0.1')])
  const origins = [`http://127.0.0.4:${nginxPort}`, `http://127.0.0.5:${caddyPort}`]
  stack = await startStack(redis, { extraRemoteHosts: origins })
  gate = buildGate({
    idpUrl: stack.idpUrl, redis: redis.url, sessionSecret: 'an e2e gate secret of at least 32 characters', proxies: '127.0.0.1',
    hosts: origins.map((origin) => ({ origin, appKeys: formatAppKeys(stack.config.keyring, origin) })),
  })
  await gate.listen({ host: '127.0.0.1', port: gatePort })
  echo = await startEcho()
  nginx = await startNginx('127.0.0.4', `127.0.0.1:${gatePort}`, echo.address, nginxPort)
  caddy = await startCaddy('127.0.0.5', `127.0.0.1:${gatePort}`, echo.address, caddyPort)
  browser = await launchChromium()
  context = await newContext(browser)
  page = await context.newPage()
})

after(async () => {
  await browser?.close()
  await Promise.all([nginx?.stop(), caddy?.stop()])
  await gate?.close()
  await echo?.close()
  await stack?.close()
  await redis?.stop()
})

/** What the plain app behind the proxy printed: the user in the Remote-* headers that reached it. */
async function echoed(): Promise<{ path: string; remote: Record<string, string> }> {
  return JSON.parse(await page.locator('body').innerText()) as { path: string; remote: Record<string, string> }
}

test('signed in once at a Fastify app, the nginx- and Caddy-protected apps open with no form', async () => {
  await page.goto(`${stack.appAUrl}/private`)
  assert.equal(at(page.url()), `${stack.idpUrl}/login`)
  await page.getByLabel('Username').fill('alice')
  await page.getByLabel('Password').fill(PASSWORD)
  await Promise.all([page.waitForURL(`${stack.appAUrl}/private`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])

  for (const [name, proxy] of [['nginx', nginx], ['Caddy', caddy]] as const) {
    const responses = await responsesDuring(page, () => page.goto(`${proxy.url}/dashboard?x=1`))
    const hops = responses.map((r) => `${r.status()} ${at(r.url())}`)
    assert.equal(page.url(), `${proxy.url}/dashboard?x=1`, `${name}: back on the clean URL (${hops.join(', ')})`)
    assert.ok(hops.includes(`302 ${stack.idpUrl}/login`) && !hops.includes(`200 ${stack.idpUrl}/login`), `${name}: through the IdP, no form: ${hops.join(', ')}`)
    const seen = await echoed()
    assert.equal(seen.path, '/dashboard?x=1')
    assert.equal(seen.remote['remote-user'], 'alice', `${name}: the app got the user`)
    assert.equal(seen.remote['remote-name'], 'Alice Example')
    const cookies = await context.cookies(proxy.url)
    const handle = cookies.find((c) => c.name === appCookies(proxy.url).session)
    assert.ok(handle, `${name}: the host's own handle cookie is kept by Chromium`)
    assert.equal(handle.httpOnly, true)
    assert.equal(handle.sameSite, 'Lax')
    assert.ok(!cookies.some((c) => c.name === appCookies(proxy.url).state), `${name}: the state cookie was cleared`)
  }
})

test('a logout form on the nginx-protected app signs the browser out of every app', async () => {
  await page.goto(`${nginx.url}/anything`)
  // The plain app's own page would carry this form; here the test puts it on that page. After the
  // logout, rd=/ is nginx's `/`, which now has no session: the browser ends at the IdP's form.
  const responses = await responsesDuring(page, () => Promise.all([
    page.waitForURL((u) => at(u.href) === `${stack.idpUrl}/login`),
    page.evaluate(`(() => {
      const form = document.createElement('form')
      form.method = 'post'
      form.action = '/tessera/logout?rd=/'
      document.body.append(form)
      form.submit()
    })()`),
  ]))
  const hops = responses.map((r) => `${r.status()} ${at(r.url())}`)
  assert.ok(hops.includes(`303 ${nginx.url}/tessera/logout`), `the gate answered the logout: ${hops.join(', ')}`)
  // Each protected host and the Fastify app now send the browser to the IdP's login form.
  for (const url of [`${caddy.url}/again`, `${nginx.url}/again`, `${stack.appAUrl}/private`]) {
    await page.goto(url)
    assert.equal(at(page.url()), `${stack.idpUrl}/login`, `${url}: signed out`)
    await page.getByLabel('Username').waitFor()
  }
})
