/**
 * Forward-auth in a real Chromium: sign in once at a Fastify app, then an nginx-protected and a
 * Caddy-protected app (docs/forward-auth.md's snippets, a plain echo behind each) open with no form,
 * with each host's own cookie as the browser keeps it; a logout form on one ends the session at all.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { appCookies } from '../helpers/app-cookies.js'
import { at, launchChromium, newContext, responsesDuring } from '../helpers/chromium.js'
import { startForwardAuthStand, type ForwardAuthStand } from '../helpers/forward-auth.js'
import type { RunningProxy } from '../helpers/proxies.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { PASSWORD, type Stack } from '../helpers/stack.js'

let redis: TestRedis
let stand: ForwardAuthStand
let stack: Stack
let nginx: RunningProxy
let caddy: RunningProxy
let browser: Browser
let context: BrowserContext
let page: Page

before(async () => {
  redis = await startRedis()
  stand = await startForwardAuthStand(redis)
  ;({ stack, nginx, caddy } = stand)
  browser = await launchChromium()
  context = await newContext(browser)
  page = await context.newPage()
})

after(async () => {
  await browser?.close()
  await stand?.close()
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
