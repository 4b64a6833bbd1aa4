/**
 * Which callbacks the IdP may redirect to: exact origins, parsed by the WHATWG URL parser.
 *
 * A callback arrives base64url-encoded (standard base64 accepted). It is kept only when it parses
 * as an absolute http(s) URL without user-info, the parser did not have to repair its scheme or
 * host (so what the admin allowed and what the browser will visit are the same host), and its
 * origin is listed. Scheme and host must be plain ASCII; the path, query and fragment may hold any
 * Unicode text but controls and spaces: the parser percent-encodes it as UTF-8, which changes
 * nothing about where the browser goes.
 * See OWASP ASVS 5.0 V3.7 and oidc-provider's exact redirect_uri matching.
 */

export const MAX_CALLBACK_LENGTH = 4096
/** The refusal of a parameter that is not base64 of UTF-8 text (`tessera check-callback` then checks it as a URL). */
export const NOT_BASE64 = 'not base64 of UTF-8 text'

export type CallbackCheck =
  | { readonly kind: 'none' }
  | { readonly kind: 'allowed'; readonly url: URL }
  | { readonly kind: 'refused'; readonly reason: string }

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/
// Raw text the parser would silently strip or turn into a slash, or that no browser-built URL contains.
const UNSAFE_CHARS = /[\p{Cc}\p{Z}\\]/u
// Before the path: anything but printable ASCII is an IDN or look-alike the parser would rewrite.
const NON_ASCII = /[^\x21-\x7e]/
// Scheme and authority: everything before the path, query or fragment.
const HEAD = /^[^/?#]*(?:\/\/[^/?#]*)?/
const AUTHORITY = /^https?:\/\/([^/?#]*)/i
const utf8 = new TextDecoder('utf-8', { fatal: true })

export class AllowList {
  readonly #origins: ReadonlySet<string>

  constructor(origins: Iterable<string>) {
    this.#origins = new Set(origins)
  }

  get origins(): readonly string[] {
    return [...this.#origins]
  }

  /** Checks a callback parameter as it came in the query or form (unknown: it may be an array). */
  check(encoded: unknown): CallbackCheck {
    if (encoded === undefined || encoded === '') return { kind: 'none' }
    if (typeof encoded !== 'string') return refuse('repeated or not a string')
    const text = decodeBase64(encoded)
    if (text === undefined) return refuse(NOT_BASE64)
    return this.checkUrl(text)
  }

  /** Checks a decoded callback URL (also used by `tessera check-callback`). */
  checkUrl(text: string): CallbackCheck {
    if (text.length > MAX_CALLBACK_LENGTH) return refuse('too long')
    if (UNSAFE_CHARS.test(text)) return refuse('contains spaces, control characters or backslashes')
    if (NON_ASCII.test(HEAD.exec(text)?.[0] ?? '')) return refuse('non-ASCII characters in the scheme or host')
    const authority = AUTHORITY.exec(text)?.[1]
    if (authority === undefined) return refuse('not an absolute http(s) URL with //')
    if (authority.includes('@')) return refuse('has user-info')
    let url: URL
    try {
      url = new URL(text)
    } catch {
      return refuse('not a valid URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return refuse('scheme is not http or https')
    if (url.username !== '' || url.password !== '') return refuse('has user-info')
    if (normaliseAuthority(authority, url.protocol) !== url.host) return refuse('host had to be repaired by the URL parser')
    if (url.hostname.endsWith('.')) return refuse('host ends with a dot')
    if (!this.#origins.has(url.origin)) return refuse(`origin ${url.origin} is not in KNOWN_REMOTE_HOSTS`)
    return { kind: 'allowed', url }
  }
}

function refuse(reason: string): CallbackCheck {
  return { kind: 'refused', reason }
}

function decodeBase64(encoded: string): string | undefined {
  if (encoded.length > Math.ceil((MAX_CALLBACK_LENGTH * 4) / 3) + 4 || !BASE64.test(encoded)) return undefined
  const bytes = Buffer.from(encoded.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), 'base64url')
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** What the parser's `host` should be for a raw authority it had no need to repair. */
function normaliseAuthority(authority: string, protocol: string): string {
  const lower = authority.toLowerCase()
  const defaultPort = protocol === 'https:' ? ':443' : ':80'
  return lower.endsWith(defaultPort) ? lower.slice(0, -defaultPort.length) : lower
}
