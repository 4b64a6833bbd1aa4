/**
 * Hostile `callback` values for the IdP's allow-list: oauth2-proxy's open-redirect payload list
 * (test/fixtures/openredirects.txt) and a hand-written table aimed at exact-origin checks.
 * Shared by the unit test of AllowList and the HTTP test of /login and /logout.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The allow-list both tests use (the HTTP stack adds its own app origins to it). */
export const ALLOWED_ORIGINS = [
  'http://www.whitelisteddomain.tld',
  'https://www.whitelisteddomain.tld',
  // http only: its https twin must be refused.
  'http://app.test:3001',
  // An IP origin, so that IPv4 spellings of the same address can be tried.
  'http://127.0.0.2:3002',
] as const

/** A callback parameter as a browser or an attacker would send it. */
export interface CallbackCase {
  readonly label: string
  /** The parameter value: usually base64url text; a raw string when testing the encoding; an array for a repeated parameter. */
  readonly param: string | readonly string[]
}

/** The repository root: the first directory above this (compiled) file that holds package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = up
  }
}

/** The non-empty lines of test/fixtures/openredirects.txt, byte for byte as stored (UTF-8). */
export function fixturePayloads(): string[] {
  const text = readFileSync(join(repoRoot(), 'test', 'fixtures', 'openredirects.txt'), 'utf8')
  return text.split('\n').map((line) => line.replace(/\r$/, '')).filter((line) => line !== '')
}

/**
 * Go's url.QueryUnescape: `+` becomes a space and `%XX` a byte; any `%` not followed by two hex
 * digits is an error (undefined). Bytes, not text: the result need not be UTF-8.
 */
export function goQueryUnescape(s: string): Buffer | undefined {
  const src = Buffer.from(s, 'utf8')
  const out: number[] = []
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as number
    if (c === 0x25) {
      const hex = src.subarray(i + 1, i + 3).toString('latin1')
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined
      out.push(parseInt(hex, 16))
      i += 2
    } else if (c === 0x2b) {
      out.push(0x20)
    } else {
      out.push(c)
    }
  }
  return Buffer.from(out)
}

/** Every fixture payload as a callback: the raw line and, when it differs, its query-unescaped bytes (raw if that fails). */
export function fixtureCases(): CallbackCase[] {
  const cases: CallbackCase[] = []
  fixturePayloads().forEach((line, i) => {
    const raw = Buffer.from(line, 'utf8')
    cases.push({ label: `fixture #${i + 1} raw: ${JSON.stringify(line)}`, param: raw.toString('base64url') })
    const unescaped = goQueryUnescape(line) ?? raw
    cases.push({ label: `fixture #${i + 1} unescaped: ${JSON.stringify(line)}`, param: unescaped.toString('base64url') })
  })
  return cases
}

const b64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')
const W = 'www.whitelisteddomain.tld'

/**
 * Hostile callback URLs (decoded text), each one aimed at an exact-origin check. Sources: oauth2-proxy's
 * redirect validator fixes (`/\`, tabs, `//`), Authelia's and Keycloak's redirect_uri bypasses (user-info,
 * suffix hosts, javascript:/data:), Django's is_safe_url CVEs (`///`, `http:host`, control characters,
 * numeric hosts) and Spring's UriComponentsBuilder CVE-2024-22243/22259/22262 (`[@`, `\@`).
 */
export const HOSTILE_URLS: ReadonlyArray<readonly [category: string, url: string]> = [
  // Other schemes, scheme case tricks and scheme-relative forms.
  ['scheme', 'javascript:alert(1)'],
  ['scheme', 'JaVaScRiPt:alert(1)'],
  ['scheme', `javascript://${W}/%0aalert(1)`],
  ['scheme', `javascript:alert(1)//http://${W}/`],
  ['scheme', `javascript://http://${W}/`],
  ['scheme', 'data:text/html,<script>alert(1)</script>'],
  ['scheme', 'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='],
  ['scheme', `data:,http://${W}/`],
  ['scheme', `blob:http://${W}/550e8400-e29b-41d4-a716-446655440000`],
  ['scheme', `blob:https://${W}/550e8400-e29b-41d4-a716-446655440000`],
  ['scheme', `BLOB:HTTP://${W}/x`],
  ['scheme', `ftp://${W}/`],
  ['scheme', `ws://${W}/`],
  ['scheme', `wss://${W}/`],
  ['scheme', `file://${W}/etc/passwd`],
  ['scheme', 'file:///etc/passwd'],
  ['scheme', `view-source:http://${W}/`],
  ['scheme', `httpx://${W}/`],
  ['scheme', `https+http://${W}/`],
  ['scheme', 'HTTP://evil.com/'],
  ['scheme', `hTtPs://${W}.evil.com/`],
  ['scheme', `//${W}/`],
  ['scheme', '//evil.com'],
  ['scheme', '///evil.com'],
  ['scheme', `/${W}`],
  // Backslashes: browsers read them as slashes in http(s) URLs, other parsers do not.
  ['backslash', '/\\evil.com'],
  ['backslash', '/\\/evil.com'],
  ['backslash', '\\\\evil.com'],
  ['backslash', '\\/evil.com'],
  ['backslash', 'http:/\\evil.com'],
  ['backslash', 'http:\\\\evil.com'],
  ['backslash', `http:\\\\${W}\\`],
  ['backslash', `http://${W}\\@evil.com`],
  ['backslash', `http://evil.com\\@${W}/`],
  ['backslash', `https://${W}\\.evil.com/`],
  ['backslash', `http://${W}:80\\@evil.com/`],
  ['backslash', `http://evil.com/\\${W}`],
  // User-info.
  ['user-info', `http://${W}@evil.com`],
  ['user-info', `https://${W}@evil.com/`],
  ['user-info', `http://evil.com@${W}`],
  ['user-info', `http://user:pass@${W}/`],
  ['user-info', `https://:@${W}/`],
  ['user-info', `http://@${W}/`],
  ['user-info', `http://${W}:80@evil.com/`],
  ['user-info', `http://${W}:443@evil.com/`],
  ['user-info', `http://${W}:@evil.com/`],
  ['user-info', `http://${W}&@evil.com#@${W}/`],
  ['user-info', `http://${W}%40evil.com/`],
  ['user-info', `http://evil.com%23@${W}/`],
  ['user-info', `http://evil.com%40${W}/`],
  ['user-info', `http://${W}[@evil.com/`],
  ['user-info', `http://evil.com[@${W}/`],
  ['user-info', `http://${W}%5B@evil.com/`],
  ['user-info', `http://${W};@evil.com/`],
  ['user-info', `http://${W}..;@evil.com/`],
  ['user-info', 'http://app.test:3001@evil.com/'],
  ['user-info', `http://evil.com:80@app.test:3001/`],
  // Hosts that contain, start or end with the allowed one.
  ['suffix/prefix', `http://${W}.evil.com/`],
  ['suffix/prefix', `https://${W}.evil.com/`],
  ['suffix/prefix', `http://evil${W}/`],
  ['suffix/prefix', `http://evil.${W}/`],
  ['suffix/prefix', 'http://whitelisteddomain.tld/'],
  ['suffix/prefix', 'http://wwwwhitelisteddomain.tld/'],
  ['suffix/prefix', 'http://wwwXwhitelisteddomain.tld/'],
  ['suffix/prefix', 'http://www.whitelisteddomainXtld/'],
  ['suffix/prefix', 'http://www-whitelisteddomain.tld/'],
  ['suffix/prefix', `http://${W}-evil.com/`],
  ['suffix/prefix', `http://${W}evil.com/`],
  ['suffix/prefix', `http://${W}_evil.com/`],
  ['suffix/prefix', `http://${W};evil.com/`],
  ['suffix/prefix', 'http://www.whitelisteddomain.td/'],
  ['suffix/prefix', 'http://app.test.evil.com:3001/'],
  ['suffix/prefix', 'http://evil.com/?next=http://www.whitelisteddomain.tld/'],
  ['suffix/prefix', `https://evil.com/https://${W}/`],
  ['suffix/prefix', `https://evil.com#https://${W}/`],
  ['suffix/prefix', `http://[${W}]/`],
  // Ports.
  ['port', `http://${W}:8080/`],
  ['port', `https://${W}:8443/`],
  ['port', `http://${W}:443/`],
  ['port', `https://${W}:80/`],
  ['port', `http://${W}:0/`],
  ['port', `http://${W}:65536/`],
  ['port', `http://${W}:+80/`],
  ['port', `http://${W}:80:80/`],
  ['port', 'http://app.test:3002/'],
  ['port', 'http://app.test/'],
  ['port', 'http://app.test:80/'],
  ['port', 'http://app.test:03001/'],
  ['port', 'http://app.test:3001.evil.com/'],
  ['port', 'http://app.test:30010/'],
  // The https twin of an http-only entry.
  ['https twin', 'https://app.test:3001/'],
  ['https twin', 'https://app.test:3001/x?y=1'],
  ['https twin', 'HTTPS://APP.TEST:3001/'],
  ['https twin', 'https://127.0.0.2:3002/'],
  // Unicode look-alikes, full-width forms and punycode.
  ['idn', `http://ｗｗｗ.whitelisteddomain.tld/`],
  ['idn', `http://ⓦⓦⓦ.whitelisteddomain.tld/`],
  ['idn', 'http://www.whitelisteddomain.tⅼd/'],
  ['idn', 'http://www.white\u200blisteddomain.tld/'],
  ['idn', `http://${W}\u3002evil.com/`],
  ['idn', `http://${W}\u00adevil.com/`],
  ['idn', `http://${W}\uff0fevil.com/`],
  ['idn', `http://${W}\u2215evil.com/`],
  ['idn', `http://${W}\uff20evil.com/`],
  ['idn', 'http://www.whitelisteddomаin.tld/'],
  ['idn', 'http://www.xn--whitelisteddomin-6dn.tld/'],
  ['idn', 'http://www.whitelisteddomaın.tld/'],
  ['idn', 'http://www.xn--whitelisteddoman-oqc.tld/'],
  ['idn', 'http://xn--ww-e3s.whitelisteddomain.tld/'],
  ['idn', 'http://xn--www.whitelisteddomain.tld/'],
  ['idn', `http://${W}\u3002/`],
  // Non-ASCII in the host or port, with an ASCII-clean path after it (only the path may hold Unicode).
  ['idn', 'http://café.whitelisteddomain.tld/café'],
  ['idn', 'http://xn--caf-dma.whitelisteddomain.tld/'],
  ['idn', `http://${W}:８０/é`],
  ['idn', `http://${W}\u2024evil.com/é`],
  ['idn', `http://${W}\u0307/`],
  ['idn', `http://é@${W}/`],
  ['idn', `ｈttp://${W}/é`],
  ['idn', `http:／／${W}/é`],
  // Trailing dots.
  ['trailing dot', `http://${W}./`],
  ['trailing dot', `https://${W}./x`],
  ['trailing dot', `https://${W}.:443/`],
  ['trailing dot', `http://${W}../`],
  ['trailing dot', 'http://app.test.:3001/'],
  ['trailing dot', 'http://127.0.0.2.:3002/'],
  // Percent-encoded host characters.
  ['percent host', 'http://www.whitelisteddomain%2etld/'],
  ['percent host', `http://%77ww.whitelisteddomain.tld/`],
  ['percent host', 'http://%57%57%57.whitelisteddomain.tld/'],
  ['percent host', `http://${W}%2eevil.com/`],
  ['percent host', `http://${W}%2fevil.com/`],
  ['percent host', `http://${W}%252eevil.com/`],
  ['percent host', `http://${W}%3a80/`],
  ['percent host', `http://${W}%00.evil.com/`],
  ['percent host', `http://${W}%0d%0a.evil.com/`],
  ['percent host', 'http://app.test%3a3001/'],
  ['percent host', 'http://%31%32%37.0.0.2:3002/'],
  // CR, LF, NUL, tab and other whitespace inside the URL (parsers strip or reject them).
  ['control', `http://${W}\r\nLocation: http://evil.com/`],
  ['control', `http://${W}/\r\nSet-Cookie: tessera_idp=x`],
  ['control', `http://${W}\t.evil.com/`],
  ['control', `http://${W}\n.evil.com/`],
  ['control', `http://${W}\x00.evil.com/`],
  ['control', 'http://www.whitelisteddomain.t\tld/'],
  ['control', 'http://www.white\nlisteddomain.tld/'],
  ['control', `htt\tp://${W}/`],
  ['control', `\x00http://${W}/`],
  ['control', `http://${W}/\x00`],
  ['control', `\x08//evil.com`],
  ['control', ` http://${W}/`],
  ['control', `http://${W}/ `],
  ['control', `http ://${W}/`],
  ['control', 'java\nscript:alert(1)'],
  ['control', `http://${W}\u2028evil.com/`],
  ['control', `http://${W}\x7f/`],
  // Missing or extra slashes.
  ['slashes', 'http:evil.com'],
  ['slashes', `http:${W}`],
  ['slashes', `https:${W}/`],
  ['slashes', 'http:/evil.com'],
  ['slashes', `http:/${W}/`],
  ['slashes', 'http:///evil.com'],
  ['slashes', `http:///${W}/`],
  ['slashes', `http:////${W}/`],
  ['slashes', 'http://'],
  ['slashes', 'http:'],
  ['slashes', 'http://:80/'],
  ['slashes', 'http://./'],
  // IPv4 and IPv6 spellings (127.0.0.2:3002 is allowed; only its canonical spelling may pass).
  ['ip', 'http://2130706434:3002/'],
  ['ip', 'http://0x7f000002:3002/'],
  ['ip', 'http://0177.0.0.2:3002/'],
  ['ip', 'http://127.2:3002/'],
  ['ip', 'http://127.0.2:3002/'],
  ['ip', 'http://0x7f.0.0.2:3002/'],
  ['ip', 'http://127.000.000.002:3002/'],
  ['ip', 'http://[::ffff:127.0.0.2]:3002/'],
  ['ip', 'http://[::ffff:7f00:2]:3002/'],
  ['ip', 'http://127.0.0.1:3002/'],
  ['ip', 'http://2130706433/'],
  ['ip', 'http://0/'],
  ['ip', 'http://[::1]/'],
  ['ip', 'http:999999999'],
  ['ip', 'http://169.254.169.254/latest/meta-data/'],
  // Too long: over MAX_CALLBACK_LENGTH (4096), even with an allowed origin.
  ['too long', `http://${W}/${'a'.repeat(4100)}`],
  ['too long', `http://${'a.'.repeat(2100)}evil.com/`],
  ['too long', `http://${W}/?q=${'%41'.repeat(1500)}`],
]

/** The hand-written hostile cases as callback parameters, including those that are not base64url text of a URL. */
export function hostileCases(): CallbackCase[] {
  const cases: CallbackCase[] = HOSTILE_URLS.map(([category, url]) => ({ label: `${category}: ${JSON.stringify(url)}`, param: b64url(url) }))
  const bytes = (label: string, ...parts: (string | number[])[]): CallbackCase => ({
    label: `non-UTF-8: ${label}`,
    param: Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p)))).toString('base64url'),
  })
  cases.push(
    // Base64 of bytes that are not UTF-8: a decoder that replaced them (U+FFFD) or read Latin-1 would see another URL.
    bytes('0xff 0xfe after an allowed origin', `http://${W}/`, [0xff, 0xfe]),
    bytes('overlong "/" (C0 AF) before evil.com', `http://${W}`, [0xc0, 0xaf], 'evil.com/'),
    bytes('overlong "." (C0 AE) before evil.com', `http://${W}`, [0xc0, 0xae], 'evil.com/'),
    bytes('CESU-8 surrogate (ED A0 80) in the host', `http://${W}`, [0xed, 0xa0, 0x80], '/'),
    bytes('Latin-1 0xE9 in the host', 'http://www.whitelisteddom', [0xe9], 'in.tld/'),
    bytes('truncated 3-byte sequence', `http://${W}/`, [0xe2, 0x82]),
    bytes('lone continuation byte 0x80 before the host', 'http://', [0x80], `${W}/`),
  )
  cases.push(
    // Not base64 at all.
    { label: 'not base64: the URL itself', param: `http://${W}/` },
    { label: 'not base64: punctuation', param: '!!!!' },
    { label: 'not base64: percent signs', param: '%%%%' },
    { label: 'not base64: a space inside', param: `${b64url(`http://${W}/`).slice(0, 8)} ${b64url(`http://${W}/`).slice(8)}` },
    { label: 'not base64: three padding characters', param: `${Buffer.from('https://evil.com').toString('base64')}=` },
    { label: 'not base64: padding first', param: `=${b64url(`http://${W}/`)}` },
    { label: 'not base64: a dot inside', param: `${b64url('http://evil.com/')}.${b64url(`http://${W}/`)}` },
    { label: 'not base64: a single character', param: 'a' },
    { label: 'not base64: over the encoded length limit', param: 'A'.repeat(6000) },
    // Standard base64 (+, / and = padding) of hostile URLs: still decoded, still refused.
    { label: 'standard base64 of https://evil.com/~?????', param: Buffer.from('https://evil.com/~?????').toString('base64') },
    { label: 'standard base64 of user-info URL', param: Buffer.from(`http://${W}@evil.com/??~???a`).toString('base64') },
    { label: 'standard base64 of suffix host', param: Buffer.from(`https://${W}.evil.com/?~????`).toString('base64') },
    // A repeated parameter.
    { label: 'repeated parameter: hostile then allowed', param: [b64url('https://evil.com/'), b64url(`https://${W}/`)] },
    { label: 'repeated parameter: allowed twice', param: [b64url(`https://${W}/`), b64url(`https://${W}/`)] },
  )
  return cases
}

/**
 * Callbacks to an allowed origin whose path, query or fragment hold non-ASCII text, with the URL
 * the IdP must send the browser to: the WHATWG parser's UTF-8 percent-encoding, nothing else changed.
 */
export const ALLOWED_NON_ASCII: ReadonlyArray<readonly [url: string, href: string]> = [
  [`http://${W}/café`, `http://${W}/caf%C3%A9`],
  [`https://${W}/straße/ü?q=grüße&x=日本#ärger`, `https://${W}/stra%C3%9Fe/%C3%BC?q=gr%C3%BC%C3%9Fe&x=%E6%97%A5%E6%9C%AC#%C3%A4rger`],
  [`http://${W}/?name=Zoë&emoji=🙂`, `http://${W}/?name=Zo%C3%AB&emoji=%F0%9F%99%82`],
  [`http://${W}/🙂/`, `http://${W}/%F0%9F%99%82/`],
  // A full-width solidus or an ideographic full stop in the *path* is just text there: still this origin.
  [`http://${W}/a／b。c`, `http://${W}/a%EF%BC%8Fb%E3%80%82c`],
]

/** Standard-base64 encodings that contain `+`, `/` and `=`: an allowed URL that must be accepted. */
export const ALLOWED_WITH_STANDARD_BASE64 = `https://${W}/?~????`
