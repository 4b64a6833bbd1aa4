/**
 * A browser-like HTTP client over real sockets: follows no redirect by itself and keeps cookies per
 * host (not per port, as browsers do), honouring Max-Age=0/Expires deletions and Path=/.
 */
export interface Page {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  readonly url: string
  location(): string | undefined
  json<T = Record<string, unknown>>(): T
}

export class Browser {
  readonly jars = new Map<string, Map<string, string>>()
  /** Every Set-Cookie header this browser received, for assertions on attributes. */
  readonly setCookies: string[] = []

  cookies(host: string): Map<string, string> {
    let jar = this.jars.get(host)
    if (jar === undefined) { jar = new Map(); this.jars.set(host, jar) }
    return jar
  }

  async get(url: string, accept = 'text/html'): Promise<Page> {
    return this.request(url, { method: 'GET', headers: { accept } })
  }

  async post(url: string, form: Record<string, string>, accept = 'text/html'): Promise<Page> {
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

  async request(url: string, init: { method: string; headers: Record<string, string>; body?: string; sendCookies?: boolean }): Promise<Page> {
    const host = new URL(url).hostname
    const jar = this.cookies(host)
    const headers: Record<string, string> = { ...init.headers }
    if (jar.size > 0 && init.sendCookies !== false) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetchRetryingStaleConnections(url, { method: init.method, body: init.body, headers, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) {
      this.setCookies.push(line)
      const [pair, ...attrs] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      const name = (pair ?? '').slice(0, eq).trim()
      const value = (pair ?? '').slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') < Date.now()))
      if (expired || value === '') jar.delete(name)
      else jar.set(name, value)
    }
    const body = await res.text()
    return {
      status: res.status,
      headers: res.headers,
      body,
      url,
      location: () => {
        const loc = res.headers.get('location')
        return loc === null ? undefined : new URL(loc, url).href
      },
      json: <T>() => JSON.parse(body) as T,
    }
  }
}

/**
 * A kept-alive connection to a server that has since restarted fails on first use; browsers then
 * retry on a fresh connection. The pool may hold several stale connections, so up to 3 tries, and
 * only for a socket closed under us (a refused connection is a real failure).
 */
async function fetchRetryingStaleConnections(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init)
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code
      if (attempt >= 3 || (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE')) throw err
    }
  }
}
