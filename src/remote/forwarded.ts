/**
 * What a reverse proxy says about the request it is authorizing, and whether to believe it. The gate
 * (gate.ts) is asked by nginx, Caddy or Traefik *about* another request: its method, origin and URI
 * arrive in headers. Those headers are believed only from the configured proxy addresses, and each
 * endpoint reads exactly one set of them, so a header the client sent that the proxy passes along
 * untouched (Caddy copies every request header into its forward_auth request) cannot take the place
 * of the one the proxy wrote:
 *   - auth-request (nginx `auth_request`): `X-Original-URL` and `X-Original-Method`, which the nginx
 *     snippet always sets (proxy_set_header replaces what the client sent);
 *   - forward-auth (Caddy `forward_auth`, Traefik ForwardAuth): `X-Forwarded-Method`, `-Proto`,
 *     `-Host`, `-Uri`, which those proxies write themselves and never take from an untrusted client;
 *   - logout: `X-Forwarded-Proto` and `-Host` only (any reverse proxy sets them).
 */
import { BlockList, isIP } from 'node:net'
import { ForwardAuthError } from '../shared/errors.js'
import { listEntries } from '../shared/list-entries.js'

export type ProxyStyle = 'auth-request' | 'forward-auth' | 'logout'

/** The request the proxy is asking about: `url` is origin-form (`/path?query`), as the core takes it. */
export interface OriginalRequest {
  readonly method: string
  readonly origin: string
  readonly url: string
}

type Headers = Readonly<Record<string, string | string[] | undefined>>

/** The proxy addresses whose headers are believed: IP addresses and CIDR ranges (`10.0.0.0/8`). */
export class ProxyTrust {
  readonly #list = new BlockList()
  readonly size: number

  constructor(entries: readonly { readonly address: string; readonly prefix?: number }[]) {
    for (const e of entries) {
      const family = isIP(e.address) === 6 ? 'ipv6' : 'ipv4'
      if (e.prefix === undefined) this.#list.addAddress(e.address, family)
      else this.#list.addSubnet(e.address, e.prefix, family)
    }
    this.size = entries.length
  }

  /** Whether a connection from `address` (a socket's remoteAddress) comes from a trusted proxy. */
  trusts(address: string | undefined): boolean {
    if (address === undefined || this.size === 0) return false
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; the configured entry is a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
    const plain = mapped === null ? address : (mapped[1] as string)
    const family = isIP(plain)
    return family !== 0 && this.#list.check(plain, family === 6 ? 'ipv6' : 'ipv4')
  }
}

/**
 * Parses a list of proxy addresses (comma-separated, or an array): each an IP address or a CIDR range.
 * Pushes one problem per bad entry, naming `name[i]`; an empty list is valid and trusts no one.
 */
export function parseProxies(raw: string | readonly string[], name: string, problems: string[]): ProxyTrust | undefined {
  const before = problems.length
  const parsed = listEntries(raw).flatMap(({ entry, index: i }) => {
    const [address = '', prefixText, ...rest] = entry.split('/')
    const family = isIP(address)
    const max = family === 6 ? 128 : 32
    const prefix = prefixText === undefined ? undefined : Number(prefixText)
    if (family === 0 || rest.length > 0 || (prefix !== undefined && (!/^\d{1,3}$/.test(prefixText as string) || prefix > max))) {
      problems.push(`${name}[${i}]: "${entry}" must be an IP address or a CIDR range like 10.0.0.0/8`)
      return []
    }
    return [{ address, ...(prefix === undefined ? {} : { prefix }) }]
  })
  return problems.length > before ? undefined : new ProxyTrust(parsed)
}

const MAX_URI = 8192
// RFC 9110 token characters: a method is one token.
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/
// A host with an optional port: a DNS name, an IPv4 address or a bracketed IPv6 address; nothing a URL
// parser could read as a path, user-info or second authority.
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/
// Origin-form: a path and query of visible ASCII, no fragment. A browser's request line is never anything else.
const ORIGIN_FORM = /^\/[\x21-\x22\x24-\x7e]*$/

/**
 * The original request, from the headers of the trusted proxy at `peer`, for one of `origins`.
 * @throws ForwardAuthError when the peer is not a trusted proxy, a header is missing, repeated or
 * malformed, or the origin is not one this gate protects.
 */
export function originalRequest(style: ProxyStyle, headers: Headers, peer: string | undefined, trust: ProxyTrust, origins: ReadonlySet<string>): OriginalRequest {
  if (!trust.trusts(peer)) throw new ForwardAuthError('the request did not come from a trusted proxy (FORWARD_AUTH_PROXIES)')
  const found = style === 'auth-request' ? fromOriginalUrl(headers) : fromForwarded(headers, style === 'logout')
  if (!origins.has(found.origin)) throw new ForwardAuthError(`${found.origin} is not a host this gate protects`)
  return found
}

function fromOriginalUrl(headers: Headers): OriginalRequest {
  const raw = one(headers, 'x-original-url')
  const method = methodOf(one(headers, 'x-original-method'), 'x-original-method')
  // A request line never holds whitespace; Node joins a repeated header with ", ", so this refuses that too.
  if (/\s/.test(raw) || raw.length > MAX_URI) throw new ForwardAuthError('x-original-url is repeated or not one URL')
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ForwardAuthError('x-original-url is not a URL')
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.hash !== '') {
    throw new ForwardAuthError('x-original-url must be an http(s) URL without user-info or fragment')
  }
  return { method, origin: url.origin, url: originForm(`${url.pathname}${url.search}`) }
}

function fromForwarded(headers: Headers, originOnly: boolean): OriginalRequest {
  const proto = one(headers, 'x-forwarded-proto').toLowerCase()
  if (proto !== 'http' && proto !== 'https') throw new ForwardAuthError('x-forwarded-proto must be http or https')
  const host = one(headers, 'x-forwarded-host')
  if (!HOST.test(host)) throw new ForwardAuthError('x-forwarded-host is not a host')
  let origin: string
  try {
    origin = new URL(`${proto}://${host}`).origin
  } catch {
    throw new ForwardAuthError('x-forwarded-host is not a host')
  }
  if (originOnly) return { method: 'POST', origin, url: '/' }
  return { method: methodOf(one(headers, 'x-forwarded-method'), 'x-forwarded-method'), origin, url: originForm(one(headers, 'x-forwarded-uri')) }
}

/** Exactly one value: a missing header, or one a proxy appended to (`a, b`), is not an answer. */
function one(headers: Headers, name: string): string {
  const value = headers[name]
  if (typeof value !== 'string' || value === '') throw new ForwardAuthError(`${name} is missing or repeated`)
  if (value.includes(',') && name !== 'x-original-url' && name !== 'x-forwarded-uri') throw new ForwardAuthError(`${name} holds a list`)
  return value
}

function methodOf(value: string, name: string): string {
  if (!METHOD.test(value)) throw new ForwardAuthError(`${name} is not a method`)
  return value
}

function originForm(value: string): string {
  if (value.length > MAX_URI || !ORIGIN_FORM.test(value)) throw new ForwardAuthError('the original URI is not a path and query')
  return value
}
