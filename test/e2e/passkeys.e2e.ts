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
import { at, launchChromium, responsesDuring, screenshot } from '../helpers/chromium.js'
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

test('a passkey registered at the IdP signs in alone through the app, and the shop on another host opens with no prompt', async () => {
  // Signed in with the password first, as a user who has no passkey yet.
  await page.goto(`${demo.urls.app}/private`)
  await page.getByLabel('Username').fill(DEMO_USER.username)
  await page.getByLabel('Password').fill(DEMO_USER.password)
  await Promise.all([page.waitForURL(`${demo.urls.app}/private`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])

  // The security page asks for the password again before any change.
  await page.goto(`${demo.urls.idp}/security`)
  await page.getByLabel('Password').fill(DEMO_USER.password)
  await Promise.all([page.waitForURL(`${demo.urls.idp}/security`), page.getByRole('button', { name: 'Confirm' }).click()])
  await page.getByLabel('Name for a new passkey').fill('This laptop')
  await Promise.all([
    page.waitForURL(`${demo.urls.idp}/security#passkeys`),
    page.getByRole('button', { name: 'Add a passkey' }).click(),
  ])
  assert.equal(await page.getByLabel('Passkey name').inputValue(), 'This laptop')
  const held = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  assert.equal(held.credentials.length, 1, 'the authenticator made one passkey')
  assert.equal(held.credentials[0]?.rpId, new URL(demo.urls.idp).hostname, 'bound to the IdP\'s host, not to an app\'s')
  assert.equal(held.credentials[0]?.isResidentCredential, true, 'discoverable: no user name needed to use it')
  await page.locator('#passkeys').scrollIntoViewIfNeeded()
  await screenshot(page, 'security-passkeys.png', { fullPage: true })

  // Signed out everywhere: the next sign-in is the passkey alone, no user name, no password.
  await page.goto(`${demo.urls.idp}/`)
  await Promise.all([page.waitForURL(/\/logout$|\/$/), page.getByRole('button', { name: 'Sign out everywhere' }).click()])
  await page.goto(`${demo.urls.app}/private`)
  assert.equal(at(page.url()), `${demo.urls.idp}/login`, 'signed out: the app sends the browser to the IdP')
  await Promise.all([
    page.waitForURL(`${demo.urls.app}/private`),
    page.getByRole('button', { name: 'Sign in with a passkey' }).click(),
  ])
  assert.match(await page.locator('#who').innerText(), /Signed in as Alice Example \(alice\)/)
  const used = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  assert.ok((used.credentials[0]?.signCount ?? 0) >= 1, 'the passkey signed the sign-in')

  // The shop, another host: through the IdP and back with no form and no passkey prompt.
  const responses = await responsesDuring(page, () => page.goto(`${demo.urls.shop}/private`))
  assert.equal(page.url(), `${demo.urls.shop}/private`)
  const hops = responses.map((r) => `${r.status()} ${at(r.url())}`)
  assert.ok(hops.includes(`302 ${demo.urls.idp}/login`), `went through the IdP: ${hops.join(', ')}`)
  assert.ok(!hops.includes(`200 ${demo.urls.idp}/login`), `no login form: ${hops.join(', ')}`)
  assert.match(await page.locator('#who').innerText(), /Alice Example/)
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  assert.equal(after.credentials[0]?.signCount, used.credentials[0]?.signCount, 'no second passkey use for the shop')
})

test('with a passkey registered, a password sign-in asks for it as the second step, and "Use a passkey" finishes it', async () => {
  await page.goto(`${demo.urls.idp}/`)
  await Promise.all([page.waitForURL(/\/logout$|\/$/), page.getByRole('button', { name: 'Sign out everywhere' }).click()])
  await page.goto(`${demo.urls.shop}/private`)
  await page.getByLabel('Username').fill(DEMO_USER.username)
  await page.getByLabel('Password').fill(DEMO_USER.password)
  await Promise.all([page.waitForURL(`${demo.urls.idp}/login/second-factor`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])
  await Promise.all([page.waitForURL(`${demo.urls.shop}/private`), page.getByRole('button', { name: 'Use a passkey' }).click()])
  assert.match(await page.locator('#who').innerText(), /Signed in as Alice Example \(alice\)/)
})
