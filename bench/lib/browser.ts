/**
 * The load driver's browser: undici over kept-alive connections, no automatic redirects,
 * and a cookie jar per host (as browsers key cookies: host, not port) that honours Path, Max-Age=0
 * and past Expires.
 */
import type { Dispatcher } from 'undici'

export interface Answer {
  readonly status: number
  /** The Location header resolved against the request URL, if any. */
  readonly location: string | undefined
  /** The body, when asked for; otherwise it is drained. */
  readonly body: string
}

interface Cookie { value: string; path: string }

export class Browser {
  readonly #jars = new Map<string, Map<string, Cookie>>()

  constructor(private readonly dispatcher: Dispatcher) {}

  /** Forgets every cookie of `host` (e.g. a user who has no session at an app yet). */
  clear(host: string): void {
    this.#jars.delete(host)
  }

  cookie(host: string, name: string): string | undefined {
    return this.#jars.get(host)?.get(name)?.value
  }

  get(url: string, wantBody = false): Promise<Answer> {
    return this.request('GET', url, undefined, wantBody)
  }

  post(url: string, form: Record<string, string>, wantBody = true): Promise<Answer> {
    return this.request('POST', url, new URLSearchParams(form).toString(), wantBody)
  }

  /**
   * One request through undici's dispatch API (no body stream, no fetch machinery: the driver shares
   * the machine's cores with the servers, so it should cost as little as it can).
   */
  request(method: 'GET' | 'POST', url: string, body: string | undefined, wantBody: boolean): Promise<Answer> {
    const { origin, host, path } = splitUrl(url)
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml', 'user-agent': 'tessera-bench' }
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const jar = this.#jars.get(host)
    if (jar !== undefined && jar.size > 0) {
      const pathname = path.split('?', 1)[0] as string
      let cookie = ''
      for (const [name, c] of jar) if (pathMatches(pathname, c.path)) cookie += `${cookie === '' ? '' : '; '}${name}=${c.value}`
      if (cookie !== '') headers.cookie = cookie
    }
    return new Promise<Answer>((resolve, reject) => {
      let status = 0
      let location: string | undefined
      const chunks: Buffer[] = []
      // undici's Agent/Pool still take the classic handler here (onConnect/onHeaders/onData/onComplete).
      this.dispatcher.dispatch({ origin, path, method, headers, body: body ?? null }, {
        onConnect: () => {},
        onHeaders: (statusCode: number, raw: Buffer[] | string[] | null) => {
          status = statusCode
          const cookies: string[] = []
          for (let i = 0; raw !== null && i + 1 < raw.length; i += 2) {
            const name = raw[i]?.toString().toLowerCase()
            if (name === 'set-cookie') cookies.push((raw[i + 1] as Buffer | string).toString())
            else if (name === 'location') location = resolveUrl((raw[i + 1] as Buffer | string).toString(), origin, url)
          }
          if (cookies.length > 0) this.#store(host, path, cookies)
          return true
        },
        onData: (chunk: Buffer) => { if (wantBody) chunks.push(chunk); return true },
        onComplete: () => resolve({ status, location, body: wantBody ? Buffer.concat(chunks).toString('utf8') : '' }),
        onError: (err: Error) => reject(err),
      } as Dispatcher.DispatchHandler)
    })
  }

  #store(host: string, requestPath: string, lines: string[]): void {
    let jar = this.#jars.get(host)
    if (jar === undefined) { jar = new Map(); this.#jars.set(host, jar) }
    for (const line of lines) {
      const [pair = '', ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = defaultPath(requestPath.split('?', 1)[0] as string)
      let expired = value === ''
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=', 2).map((s) => s.trim())
        const key = k.toLowerCase()
        if (key === 'path' && v.startsWith('/')) path = v
        else if (key === 'max-age' && Number(v) <= 0) expired = true
        else if (key === 'expires' && Date.parse(v) < Date.now()) expired = true
      }
      if (expired) jar.delete(name)
      else jar.set(name, { value, path })
    }
  }
}

/** `http://host:port/path?q` -> origin, host (no port: cookies are per host) and path with query. */
function splitUrl(url: string): { origin: string; host: string; path: string } {
  const m = /^(https?:\/\/([^/:?#]+)(?::\d+)?)([^#]*)/.exec(url)
  if (m === null) throw new Error(`not an absolute http URL: ${url}`)
  return { origin: m[1] as string, host: m[2] as string, path: (m[3] as string) === '' ? '/' : m[3] as string }
}

/** A Location header made absolute (the servers here send absolute URLs or absolute paths). */
function resolveUrl(location: string, origin: string, base: string): string {
  if (/^https?:\/\//.test(location)) return location
  if (location.startsWith('/') && !location.startsWith('//')) return origin + location
  return new URL(location, base).href
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (cookiePath === '/' || requestPath === cookiePath) return true
  return requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/')
}

function defaultPath(path: string): string {
  const slash = path.lastIndexOf('/')
  return slash <= 0 ? '/' : path.slice(0, slash)
}
