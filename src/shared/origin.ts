/**
 * The one origin parser both sides use (the IdP's KNOWN_REMOTE_HOSTS and PUBLIC_URL, the plugin's
 * origin and idpUrl, the CLI): exact origins on the WHATWG URL parser, nothing it had to repair.
 */

/** An exact origin, normalised by the URL parser, or a problem naming `name`. */
export function parseOrigin(entry: string, name: string, production: boolean, problems: string[]): string | undefined {
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    problems.push(`${name}: "${withoutUserInfo(entry)}" is not a URL; expected an origin like https://app.example.com`)
    return undefined
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' ||
      url.pathname !== '/' || url.search !== '' || url.hash !== '' || /^https?:\/\/[^/]*\/./i.test(entry)) {
    problems.push(`${name}: "${withoutUserInfo(entry)}" must be an origin: http(s)://host[:port], no path, query or user-info`)
    return undefined
  }
  if (production && url.protocol === 'http:' && !isLoopback(url.hostname)) {
    problems.push(`${name}: "${url.origin}" uses http: in production; use https: (only loopback and *.localhost may be http)`)
    return undefined
  }
  return url.origin
}

/** `entry` as written, but a user name or password in it shown as `***`: a problem line is never a secret's way out. */
function withoutUserInfo(entry: string): string {
  return entry.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1***@')
}

/** localhost, *.localhost, 127.0.0.0/8 and [::1]: the only hosts http: is allowed for in production. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}
