/**
 * The systems the rounds measure, set up for real: virtual users signed in once at each provider
 * (login form, argon2 and all), and for page views a valid session cookie from one real sign-in each.
 */
import { Agent } from 'undici'
import { PASSWORD, USERNAME } from '../../test/helpers/users.js'
import { page } from './common.js'
import { benchBrowser, expect, oidcHandover, oidcSignIn, redirectHandover, tesseraSignIn, withRetry, type HandoverSystem } from './handovers.js'
import type { PageviewSystem } from './measure.js'
import { mintOpenPeers } from './mint-open.js'
import type { ServerProcess } from './proc.js'
import type { Systems } from './rounds.js'
import type { Servers } from './servers.js'
import { CONCURRENCY, HOSTS } from './settings.js'
import { appCookies } from '../../test/helpers/app-cookies.js'

/** Every system of the rounds; the undici agents it opens go into `agents`, for the caller to close. */
export async function setUpSystems(s: Servers, agents: Agent[]): Promise<Systems> {
  const agent = (): Agent => { const a = new Agent({ keepAliveTimeout: 30_000, connections: null, pipelining: 1 }); agents.push(a); return a }
  const { tessera, oidc, bare } = await handoverSystems(s, agent(), agent())
  return { tessera, oidc, bare, pageviews: await pageviewSystems(s, agent()), mintOpen: mintOpenPeers() }
}

/** Virtual users: signed in once at the provider, for real, then reused for every hand-over. */
async function handoverSystems(s: Servers, tesseraAgent: Agent, oidcAgent: Agent): Promise<Pick<Systems, 'tessera' | 'oidc' | 'bare'>> {
  const users = (a: Agent): ReturnType<typeof benchBrowser>[] => Array.from({ length: CONCURRENCY }, () => benchBrowser(a))
  const tesseraBrowsers = users(tesseraAgent)
  const oidcBrowsers = users(oidcAgent)
  await Promise.all(tesseraBrowsers.map((b) => withRetry('Tessera sign-in', () => tesseraSignIn(b, s.app.url, s.idp.url))))
  await Promise.all(oidcBrowsers.map((b) => withRetry('OIDC sign-in', () => oidcSignIn(b, s.rp.url))))
  const tessera: HandoverSystem = {
    name: 'tessera-handover', servers: [s.idp, s.app], browsers: tesseraBrowsers,
    handover: (b) => redirectHandover(b, HOSTS.app, s.app.url, s.idp.url),
  }
  const bareBrowsers = users(tesseraAgent)
  for (const b of bareBrowsers) expect((await b.get(`${s.bareIdp.url}/bare-sign-in?user=${USERNAME}`)).status === 200, 'bare sign-in')
  const bare: HandoverSystem = {
    name: 'bare-handover', servers: [s.bareIdp, s.bareApp], browsers: bareBrowsers,
    handover: (b) => redirectHandover(b, HOSTS.bareApp, s.bareApp.url, s.bareIdp.url),
  }
  const oidc: HandoverSystem = {
    name: 'oidc-handover', servers: [s.op, s.rp], browsers: oidcBrowsers,
    handover: (b) => oidcHandover(b, s.rp.url, s.op.url),
  }
  return { tessera, oidc, bare }
}

/** The bare floor's session id: its IdP side signs in, and its app side reads the same Redis key. */
async function bareCookie(viewer: ReturnType<typeof benchBrowser>, s: Servers): Promise<string> {
  expect((await viewer.get(`${s.bareIdp.url}/bare-sign-in?user=${USERNAME}`)).status === 200, 'bare sign-in')
  const sid = viewer.cookies(HOSTS.bareIdp).get('s')
  expect(sid !== undefined, 'no bare session cookie')
  return sid
}

/** The nginx-protected host's handle cookie, from a real hand-over through nginx and the gate (the viewer is signed in at the IdP). */
async function forwardAuthCookie(viewer: ReturnType<typeof benchBrowser>, s: Servers): Promise<string> {
  await redirectHandover(viewer, HOSTS.forwardAuth, s.nginx.url, s.idp.url)
  const name = appCookies(s.nginx.url).session
  const value = viewer.cookies(HOSTS.forwardAuth).get(name)
  expect(value !== undefined, 'no handle cookie from the gate after a hand-over through nginx')
  return `${name}=${value}`
}

/** Page views: a valid session cookie from one real sign-in per system; each system must answer once. */
async function pageviewSystems(s: Servers, agent: Agent): Promise<PageviewSystem[]> {
  const viewer = benchBrowser(agent)
  await tesseraSignIn(viewer, s.app.url, s.idp.url)
  const tesseraCookieName = appCookies(s.app.url).session
  const tesseraCookie = viewer.cookies(HOSTS.app).get(tesseraCookieName)
  expect(tesseraCookie !== undefined, 'no tessera cookie after sign-in')
  const fsCookie = async (server: ServerProcess, host: string): Promise<string> => {
    const r = await withRetry('@fastify/session sign-in', () => viewer.post(`${server.url}/login`, { username: USERNAME, password: PASSWORD }))
    expect(r.status === 303, `@fastify/session sign-in: ${r.status}`)
    const c = viewer.cookies(host).get('sid')
    expect(c !== undefined, 'no sid cookie after sign-in')
    return c
  }
  const expected = page(USERNAME)
  const bareSid = await bareCookie(viewer, s)
  const html = { accept: 'text/html,application/xhtml+xml' }
  const pageviews: PageviewSystem[] = [
    { name: 'tessera-pageview', url: `${s.app.url}/private`, server: s.app, headers: { ...html, cookie: `${tesseraCookieName}=${tesseraCookie}` }, expectBody: expected },
    { name: 'fastify-session-pageview', url: `${s.fsNoRolling.url}/private`, server: s.fsNoRolling, headers: { ...html, cookie: `sid=${await fsCookie(s.fsNoRolling, HOSTS.fastifySession)}` }, expectBody: expected },
    { name: 'fastify-session-default-pageview', url: `${s.fsDefault.url}/private`, server: s.fsDefault, headers: { ...html, cookie: `sid=${await fsCookie(s.fsDefault, HOSTS.fastifySessionDefault)}` }, expectBody: expected },
    { name: 'hello-world', url: `${s.hello.url}/`, server: s.hello, headers: {}, expectBody: JSON.stringify({ hello: 'world' }) },
    { name: 'bare-pageview', url: `${s.bareApp.url}/private`, server: s.bareApp, headers: { ...html, cookie: `s=${bareSid}` }, expectBody: expected },
    { name: 'forward-auth-pageview', url: `${s.nginx.url}/private`, server: s.gate, headers: { ...html, cookie: await forwardAuthCookie(viewer, s) }, expectBody: expected },
    // Its floor: the bare session id (the bare IdP's sign-in), read by the bare gate behind the second nginx.
    { name: 'forward-auth-floor-pageview', url: `${s.nginxFloor.url}/private`, server: s.bareGate, headers: { ...html, cookie: `s=${bareSid}` }, expectBody: expected },
  ]
  for (const p of pageviews) {
    const probe = await viewer.get(p.url).catch(() => undefined)
    expect(probe !== undefined, `${p.name}: no answer`)
  }
  return pageviews
}
