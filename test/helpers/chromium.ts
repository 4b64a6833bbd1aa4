/**
 * What every end-to-end file shares: Debian's Chromium through playwright-core (no browser download),
 * screenshots kept for README only when asked (TESSERA_SCREENSHOTS=1), and reading a page's hops.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { chromium, type Browser, type Page, type Response } from 'playwright-core'
import { VIEWS_DIR } from '../../src/idp/paths.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
]
const SCREENSHOTS = join(dirname(VIEWS_DIR), 'docs', 'img')

/** A fresh Chromium; Playwright gives every launch a fresh temporary profile (its own --user-data-dir). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 })
}

/** Takes a screenshot (so a test run checks the page renders), and keeps it for README only when asked. */
export async function screenshot(p: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<void> {
  const png = await p.screenshot(opts)
  assert.equal(png.subarray(1, 4).toString(), 'PNG')
  if (process.env.TESSERA_SCREENSHOTS !== '1') return
  mkdirSync(SCREENSHOTS, { recursive: true })
  writeFileSync(join(SCREENSHOTS, name), png)
}

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

/** A URL without its query: where a page is, not what it carries. */
export const at = (url: string): string => { const u = new URL(url); return `${u.origin}${u.pathname}` }
