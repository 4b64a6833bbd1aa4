/**
 * A browser-like HTTP client over real sockets: follows no redirect by itself and keeps cookies per
 * host (not per port, as browsers do), honouring Path, Max-Age and Expires. The tests send through
 * fetch; the bench's load driver through an undici dispatcher (`BrowserOptions.dispatcher`).
 */
import type { Dispatcher } from 'undici'

export interface Page {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  readonly url: string
  location(): string | undefined
  json<T = Record<string, unknown>>(): T
}

export interface BrowserOptions {
  /**
   * Send through this undici dispatcher with undici's dispatch API: no fetch machinery, no retry,
   * headers and body decoded only when read, nothing kept in `setCookies`. For the bench's load
   * driver, which shares the machine's cores with the servers it measures and so should cost as
   * little as it can. Default: fetch, retrying a kept-alive connection the server closed.
   */
  readonly dispatcher?: Dispatcher
  /** The Accept header of `get` and `post` when the call gives none (default `text/html`). */
  readonly accept?: string
  readonly userAgent?: string
}

interface RequestInit { method: string; headers: Record<string, string>; body?: string; sendCookies?: boolean }

/** What a transport hands back: the page, and the Set-Cookie lines for the jar. */
interface Received { page: Page; setCookies: readonly string[] }

export class Browser {
  /** Cookie values by host, then name. */
  readonly jars = new Map<string, Map<string, string>>()
  /** Every Set-Cookie header this browser received, for assertions on attributes (fetch only). */
  readonly setCookies: string[] = []
  /** Cookie paths by host, then name; a cookie with none here has Path=/. */
  readonly #paths = new Map<string, Map<string, string>>()
  readonly #options: BrowserOptions

  constructor(options: BrowserOptions = {}) {
    this.#options = options
  }

  cookies(host: string): Map<string, string> {
    let jar = this.jars.get(host)
    if (jar === undefined) { jar = new Map(); this.jars.set(host, jar) }
    return jar
  }

  /** Forgets every cookie of `host` (e.g. a user who has no session at an app yet). */
  clear(host: string): void {
    this.jars.delete(host)
    this.#paths.delete(host)
  }

  async get(url: string, accept = this.#options.accept ?? 'text/html'): Promise<Page> {
    return this.request(url, { method: 'GET', headers: { accept } })
  }

  async post(url: string, form: Record<string, string>, accept = this.#options.accept ?? 'text/html'): Promise<Page> {
    return this.request(url, {
      method: 'POST',
      headers: { accept, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    })
  }

  /** Follows redirects (GET after each) until a non-redirect, returning every hop. */
  async navigate(url: string, max = 10): Promise<Page[]> {
    const hops: Page[] = []
    let next: string | undefined = url
    while (next !== undefined) {
      if (hops.length >= max) throw new Error(`redirect loop: ${hops.map((h) => `${h.status} ${h.url}`).join(' -> ')}`)
      const page = await this.get(next)
      hops.push(page)
      next = page.location()
    }
    return hops
  }

  /**
   * A form another site's page submits to `url` (an auto-submitting form): the browser keeps its
   * SameSite=Lax cookies home but still stores any Set-Cookie of the answer. `headers` are what
   * the browser adds, e.g. `{ origin, 'sec-fetch-site': 'cross-site' }`, or none (an old browser).
   */
  async crossSitePost(url: string, form: Record<string, string>, headers: Record<string, string> = {}, accept = 'text/html'): Promise<Page> {
    return this.request(url, {
      method: 'POST',
      headers: { accept, 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
      sendCookies: false,
    })
  }

  async request(url: string, init: RequestInit): Promise<Page> {
    const { origin, host, path } = splitUrl(url)
    const pathname = path.split('?', 1)[0] as string
    const headers: Record<string, string> = { ...init.headers }
    if (this.#options.userAgent !== undefined) headers['user-agent'] = this.#options.userAgent
    const cookie = init.sendCookies === false ? '' : this.#cookieHeader(host, pathname)
    if (cookie !== '') headers.cookie = cookie
    const dispatcher = this.#options.dispatcher
    const { page, setCookies } = dispatcher === undefined
      ? await fetchPage(url, { ...init, headers })
      : await dispatchPage(dispatcher, url, origin, path, { ...init, headers })
    if (dispatcher === undefined) this.setCookies.push(...setCookies)
    for (const line of setCookies) this.#store(host, pathname, line)
    return page
  }

  #cookieHeader(host: string, pathname: string): string {
    const jar = this.jars.get(host)
    if (jar === undefined || jar.size === 0) return ''
    const paths = this.#paths.get(host)
    let header = ''
    for (const [name, value] of jar) {
      if (pathMatches(pathname, paths?.get(name) ?? '/')) header += `${header === '' ? '' : '; '}${name}=${value}`
    }
    return header
  }

  #store(host: string, requestPath: string, line: string): void {
    const [pair = '', ...attrs] = line.split(';')
    const eq = pair.indexOf('=')
    if (eq <= 0) return
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    let path = defaultPath(requestPath)
    let expired = value === ''
    for (const attr of attrs) {
      const [k = '', v = ''] = attr.split('=', 2).map((s) => s.trim())
      const key = k.toLowerCase()
      if (key === 'path' && v.startsWith('/')) path = v
      else if (key === 'max-age' && Number(v) <= 0) expired = true
      else if (key === 'expires' && Date.parse(v) < Date.now()) expired = true
    }
    let paths = this.#paths.get(host)
    if (expired) {
      this.jars.get(host)?.delete(name)
      paths?.delete(name)
      return
    }
    this.cookies(host).set(name, value)
    if (path === '/') paths?.delete(name)
    else {
      if (paths === undefined) { paths = new Map(); this.#paths.set(host, paths) }
      paths.set(name, path)
    }
  }
}

/** A page whose headers and body are decoded when first read, its Location resolved against `url`. */
function pageOf(url: string, status: number, location: string | null, headers: () => Headers, body: () => string): Page {
  let decodedHeaders: Headers | undefined
  let text: string | undefined
  const page: Page = {
    status,
    url,
    get headers() { return (decodedHeaders ??= headers()) },
    get body() { return (text ??= body()) },
    location: () => (location === null ? undefined : new URL(location, url).href),
    json: <T>() => JSON.parse(page.body) as T,
  }
  return page
}

/**
 * Through fetch. A kept-alive connection to a server that has since restarted fails on first use;
 * browsers then retry on a fresh connection. The pool may hold several stale connections, so up to 3
 * tries, and only for a socket closed under us (a refused connection is a real failure).
 */
async function fetchPage(url: string, init: RequestInit): Promise<Received> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { method: init.method, body: init.body, headers: init.headers, redirect: 'manual' })
      const text = await res.text()
      return { page: pageOf(url, res.status, res.headers.get('location'), () => res.headers, () => text), setCookies: res.headers.getSetCookie() }
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code
      if (attempt >= 3 || (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE')) throw err
    }
  }
}

/** Through undici's dispatch API: no body stream, no Headers object unless asked for. */
function dispatchPage(dispatcher: Dispatcher, url: string, origin: string, path: string, init: RequestInit): Promise<Received> {
  return new Promise<Received>((resolve, reject) => {
    let status = 0
    let location: string | null = null
    let raw: (Buffer | string)[] = []
    const setCookies: string[] = []
    const chunks: Buffer[] = []
    // undici's Agent/Pool still take the classic handler here (onConnect/onHeaders/onData/onComplete).
    dispatcher.dispatch({ origin, path, method: init.method, headers: init.headers, body: init.body ?? null }, {
      onConnect: () => {},
      onHeaders: (statusCode: number, rawHeaders: Buffer[] | string[] | null) => {
        status = statusCode
        raw = rawHeaders ?? []
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = raw[i]?.toString().toLowerCase()
          if (name === 'set-cookie') setCookies.push((raw[i + 1] as Buffer | string).toString())
          else if (name === 'location') location = (raw[i + 1] as Buffer | string).toString()
        }
        return true
      },
      onData: (chunk: Buffer) => { chunks.push(chunk); return true },
      onComplete: () => resolve({ page: pageOf(url, status, location, () => headersOf(raw), () => Buffer.concat(chunks).toString('utf8')), setCookies }),
      onError: (err: Error) => reject(err),
    } as Dispatcher.DispatchHandler)
  })
}

function headersOf(raw: readonly (Buffer | string)[]): Headers {
  const headers = new Headers()
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(String(raw[i]), String(raw[i + 1]))
  return headers
}

/** `http://host:port/path?q` -> origin, host (no port: cookies are per host) and path with query. */
function splitUrl(url: string): { origin: string; host: string; path: string } {
  const m = /^(https?:\/\/([^/:?#[\]]+)(?::\d+)?)([^#]*)/.exec(url)
  if (m === null) {
    const u = new URL(url)
    return { origin: u.origin, host: u.hostname, path: `${u.pathname}${u.search}` }
  }
  return { origin: m[1] as string, host: (m[2] as string).toLowerCase(), path: (m[3] as string) === '' ? '/' : m[3] as string }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (cookiePath === '/' || requestPath === cookiePath) return true
  return requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/')
}

/** RFC 6265's default-path: the request path up to its last slash. */
function defaultPath(path: string): string {
  const slash = path.lastIndexOf('/')
  return slash <= 0 ? '/' : path.slice(0, slash)
}
