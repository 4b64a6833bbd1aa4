/**
 * The one copy of what the e2e files share: Debian's /usr/bin/chromium through playwright-core (no
 * browser download), launched with a fresh profile, pages of one size, and screenshots that a test
 * run takes (so it checks the page renders) but only `npm run screenshots` (TESSERA_SCREENSHOTS=1)
 * writes to docs/img/ for README, so a test run leaves the tree clean.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core'
import { VIEWS_DIR } from '../../src/idp/paths.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
]
const SCREENSHOTS = join(dirname(VIEWS_DIR), 'docs', 'img')

/** Playwright gives every launch a fresh temporary profile (its own --user-data-dir). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 })
}

/** A context as README's screenshots show pages: 800×600, light, British English. */
export async function newContext(browser: Browser, options: { userAgent?: string } = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 }, colorScheme: 'light', locale: 'en-GB', ...options })
  context.setDefaultTimeout(10_000)
  return context
}

/** Takes a screenshot (so a test run checks the page renders), and keeps it for README only when asked. */
export async function screenshot(p: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  const png = await p.screenshot(options)
  assert.equal(png.subarray(1, 4).toString(), 'PNG')
  if (process.env.TESSERA_SCREENSHOTS !== '1') return
  mkdirSync(SCREENSHOTS, { recursive: true })
  writeFileSync(join(SCREENSHOTS, name), png)
}

/** A URL without its query: where a page is, not what it carries. */
export const at = (url: string): string => { const u = new URL(url); return `${u.origin}${u.pathname}` }

/** Runs `action` and returns every response (redirects included) `page` received meanwhile. */
export async function responsesDuring(page: Page, action: () => Promise<unknown>): Promise<Response[]> {
  const seen: Response[] = []
  const onResponse = (r: Response): void => { seen.push(r) }
  page.on('response', onResponse)
  try {
    await action()
  } finally {
    page.off('response', onResponse)
  }
  return seen
}
