/**
 * Passkeys in a real Chromium (Debian's /usr/bin/chromium through playwright-core), with the DevTools
 * protocol's virtual authenticator standing in for the user's passkey manager: register a passkey at
 * the IdP, sign out, sign in with the passkey alone through one app, and open the other app, on
 * another host, with no prompt at all. The demo's hosts are *.localhost, which Chromium treats as a
 * secure context, so WebAuthn works on plain http. Screenshots go to docs/img/ only with
 * TESSERA_SCREENSHOTS=1 (`npm run screenshots`).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core'
import { DEMO_USER, startDemo, type Demo } from '../../examples/demo.js'
import { at, launchChromium, screenshot } from '../helpers/chromium.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'

let redis: TestRedis
let demo: Demo
let browser: Browser
let context: BrowserContext
let page: Page
let cdp: CDPSession
let authenticatorId: string

before(async () => {
  redis = await startRedis()
  demo = await startDemo({ idpPort: 0, appPort: 0, shopPort: 0, quiet: true, redisUrl: redis.url })
  browser = await launchChromium()
  context = await browser.newContext({ viewport: { width: 800, height: 700 }, colorScheme: 'light', locale: 'en-GB' })
  context.setDefaultTimeout(15_000)
  page = await context.newPage()
  // The virtual authenticator belongs to this page's DevTools session: a platform authenticator
  // (internal transport) that keeps discoverable credentials and verifies the user without asking.
  cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const added = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })
  authenticatorId = added.authenticatorId
})

after(async () => {
  await browser?.close()
  await demo?.close()
  await redis?.stop()
})

test('the login form offers "Sign in with a passkey", its scripts load under the CSP, and no passkey yet means a clear message', async () => {
  const blocked: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') blocked.push(m.text()) })
  await page.goto(`${demo.urls.app}/private`)
  assert.equal(at(page.url()), `${demo.urls.idp}/login`)
  const button = page.getByRole('button', { name: 'Sign in with a passkey' })
  await button.waitFor()
  await screenshot(page, 'login-passkey.png')
  // The virtual authenticator holds no passkey for the IdP yet: the browser's prompt ends with nothing chosen.
  await button.click()
  await page.getByText('No passkey was used. You can try again.').waitFor()
  assert.equal(at(page.url()), `${demo.urls.idp}/login`, 'still on the form')
  assert.deepEqual(blocked.filter((t) => /Content Security Policy/i.test(t)), [], 'nothing blocked by the CSP')
})
