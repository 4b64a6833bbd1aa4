/**
 * The remote side's hand-over and restore decisions, with no framework: plain values in (method,
 * URL, Accept, cookies), a decision out (go on with or without a session, redirect, error) with the
 * cookies to set or clear. The Fastify plugin, the Express middleware and the forward-auth endpoint
 * only translate requests in and decisions out, so the security-critical order of checks lives here
 * once:
 *   1. a signed-in browser: go on; a token it brings is checked but not spent (another tab's
 *      hand-over may have come first), and a navigation goes on to the URL without it;
 *   2. a token: GET only, opened for this origin, its state equal to this browser's state cookie,
 *      then spent once in Redis, which links a handle for this app; then back to the clean URL;
 *   3. a public path: go on without a session;
 *   4. else: a navigation goes to the IdP with a callback and state, anything else gets 401.
 * With `secondFactor: 'required'`, a session without a second factor counts as none in 1 and 3 (its
 * cookie is kept: the IdP steps up that same session), every login URL asks the IdP for one (`mfa=1`),
 * and a token whose session still has none gets 403 in 2.
 */
import { randomId, safeEqual } from '../shared/crypto.js'
import { BadRequestError, InvalidTokenError, SecondFactorRequiredError, TesseraError, UnauthenticatedError } from '../shared/errors.js'
import { decodeHandle, encodeHandle } from '../shared/handle-cookie.js'
import { isNavigation } from '../shared/http.js'
import { encodeCallback, replaceQueryParam } from '../shared/query.js'
import { ID_BYTES, isState, type SessionSnapshot } from '../shared/session.js'
import type { Sessions } from '../shared/sessions.js'
import { openToken, type TokenClaims } from '../shared/token.js'
import type { Tokens } from '../shared/tokens.js'
import type { ResolvedOptions } from './options.js'
import type { CookieChange } from './set-cookie.js'
import type { WayOn } from './pages.js'

export type { CookieChange } from './set-cookie.js'

/** How long a user may spend at the IdP's login form before the state cookie lapses. */
export const STATE_MAX_AGE_S = 15 * 60

/** The request as the core needs it; `url` is the request target, origin-form (`/path?query`). */
export interface PlainRequest {
  readonly method: string
  readonly url: string
  readonly accept: string | undefined
  readonly cookies: Readonly<Record<string, string | undefined>>
}

interface Common {
  /** The session the request opened (or a redemption created), if any. */
  readonly session?: SessionSnapshot
  readonly cookies: readonly CookieChange[]
  /** For the log: what happened, never a secret. */
  readonly event?: string
}

export type Decision =
  | (Common & { readonly kind: 'continue' })
  | (Common & { readonly kind: 'redirect'; readonly location: string; readonly headers: Readonly<Record<string, string>> })
  | (Common & { readonly kind: 'error'; readonly error: TesseraError; readonly extra?: Readonly<Record<string, string>>; readonly wayOn?: WayOn })

const NO_STORE = { 'cache-control': 'no-store' } as const
// The token is in the URL being left: keep it out of any Referer and any cache.
const HANDED_OVER = { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' } as const

export class RemoteCore {
  constructor(
    readonly opts: ResolvedOptions,
    readonly sessions: Sessions,
    readonly tokens: Tokens,
  ) {}

  /** What to do with a request: the order of checks in the module comment. */
  async decide(req: PlainRequest): Promise<Decision> {
    // Every request a browser sends is origin-form; anything else is not ours to serve.
    if (!req.url.startsWith('/')) return { kind: 'error', error: new BadRequestError('Bad request.', 'request target is not origin-form'), cookies: [] }
    const cookieValue = req.cookies[this.opts.cookieName]
    const cookies: CookieChange[] = []
    try {
      const handle = decodeHandle(cookieValue, this.opts.sessionSecret, this.opts.origin)
      const session = handle === undefined ? undefined : await this.sessions.resolve(handle, this.opts.origin)
      const token = tokenParam(req.url)
      if (session !== undefined && this.isStrongEnough(session)) {
        if (token === undefined) return { kind: 'continue', session, cookies }
        await this.#checkUnneeded(req, token, session)
        if (isNavigation(req.method, req.accept)) return { kind: 'redirect', location: this.cleanUrl(req.url), headers: {}, session, cookies }
        return { kind: 'continue', session, cookies }
      }
      // A cookie that opens nothing is cleared, so the browser stops sending it.
      if (session === undefined && cookieValue !== undefined) cookies.push({ name: this.opts.cookieName, value: null })
      if (token !== undefined) return await this.#redeem(req, token, cookies)
      if (this.opts.isPublic(pathOf(req.url))) return { kind: 'continue', cookies }
      return this.#askToSignIn(req, cookies)
    } catch (err) {
      if (!(err instanceof TesseraError) || !err.expose) throw err
      const wayOn = err instanceof InvalidTokenError ? { href: this.cleanUrl(req.url), label: 'Try again' }
        : err instanceof SecondFactorRequiredError ? { href: `${this.opts.idpUrl}/`, label: 'Set up a second factor at the sign-in service' } : undefined
      return { kind: 'error', error: err, cookies, ...(wayOn === undefined ? {} : { wayOn }) }
    }
  }

  async #redeem(req: PlainRequest, token: string | readonly string[], cookies: CookieChange[]): Promise<Decision> {
    const claims = this.#open(req, token)
    const state = req.cookies[this.opts.stateCookieName]
    if (state === undefined || !safeEqual(state, claims.st)) throw new InvalidTokenError('state does not match this browser')
    const result = await this.tokens.redeem(claims.sid, claims.jti, this.opts.origin)
    if (result === 'replayed') throw new InvalidTokenError('token used before, expired or never minted')
    if (result === 'gone') throw new InvalidTokenError('session ended')
    // REDEEM has just set the idle TTL: the page this redirect leads to needs only the plain read.
    this.sessions.noteRefreshed(claims.sid, result.idleMs)
    // The IdP was asked for a second factor (mfa=1) and handed back without one: refuse, do not ask again.
    if (!this.isStrongEnough(result.session)) throw new SecondFactorRequiredError('the hand-over brought a session without a second factor')
    const { opts } = this
    cookies.length = 0 // the new handle replaces whatever cookie came
    cookies.push({ name: opts.cookieName, value: encodeHandle(result.handle, opts.sessionSecret, opts.origin) }, { name: opts.stateCookieName, value: null })
    // Back to the same URL without the token, so it never stays in the address bar, history or a Referer.
    return { kind: 'redirect', location: this.cleanUrl(req.url), headers: HANDED_OVER, session: result.session, cookies, event: 'session handed over' }
  }

  /**
   * A token brought by a browser that already has its session here is not spent (another tab's
   * hand-over may have set the cookie first), but it must still be one this browser could have been
   * given: well formed and sealed for this app, of this very session, not yet used, and bound to this
   * browser's state when it still has one (the first tab's redemption cleared it). Anything else is
   * 403, as for a browser without a session: an invalid token never passes silently.
   */
  async #checkUnneeded(req: PlainRequest, token: string | readonly string[], session: SessionSnapshot): Promise<void> {
    const claims = this.#open(req, token)
    if (claims.sid !== session.sid) throw new InvalidTokenError('token of another session than this browser\'s')
    const state = req.cookies[this.opts.stateCookieName]
    if (state !== undefined && !safeEqual(state, claims.st)) throw new InvalidTokenError('state does not match this browser')
    if (!(await this.tokens.isUnspent(claims.sid, claims.jti))) throw new InvalidTokenError('token used before, expired or never minted')
  }

  /** The claims of the request's one token: on a GET or HEAD, sealed for this app, not expired. */
  #open(req: PlainRequest, token: string | readonly string[]): TokenClaims {
    if (typeof token !== 'string') throw new InvalidTokenError('token parameter repeated')
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new InvalidTokenError(`token on a ${req.method}`)
    return openToken((kid) => this.opts.keys.byId.get(kid)?.tokenKey, token, this.opts.origin)
  }

  #askToSignIn(req: PlainRequest, cookies: CookieChange[]): Decision {
    // Reuse a live state so two tabs signing in at once do not invalidate each other's token.
    let state = req.cookies[this.opts.stateCookieName]
    if (!isState(state)) {
      state = randomId(ID_BYTES.state)
      cookies.push({ name: this.opts.stateCookieName, value: state, maxAge: STATE_MAX_AGE_S })
    }
    const loginUrl = this.loginUrl(req, state)
    if (isNavigation(req.method, req.accept)) return { kind: 'redirect', location: loginUrl, headers: NO_STORE, cookies }
    return { kind: 'error', error: new UnauthenticatedError(), extra: { loginUrl }, wayOn: { href: loginUrl, label: 'Sign in' }, cookies }
  }

  /**
   * The IdP's login URL for this request. The way back is a GET: a GET comes back to where it was;
   * a POST (a form sent after the session lapsed) cannot be replayed, so it comes back to `/`.
   */
  loginUrl(req: Pick<PlainRequest, 'method' | 'url'>, state: string): string {
    const back = req.method === 'GET' || req.method === 'HEAD' ? req.url : '/'
    const mfa = this.opts.secondFactorRequired ? '&mfa=1' : ''
    return `${this.opts.idpUrl}/login?callback=${encodeCallback(`${this.opts.origin}${back}`)}&state=${state}${mfa}`
  }

  /** Whether `session` satisfies this app's `secondFactor` policy: with `required`, an `otp` or `hwk` the IdP signed. */
  isStrongEnough(session: SessionSnapshot): boolean {
    return !this.opts.secondFactorRequired || session.auth.methods.some((m) => m.method === 'otp' || m.method === 'hwk')
  }

  /** Writes the data a request changed; resolves false when the session has ended meanwhile. */
  save(sid: string, changes: ReadonlyMap<string, unknown>): Promise<boolean> {
    return this.sessions.save(sid, changes)
  }

  /** Ends the session everywhere; returns where to send the browser and the cookie to clear. */
  async logout(sid: string | undefined, callback?: string): Promise<{ location: string; cookies: readonly CookieChange[] }> {
    if (sid !== undefined) await this.sessions.destroy(sid)
    return { location: this.#logoutTarget(callback), cookies: [{ name: this.opts.cookieName, value: null }] }
  }

  /** This request's absolute URL on our own origin, without `token`. Absolute, so a `//host` path cannot leave the origin. */
  cleanUrl(url: string): string {
    const q = url.indexOf('?')
    if (q < 0) return `${this.opts.origin}${url}`
    return `${this.opts.origin}${url.slice(0, q)}${replaceQueryParam(url.slice(q), 'token')}`
  }

  /** A path or URL on this app's origin or the IdP's; anything else goes to `/`. */
  #logoutTarget(callback: string | undefined): string {
    const home = `${this.opts.origin}/`
    if (callback === undefined) return home
    try {
      const url = new URL(callback, home)
      // User-info in a URL is refused, as the IdP's allow-list refuses it in a callback: it would
      // put a name or password into the browser's history, or dress up where the link goes.
      if (url.username !== '' || url.password !== '') return home
      if (url.origin === this.opts.origin || url.origin === this.opts.idpUrl) return url.href
    } catch { /* falls through */ }
    return home
  }
}

/** The `token` query parameter: undefined, one value, or every value when repeated. Names compare decoded. */
function tokenParam(url: string): string | readonly string[] | undefined {
  const q = url.indexOf('?')
  if (q < 0) return undefined
  const values = new URLSearchParams(url.slice(q + 1)).getAll('token')
  return values.length === 0 ? undefined : values.length === 1 ? (values[0] as string) : values
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}
