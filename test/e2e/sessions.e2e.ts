/**
 * The user's sessions page in a real Chromium, on the demo: two browsers (two contexts, one of them
 * calling itself Safari on an iPhone) sign in as alice; the first opens "Your sessions" from the IdP's
 * home page, sees both with their devices and apps, and signs the phone out, which the shop then
 * refuses. `npm run screenshots` keeps the page as docs/img/sessions.png for README.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { DEMO_USER, startDemo, type Demo } from '../../examples/demo.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { launchChromium, newContext, screenshot } from '../helpers/chromium.js'

const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'

let redis: TestRedis
let demo: Demo
let browser: Browser
let laptop: BrowserContext
let phone: BrowserContext

before(async () => {
  redis = await startRedis()
  demo = await startDemo({ idpPort: 0, appPort: 0, shopPort: 0, quiet: true, redisUrl: redis.url })
  browser = await launchChromium()
  laptop = await newContext(browser)
  phone = await newContext(browser, { userAgent: SAFARI_IPHONE })
})

after(async () => {
  await browser?.close()
  await demo?.close()
  await redis?.stop()
})

/** Opens `app`'s private page in `context` and signs in at the IdP's form; resolves on the app's page. */
async function signInAt(context: BrowserContext, app: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${app}/private`)
  await page.getByLabel('Username').fill(DEMO_USER.username)
  await page.getByLabel('Password').fill(DEMO_USER.password)
  await Promise.all([page.waitForURL(`${app}/private`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])
  return page
}

test('the sessions page lists both browsers with their devices and apps; signing the phone out there ends it at the shop', async () => {
  const onPhone = await signInAt(phone, demo.urls.shop)
  const page = await signInAt(laptop, demo.urls.app)
  await page.goto(`${demo.urls.shop}/private`)
  assert.equal(page.url(), `${demo.urls.shop}/private`, 'the laptop reached the shop with no second sign-in')

  await page.goto(`${demo.urls.idp}/`)
  await Promise.all([page.waitForURL(`${demo.urls.idp}/sessions`), page.getByRole('link', { name: 'Your sessions' }).click()])
  await page.getByRole('heading', { name: 'Your sessions' }).waitFor()
  const sessions = page.locator('li.session')
  assert.equal(await sessions.count(), 2)
  const mine = sessions.nth(0)
  const other = sessions.nth(1)
  assert.equal(await mine.locator('.device').innerText(), 'Chrome on Linux')
  assert.equal(await mine.locator('.badge').innerText(), 'This session')
  assert.equal(await mine.locator('.session-apps').innerText(), `${demo.urls.app}, ${demo.urls.shop}`)
  assert.equal(await mine.locator('.methods').innerText(), 'password')
  assert.equal(await other.locator('.device').innerText(), 'Safari on iOS')
  assert.equal(await other.locator('.badge').count(), 0)
  assert.equal(await other.locator('.session-apps').innerText(), demo.urls.shop)
  await screenshot(page, 'sessions.png', { fullPage: true })

  await Promise.all([page.waitForURL(/\/sessions\?ended=1$/), other.getByRole('button', { name: 'Sign out this device' }).click()])
  assert.equal((await page.getByRole('status').innerText()).trim(), '1 session is signed out everywhere.')
  assert.equal(await page.locator('li.session').count(), 1)

  await onPhone.goto(`${demo.urls.shop}/private`)
  assert.equal(new URL(onPhone.url()).pathname, '/login', 'the shop sends the signed-out phone to sign in again')
  assert.equal(new URL(onPhone.url()).origin, demo.urls.idp)
  await page.goto(`${demo.urls.shop}/private`)
  assert.equal(page.url(), `${demo.urls.shop}/private`, 'the laptop is still signed in')
})
