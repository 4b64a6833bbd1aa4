/**
 * The hand-overs the driver times, each step checked (status, where the Location points, the user on
 * the final page), and the sign-ins that set up each virtual user once, for real.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Agent } from 'undici'
import { Browser, type Page } from '../../test/helpers/browser.js'
import { formAction, formFields } from '../../test/helpers/forms.js'
import { PASSWORD, USERNAME } from '../../test/helpers/users.js'
import { WHO } from './common.js'
import type { ServerProcess } from './proc.js'
import { HOSTS } from './settings.js'

export class CheckError extends Error {}
export function expect(cond: boolean, what: string): asserts cond {
  if (!cond) throw new CheckError(what)
}
const describe = (r: Page): string => `${r.status}${r.location() === undefined ? '' : ` -> ${(r.location() as string).slice(0, 80)}`}`
const startsWith = (prefix: string) => (location: string): boolean => location.startsWith(prefix)
const is = (url: string) => (location: string): boolean => location === url

/** Checks that `r` redirects (one of `statuses`) to where `where` accepts, and returns the Location. */
function redirect(r: Page, statuses: readonly number[], where: (location: string) => boolean, what: string): string {
  const location = r.location()
  expect(statuses.includes(r.status) && location !== undefined && where(location), `${what}: ${describe(r)}`)
  return location
}

/** The load driver's browser: undici's dispatch API over `agent`'s kept-alive connections. */
export const benchBrowser = (agent: Agent): Browser => new Browser({ dispatcher: agent, accept: 'text/html,application/xhtml+xml', userAgent: 'tessera-bench' })

export interface HandoverSystem {
  readonly name: string
  /** The servers whose CPU is charged to the hand-over: the provider side and the app side. */
  readonly servers: readonly ServerProcess[]
  readonly browsers: readonly Browser[]
  /** One complete, checked hand-over for a browser already signed in at the provider. */
  handover(b: Browser): Promise<void>
}

/**
 * Tessera (and the bare floor, same steps): app without session -> IdP /login -> 302 with token ->
 * app redeems -> 302 clean URL -> page.
 */
export async function redirectHandover(b: Browser, appHost: string, appUrl: string, idpUrl: string): Promise<void> {
  b.clear(appHost) // no session at the app yet; the IdP session stays
  const start = `${appUrl}/private`
  let r = await b.get(start)
  r = await b.get(redirect(r, [302], startsWith(`${idpUrl}/login?`), 'app without session'))
  r = await b.get(redirect(r, [302], startsWith(`${appUrl}/private?token=`), 'IdP /login'))
  r = await b.get(redirect(r, [302], is(start), 'app redeeming the token'))
  expect(r.status === 200 && r.body.includes(WHO), `app page: ${r.status} ${r.body.slice(0, 80)}`)
}

/** Sign-in at the IdP once (the login form, argon2 and all), ending on the app's page. */
export async function tesseraSignIn(b: Browser, appUrl: string, idpUrl: string): Promise<void> {
  let r = await b.get(`${appUrl}/private`)
  r = await b.get(redirect(r, [302], startsWith(`${idpUrl}/login?`), 'sign-in, app'))
  expect(r.status === 200, `sign-in, login form: ${r.status}`)
  r = await b.post(`${idpUrl}/login`, { ...formFields(r.body), username: USERNAME, password: PASSWORD })
  r = await b.get(redirect(r, [303], startsWith(`${appUrl}/private?token=`), 'sign-in, POST /login'))
  r = await b.get(redirect(r, [302], () => true, 'sign-in, redeem'))
  expect(r.status === 200 && r.body.includes(WHO), `sign-in, page: ${r.status}`)
}

/** OIDC: RP without session -> /auth -> 302 with code -> RP exchanges it (PKCE) and validates the ID token -> 302 -> page. */
export async function oidcHandover(b: Browser, rpUrl: string, opUrl: string): Promise<void> {
  b.clear(HOSTS.rp)
  const start = `${rpUrl}/private`
  let r = await b.get(start)
  r = await b.get(redirect(r, [302], startsWith(`${opUrl}/auth?`), 'RP without session'))
  r = await b.get(redirect(r, [302, 303], startsWith(`${rpUrl}/cb?code=`), 'OP /auth'))
  r = await b.get(redirect(r, [302], is(start), 'RP callback'))
  expect(r.status === 200 && r.body.includes(WHO), `RP page: ${r.status} ${r.body.slice(0, 80)}`)
}

/** One real interaction at the provider (login form, then consent), through its documented interaction API. */
export async function oidcSignIn(b: Browser, rpUrl: string): Promise<void> {
  let url = `${rpUrl}/private`
  const trail: string[] = []
  for (let hops = 0; hops < 20; hops++) {
    const r = await b.get(url)
    trail.push(`${r.status} ${url.slice(0, 60)}`)
    const location = r.location()
    if (r.status >= 300 && r.status < 400 && location !== undefined) { url = location; continue }
    expect(r.status === 200, `OIDC sign-in at ${url}: ${r.status} ${r.body.slice(0, 200)}`)
    if (r.body.includes(WHO)) return
    const action = formAction(r.body, url)
    expect(action !== undefined, `OIDC sign-in: no form at ${url}`)
    const posted = await b.post(action, action.endsWith('/login') ? { login: USERNAME, password: PASSWORD } : {})
    const next = posted.location()
    expect(next !== undefined, `OIDC sign-in, POST ${action}: ${posted.status} ${posted.body.slice(0, 200)}`)
    url = next
  }
  throw new CheckError(`OIDC sign-in: too many redirects: ${trail.join(' -> ')}`)
}

export async function withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  // Servers connect to Redis on their own at start-up; give them a moment.
  for (let i = 0; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= 20) throw new Error(`${what}: ${(err as Error).message}`)
      await sleep(100)
    }
  }
}
