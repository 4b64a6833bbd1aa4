/** The remote plugin's options, checked at registration so a bad value stops `app.ready()`. */
import type { RedisClient, RedisConnection } from '../shared/redis.js'
import { OptionsError } from '../shared/errors.js'
import { parseSyncKeys, type Keyring } from '../shared/keyring.js'

export interface TesseraCookieOptions {
  /**
   * Default `tessera`, or `__Host-tessera` when `origin` is https and neither domain nor path is set;
   * with a non-default port in `origin`, `_<port>` follows (`tessera_3001`), since cookies ignore ports.
   */
  name?: string
  /** Default: true when `origin` is https. */
  secure?: boolean
  sameSite?: 'lax' | 'strict' | 'none'
  domain?: string
  path?: string
}

export interface TesseraRemoteOptions {
  /** The IdP's public base URL, e.g. `https://sso.example.com`. */
  idpUrl: string
  /** This app's public origin, e.g. `https://shop.example.com`: the token audience and cookie scope. */
  origin: string
  /** Same format as the IdP's SYNC_KEYS: `id:key,id:key` (or an array of `id:key`), newest first. */
  syncKeys: string | readonly string[]
  /**
   * A Redis URL, or `{ url, sentinels, sentinelName, clusterNodes, password }` (the plugin connects
   * and disconnects), or an ioredis `Redis`/`Cluster` instance (yours to close).
   */
  redis: string | RedisConnection | RedisClient
  /** At least 32 characters; signs this app's session cookie. */
  sessionSecret: string
  cookie?: TesseraCookieOptions
  /**
   * Paths that need no session. `/health` matches that path only; `/assets/*` matches everything
   * below `/assets/`. Everything else is protected.
   */
  publicPaths?: readonly string[]
  /**
   * Replicas that must acknowledge each redemption's new handle and each logout (Redis WAIT, 1 s)
   * before the browser is sent on, so a failover right after cannot lose them (a lost logout would
   * bring the session back). 503 if fewer acknowledge. Default 0; set it as the IdP's
   * REDIS_WAIT_REPLICAS. Ignored on a Cluster.
   */
  waitReplicas?: number
}

export interface ResolvedOptions {
  readonly idpUrl: string
  readonly origin: string
  readonly keyring: Keyring
  readonly redis: string | RedisConnection | RedisClient
  readonly sessionSecret: string
  readonly cookieName: string
  readonly stateCookieName: string
  readonly cookie: { secure: boolean; sameSite: 'lax' | 'strict' | 'none'; domain?: string; path: string; httpOnly: true }
  readonly isPublic: (path: string) => boolean
  readonly waitReplicas: number
}

export function resolveOptions(opts: Partial<TesseraRemoteOptions> | undefined): ResolvedOptions {
  const o = opts ?? {}
  const problems: string[] = []
  const origin = originOf(o.origin, 'origin', problems)
  const idpUrl = originOf(o.idpUrl, 'idpUrl', problems)
  const rawKeys = Array.isArray(o.syncKeys) ? o.syncKeys.join(',') : o.syncKeys
  const keyring = typeof rawKeys === 'string' ? parseSyncKeys(rawKeys, 'syncKeys', problems) : undefined
  if (typeof rawKeys !== 'string') problems.push('syncKeys: required, the same id:key list as the IdP\'s SYNC_KEYS')
  if (typeof o.sessionSecret !== 'string' || o.sessionSecret.length < 32) problems.push('sessionSecret: must be a string of at least 32 characters')
  if (typeof o.redis !== 'string' && (o.redis === null || typeof o.redis !== 'object')) problems.push('redis: must be a redis:// URL or an ioredis instance')
  const c = o.cookie ?? {}
  const sameSite = c.sameSite ?? 'lax'
  if (!['lax', 'strict', 'none'].includes(sameSite)) problems.push('cookie.sameSite: must be lax, strict or none')
  // The return from the IdP is a cross-site navigation: a Strict state cookie would not come back with it.
  if (sameSite === 'strict') problems.push('cookie.sameSite: strict would drop the cookie on the return from the IdP; use lax')
  const path = c.path ?? '/'
  if (!path.startsWith('/')) problems.push('cookie.path: must start with /')
  const publicPaths = o.publicPaths ?? []
  if (!Array.isArray(publicPaths) || publicPaths.some((p) => typeof p !== 'string' || !p.startsWith('/'))) {
    problems.push('publicPaths: must be a list of paths starting with /')
  }
  const waitReplicas = o.waitReplicas ?? 0
  if (!Number.isInteger(waitReplicas) || waitReplicas < 0 || waitReplicas > 16) problems.push('waitReplicas: must be an integer from 0 to 16')
  if (problems.length > 0 || origin === undefined || idpUrl === undefined || keyring === undefined) throw new OptionsError(problems)
  const secure = c.secure ?? origin.startsWith('https:')
  if (sameSite === 'none' && !secure) problems.push('cookie.sameSite: none needs secure cookies')
  if (problems.length > 0) throw new OptionsError(problems)
  const hostPrefix = secure && c.domain === undefined && path === '/' ? '__Host-' : ''
  // Cookies ignore ports: two apps on one host name would share one `tessera` cookie and clear each
  // other's. A non-default port therefore joins the default name (`tessera_3001`).
  const port = new URL(origin).port
  const cookieName = c.name ?? `${hostPrefix}tessera${port === '' ? '' : `_${port}`}`
  return {
    idpUrl, origin, keyring,
    redis: o.redis as string | RedisConnection | RedisClient,
    sessionSecret: o.sessionSecret as string,
    cookieName,
    stateCookieName: `${cookieName}_state`,
    cookie: { secure, sameSite, path, httpOnly: true, ...(c.domain === undefined ? {} : { domain: c.domain }) },
    isPublic: publicMatcher(publicPaths as string[]),
    waitReplicas,
  }
}

function originOf(value: unknown, name: string, problems: string[]): string | undefined {
  if (typeof value !== 'string') { problems.push(`${name}: required, an origin like https://app.example.com`); return undefined }
  try {
    const url = new URL(value)
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && url.search === '' && url.username === '') return url.origin
  } catch { /* reported below */ }
  problems.push(`${name}: "${value}" must be an http(s) origin, e.g. https://app.example.com`)
  return undefined
}

function publicMatcher(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set(paths.filter((p) => !p.endsWith('/*')))
  const prefixes = paths.filter((p) => p.endsWith('/*')).map((p) => p.slice(0, -1))
  return (path) => exact.has(path) || prefixes.some((p) => path.startsWith(p))
}
