/**
 * The `Set-Cookie` lines of the core's cookie changes, with an app's cookie attributes: one format
 * for the Fastify plugin, the Express middleware and the forward-auth gate. The attributes are
 * written once per app by `cookie`'s own serializer, whose checks of a name, domain and path
 * `cookieOptionProblems` runs at start-up (a bad one is not a 500 later); a line is then one string join. A hand-over sets
 * three cookies, and `@fastify/cookie`'s per-reply map and serializer were a few per cent of the
 * app's side of it (bench/README.md, issue 17).
 */
import { stringifySetCookie } from 'cookie'

/** A cookie to set (`value`) or clear (`value` null), with the app's cookie attributes. */
export interface CookieChange {
  readonly name: string
  readonly value: string | null
  /** Seconds; none: a session cookie. */
  readonly maxAge?: number
}

export interface CookieAttributes {
  readonly secure: boolean
  readonly sameSite: 'lax' | 'strict' | 'none'
  readonly domain?: string
  readonly path: string
  readonly httpOnly: true
}

export type SetCookieLine = (change: CookieChange) => string

// What Tessera's own values are made of (base64url, and the dots of a handle): nothing to encode.
const PLAIN_VALUE = /^[\w.-]*$/

/**
 * What `cookie` would refuse in an app's cookie options (its own check of a name, domain and path),
 * one problem per option, so `resolveOptions` reports it with every other problem at start-up.
 */
export function cookieOptionProblems(c: { readonly name?: unknown; readonly domain?: unknown; readonly path?: unknown }): string[] {
  const problems: string[] = []
  for (const option of ['name', 'domain', 'path'] as const) {
    const value = c[option]
    if (value === undefined) continue
    if (typeof value !== 'string') {
      problems.push(`cookie.${option}: must be a string`)
      continue
    }
    try {
      stringifySetCookie(option === 'name' ? { name: value, value: '' } : { name: 'x', value: '', [option]: value })
    } catch (err) {
      problems.push(`cookie.${option}: ${(err as Error).message}`)
    }
  }
  return problems
}

/**
 * The line for each change to a cookie named in `names` (the app's cookies), with `attributes`.
 * @throws TypeError naming the attribute that `cookie` refuses (name, domain or path)
 */
export function setCookieLines(attributes: CookieAttributes, names: readonly string[]): SetCookieLine {
  for (const name of names) stringifySetCookie({ name, value: '' })
  // '; Domain=…; Path=/; HttpOnly; Secure; SameSite=Lax', in `cookie`'s order; Max-Age goes first.
  const suffix = stringifySetCookie({ name: 'x', value: '', ...attributes }).slice('x='.length)
  const cleared = `=; Max-Age=0${suffix}; Expires=${new Date(0).toUTCString()}`
  const known = new Set(names)
  return (c) => {
    if (!known.has(c.name)) throw new TypeError(`cookie ${c.name} is not one of this app's`)
    if (c.value === null) return `${c.name}${cleared}`
    if (!PLAIN_VALUE.test(c.value)) throw new TypeError(`cookie ${c.name}: the value is not base64url`)
    return c.maxAge === undefined ? `${c.name}=${c.value}${suffix}` : `${c.name}=${c.value}; Max-Age=${Math.floor(c.maxAge)}${suffix}`
  }
}
