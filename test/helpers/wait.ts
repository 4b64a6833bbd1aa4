/**
 * Waiting for servers that connect to Redis by themselves (the IdP from its configuration, the plugin
 * from its `redis` option): poll until a request that needs Redis is served.
 */
import { encodeHandle } from '../../src/shared/handle-cookie.js'
import { randomId } from '../../src/shared/crypto.js'
import { appCookies } from './app-cookies.js'

/** Polls `url` every 100 ms until it answers `status` (a refused connection: not yet), for at most 20 s. */
export async function untilStatus(url: string, headers: Record<string, string>, status: number): Promise<void> {
  let last = 0
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(url, { headers: { accept: 'application/json', ...headers } })
      await res.arrayBuffer()
      last = res.status
      if (last === status) return
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url}: not ${status} after 20 s (last ${last})`)
}

/**
 * Until the app at `origin` answers 401 to a well-formed, correctly signed cookie for a session that
 * does not exist: to say so, it must have asked Redis.
 */
export async function untilAppReadsRedis(origin: string, sessionSecret: string): Promise<void> {
  const cookie = encodeHandle({ sid: randomId(16), secret: randomId(32) }, sessionSecret, origin)
  await untilStatus(`${origin}/api/me`, { cookie: `${appCookies(origin).session}=${cookie}` }, 401)
}
