/** What the container tests do through the running containers, as a browser would. */
import assert from 'node:assert/strict'
import { Browser, type Page } from '../helpers/browser.js'
import { formFields } from '../helpers/stack.js'

/** The image's demo user (examples/users.yml): docker-compose.yml's; production refuses its published hash. */
export const DEMO_USER = { username: 'alice', password: 'tessera-demo' } as const

export interface Credentials { readonly username: string; readonly password: string }

/**
 * Opens the app's private page, signs in at the IdP it is sent to, and follows the hand-over back:
 * the page then greets Alice. Returns the IdP login page's URL.
 */
export async function signInThrough(b: Browser, appUrl: string, user: Credentials = DEMO_USER): Promise<string> {
  const toForm = await b.navigate(`${appUrl}/private`)
  assert.deepEqual(toForm.map((p) => p.status), [302, 200], 'the app sends the browser to the IdP form')
  const form = toForm.at(-1) as Page
  const posted = await b.post(new URL('/login', form.url).href, { ...formFields(form.body), ...user })
  assert.equal(posted.status, 303, `POST /login answered ${posted.status}`)
  const back = await b.navigate(posted.location() as string)
  assert.deepEqual(back.map((p) => p.status), [302, 200], 'token redeemed, then the clean private page')
  assert.match(back.at(-1)?.body ?? '', /Signed in as <strong>Alice Example<\/strong>/)
  return form.url
}

/** The signed-in user's name at the app, or the status when there is none. */
export async function whoAmI(b: Browser, appUrl: string): Promise<string | number> {
  const page = await b.get(`${appUrl}/api/me`, 'application/json')
  return page.status === 200 ? page.json<{ user: { username: string } }>().user.username : page.status
}

/**
 * A browser for the compose stack's public names: it sends requests for `http://idp.localhost:3000`
 * and the like to the loopback address and port the test published them on (browsers resolve
 * *.localhost to loopback; Node's resolver does not), and shows pages under their public URLs.
 */
export class MappedBrowser extends Browser {
  constructor(private readonly map: Readonly<Record<string, string>>) {
    super()
  }

  override async request(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<Page> {
    const u = new URL(url)
    const to = this.map[u.origin]
    if (to === undefined) throw new Error(`no mapping for ${u.origin}`)
    const page = await super.request(`${to}${u.pathname}${u.search}`, init)
    const location = page.headers.get('location')
    return { ...page, url, location: () => (location === null ? undefined : new URL(location, url).href) }
  }
}
