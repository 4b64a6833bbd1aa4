/**
 * `npm run test:e2e`: the demo (examples/demo.ts) driven by a real Chromium, Debian's /usr/bin/chromium
 * through playwright-core (no browser download). Free ports, a fresh redis-server, a fresh profile.
 * Takes screenshots of the login form and the signed-in page; only `npm run screenshots`
 * (TESSERA_SCREENSHOTS=1) writes them to docs/img/ for README, so a test run leaves the tree clean.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { DEMO_USER, startDemo, type Demo } from '../../examples/demo.js'
import { parseSyncKeys } from '../../src/shared/keyring.js'
import { mintToken } from '../../src/shared/token.js'
import { appCookies } from '../helpers/app-cookies.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { mintingKeyFor } from '../../src/shared/app-keys.js'
import { at, launchChromium, newContext, responsesDuring, screenshot } from '../helpers/chromium.js'

let redis: TestRedis
let demo: Demo
let browser: Browser
let context: BrowserContext
let page: Page

before(async () => {
  redis = await startRedis()
  // Port 0: free ports, so a running `npm run demo` on 3000-3002 is left alone.
  demo = await startDemo({ idpPort: 0, appPort: 0, shopPort: 0, quiet: true, redisUrl: redis.url })
  assert.equal(demo.redis.url, redis.url, 'the test redis-server is the one in use')
  browser = await launchChromium()
  context = await newContext(browser)
  page = await context.newPage()
})

after(async () => {
  await browser?.close()
  await demo?.close()
  await redis?.stop()
})


test('the shop\'s private page sends the browser to the IdP\'s form; signing in brings it back', async () => {
  await page.goto(`${demo.urls.shop}/private`)
  assert.equal(at(page.url()), `${demo.urls.idp}/login`)
  await assert.doesNotReject(page.getByRole('heading', { name: 'Sign in' }).waitFor())
  assert.match(await page.locator('main').innerText(), new RegExp(`to continue to\\s+${new URL(demo.urls.shop).host}`))
  const username = page.getByLabel('Username')
  const password = page.getByLabel('Password')
  assert.equal(await username.getAttribute('autocomplete'), 'username')
  assert.equal(await password.getAttribute('autocomplete'), 'current-password')

  // A wrong password: the form again, with a visible error tied to the fields.
  await username.fill(DEMO_USER.username)
  await password.fill('not-the-password')
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  await page.getByRole('alert').waitFor()
  assert.equal((await page.getByRole('alert').innerText()).trim(), 'Incorrect username or password.')
  assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true')
  assert.equal(await page.getByLabel('Username').inputValue(), DEMO_USER.username, 'the user name is kept')

  await page.getByLabel('Password').fill(DEMO_USER.password)
  await Promise.all([
    page.waitForURL(`${demo.urls.shop}/private`),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ])
  assert.equal(page.url(), `${demo.urls.shop}/private`, 'back at the shop, token gone from the URL')
  assert.match(await page.locator('#who').innerText(), /Signed in as Alice Example \(alice\)/)
})

test('the login form, for README', async () => {
  // A fresh context: the empty form a first visit sees.
  const fresh = await newContext(browser)
  try {
    const p = await fresh.newPage()
    await p.goto(`${demo.urls.shop}/private`)
    await p.getByLabel('Username').waitFor()
    await screenshot(p, 'login.png')
  } finally {
    await fresh.close()
  }
})

test('the app\'s private page opens with no form: the IdP session is reused', async () => {
  const responses = await responsesDuring(page, () => page.goto(`${demo.urls.app}/private`))
  assert.equal(page.url(), `${demo.urls.app}/private`)
  const hops = responses.map((r) => `${r.status()} ${at(r.url())}`)
  assert.ok(hops.includes(`302 ${demo.urls.idp}/login`), `went through the IdP: ${hops.join(', ')}`)
  assert.ok(!hops.includes(`200 ${demo.urls.idp}/login`), `no login form: ${hops.join(', ')}`)
  assert.equal(await page.locator('form[action="/login"]').count(), 0)
  assert.match(await page.locator('#who').innerText(), /Alice Example/)
  assert.equal(await page.locator('#visits').innerText(), '2', 'one visit counter across both apps')
})

test('the IdP\'s signed-in page shows who and where', async () => {
  await page.goto(`${demo.urls.idp}/`)
  assert.equal(await page.locator('#display-name').innerText(), 'Alice Example')
  assert.equal(await page.locator('#username').innerText(), 'alice')
  const apps = await page.locator('.apps a').evaluateAll((links) => links.map((a) => (a as unknown as { href: string }).href))
  assert.deepEqual(apps, [`${demo.urls.app}/`, `${demo.urls.shop}/`])
  await page.getByRole('button', { name: 'Sign out everywhere' }).waitFor()
  await screenshot(page, 'signed-in.png')
})

test('another site\'s auto-submitting form cannot sign the user out at the IdP', async () => {
  // A page on another site (served by Playwright, no network) that posts to the IdP's /logout on load.
  const evil = 'http://evil.example/'
  await context.route(evil, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<form id="f" method="post" action="${demo.urls.idp}/logout"></form><script>document.getElementById('f').submit()</script>`,
  }))
  const [response] = await Promise.all([page.waitForResponse(`${demo.urls.idp}/logout`), page.goto(evil)])
  assert.equal(response.status(), 403)
  await page.waitForURL(`${demo.urls.idp}/logout`)
  assert.match(await page.locator('body').innerText(), /sent from another site, so it was refused/)
  await page.goto(`${demo.urls.idp}/`)
  assert.equal(await page.locator('#display-name').innerText(), 'Alice Example', 'still signed in at the IdP')
  await page.goto(`${demo.urls.shop}/private`)
  assert.equal(page.url(), `${demo.urls.shop}/private`, 'still signed in at the shop')
  await context.unroute(evil)
})

test('logging out in the app ends the session at the shop too', async () => {
  await page.goto(`${demo.urls.app}/private`)
  await Promise.all([
    page.waitForURL(`${demo.urls.app}/`),
    page.getByRole('button', { name: 'Sign out everywhere' }).click(),
  ])
  assert.match(await page.locator('body').innerText(), /You are not signed in/)

  await page.goto(`${demo.urls.shop}/private`)
  assert.equal(at(page.url()), `${demo.urls.idp}/login`, 'the shop asks to sign in again')
  await page.getByLabel('Password').waitFor()
  await page.goto(`${demo.urls.idp}/`)
  assert.match(await page.locator('body').innerText(), /You are not signed in/)
})

test('a forged ?token= gets the 403 page, not a session', async () => {
  // The browser's real state cookie for the shop, a well-formed token for the shop, the demo's key
  // id, but a key nobody has: everything right except the one thing that matters.
  await page.goto(`${demo.urls.shop}/private`) // sets the state cookie, lands on the form
  const state = (await context.cookies(demo.urls.shop)).find((c) => c.name === appCookies(demo.urls.shop).state)?.value
  assert.ok(state, 'the shop set its state cookie')
  const problems: string[] = []
  const keyring = parseSyncKeys(`demo:${randomBytes(32).toString('base64url')}`, 'forged', problems)
  assert.ok(keyring)
  const { token } = mintToken(mintingKeyFor(keyring, demo.urls.shop), { sid: randomBytes(32).toString('base64url'), aud: demo.urls.shop, st: state, ttlSeconds: 10 })

  const response = await page.goto(`${demo.urls.shop}/private?token=${token}`)
  assert.equal(response?.status(), 403)
  assert.equal(page.url(), `${demo.urls.shop}/private?token=${token}`, 'no redirect, no loop')
  const text = await page.locator('body').innerText()
  assert.match(text, /This sign-in link is invalid or has expired\./)
  assert.match(text, /TESSERA_ERR_INVALID_TOKEN/)
  const cookies = await context.cookies(demo.urls.shop)
  assert.ok(!cookies.some((c) => c.name === appCookies(demo.urls.shop).session), 'no session cookie at the shop')
})
