/** The remote plugin's options, checked at registration so a bad value stops `app.ready()`. */
import { NOT_A_REDIS_URL, redisUrlProblem, type RedisClient, type RedisConnection } from '../shared/redis.js'
import { OptionsError } from '../shared/errors.js'
import { parseSyncKeys } from '../shared/keyring.js'
import { parseOrigin } from '../shared/origin.js'
import { appKeyringFrom, parseAppKeys, type AppKeyring } from '../shared/app-keys.js'
import { cookieOptionProblems, setCookieLines, type CookieAttributes, type SetCookieLine } from './set-cookie.js'

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
  /**
   * This app's keys, as `npx tessera app-key <origin>` prints them (or an array of its entries): they
   * open tokens for this origin only and verify the identities the IdP signs.
   */
  appKeys?: string | readonly string[]
  /**
   * Deprecated: the IdP's own SYNC_KEYS, from which the plugin derives this app's keys. It works, but
   * an app that holds them could mint tokens for every other app: switch to `appKeys`.
   */
  syncKeys?: string | readonly string[]
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
  /**
   * `required`: a session whose IdP-signed identity holds no second factor (`otp` or `hwk`) is
   * refused: a navigation is sent to the IdP to step up (`mfa=1` on its login URL), any other request
   * gets 401 with that login URL, and a hand-over that still brings no second factor gets 403
   * `TESSERA_ERR_SECOND_FACTOR_REQUIRED` (no loop). Default `optional`: a password is enough.
   */
  secondFactor?: 'optional' | 'required'
}

export interface ResolvedOptions {
  readonly idpUrl: string
  readonly origin: string
  readonly keys: AppKeyring
  /** The app was given the IdP's SYNC_KEYS instead of its own app keys (warned at start-up). */
  readonly holdsSyncKeys: boolean
  readonly redis: string | RedisConnection | RedisClient
  readonly sessionSecret: string
  readonly cookieName: string
  readonly stateCookieName: string
  readonly cookie: CookieAttributes
  /** The `Set-Cookie` line of a change to one of this app's two cookies, with `cookie`'s attributes. */
  readonly setCookie: SetCookieLine
  readonly isPublic: (path: string) => boolean
  readonly waitReplicas: number
  /** Sessions must carry a second factor (`secondFactor: 'required'`). */
  readonly secondFactorRequired: boolean
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['idpUrl', 'origin', 'appKeys', 'syncKeys', 'redis', 'sessionSecret', 'cookie', 'publicPaths', 'waitReplicas', 'secondFactor'])
// Fastify hands the plugin its own register options too (`app.register(plugin, { prefix, … })`).
const FASTIFY_REGISTER_OPTIONS: ReadonlySet<string> = new Set(['prefix', 'logLevel', 'logSerializers'])
const COOKIE_OPTION_NAMES: ReadonlySet<string> = new Set(['name', 'secure', 'sameSite', 'domain', 'path'])

/**
 * The options checked, every problem at once. `fastifyRegister`: the Fastify plugin is handed
 * Fastify's own register options beside its own, which pass; elsewhere (Express, the gate) such a
 * name would do nothing, so it is refused like any unknown name.
 */
export function resolveOptions(opts: Partial<TesseraRemoteOptions> | undefined, { fastifyRegister = false } = {}): ResolvedOptions {
  const o = opts ?? {}
  const problems: string[] = []
  // A misspelt option (publicPath) would be ignored silently and leave its setting at the default.
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.has(key) && !(fastifyRegister && FASTIFY_REGISTER_OPTIONS.has(key))) problems.push(`${key}: not an option (the options are ${[...OPTION_NAMES].join(', ')})`)
  }
  const origin = originOf(o.origin, 'origin', problems)
  const idpUrl = originOf(o.idpUrl, 'idpUrl', problems)
  const keys = keysOf(o, origin, problems)
  if (typeof o.sessionSecret !== 'string' || o.sessionSecret.length < 32) problems.push('sessionSecret: must be a string of at least 32 characters')
  checkRedis(o.redis, problems)
  const cookieIsObject = o.cookie === undefined || isPlainObject(o.cookie)
  if (!cookieIsObject) problems.push('cookie: must be an object like { name, secure, sameSite, domain, path }')
  const c: TesseraCookieOptions = cookieIsObject ? o.cookie ?? {} : {}
  if (c.secure !== undefined && typeof c.secure !== 'boolean') problems.push('cookie.secure: must be true or false')
  for (const key of Object.keys(c)) {
    if (!COOKIE_OPTION_NAMES.has(key)) problems.push(`cookie.${key}: not a cookie option (they are ${[...COOKIE_OPTION_NAMES].join(', ')}; HttpOnly is always set)`)
  }
  const sameSite = c.sameSite ?? 'lax'
  if (!['lax', 'strict', 'none'].includes(sameSite)) problems.push('cookie.sameSite: must be lax, strict or none')
  // The return from the IdP is a cross-site navigation: a Strict state cookie would not come back with it.
  if (sameSite === 'strict') problems.push('cookie.sameSite: strict would drop the cookie on the return from the IdP; use lax')
  const path = c.path ?? '/'
  if (typeof path === 'string' && !path.startsWith('/')) problems.push('cookie.path: must start with /')
  problems.push(...cookieOptionProblems(c))
  const publicPaths = o.publicPaths ?? []
  if (!Array.isArray(publicPaths)) problems.push('publicPaths: must be a list of paths starting with /')
  else publicPaths.forEach((p: unknown, i) => { if (!isPublicPath(p)) problems.push(`publicPaths[${i}]: must be an exact path (/about) or a prefix ending in /* (/assets/*), with no query, fragment or other *`) })
  const waitReplicas = o.waitReplicas ?? 0
  if (!Number.isInteger(waitReplicas) || waitReplicas < 0 || waitReplicas > 16) problems.push('waitReplicas: must be an integer from 0 to 16')
  const secondFactor = o.secondFactor ?? 'optional'
  if (secondFactor !== 'optional' && secondFactor !== 'required') problems.push('secondFactor: must be optional or required')
  // Secure unless set otherwise or the origin is http: (unknown while the origin is bad).
  const secure = typeof c.secure === 'boolean' ? c.secure : origin?.startsWith('https:')
  if (sameSite === 'none' && secure === false) problems.push('cookie.sameSite: none needs secure cookies')
  problems.push(...cookiePrefixProblems(c.name, secure, c.domain, path))
  if (problems.length > 0 || origin === undefined || idpUrl === undefined || keys === undefined || secure === undefined) throw new OptionsError(problems)
  const hostPrefix = secure && c.domain === undefined && path === '/' ? '__Host-' : ''
  // Cookies ignore ports: two apps on one host name would share one `tessera` cookie and clear each
  // other's. A non-default port therefore joins the default name (`tessera_3001`).
  const port = new URL(origin).port
  const cookieName = c.name ?? `${hostPrefix}tessera${port === '' ? '' : `_${port}`}`
  const cookie: CookieAttributes = { secure, sameSite, path, httpOnly: true, ...(c.domain === undefined ? {} : { domain: c.domain }) }
  const setCookie = setCookieLines(cookie, [cookieName, `${cookieName}_state`])
  return {
    idpUrl, origin, keys, holdsSyncKeys: o.appKeys === undefined,
    redis: o.redis as string | RedisConnection | RedisClient,
    sessionSecret: o.sessionSecret as string,
    cookieName,
    stateCookieName: `${cookieName}_state`,
    cookie,
    setCookie,
    isPublic: publicMatcher(publicPaths as string[]),
    waitReplicas,
    secondFactorRequired: secondFactor === 'required',
  }
}

/**
 * A browser keeps a `__Secure-` cookie only when it is Secure, and a `__Host-` cookie only when it is
 * Secure, has no Domain and has Path=/ (RFC 6265bis 4.1.3; prefixes compared without case). Any other
 * such name would be dropped by the browser, and every sign-in would end in a 403.
 */
function cookiePrefixProblems(name: unknown, secure: boolean | undefined, domain: unknown, path: unknown): string[] {
  if (typeof name !== 'string') return []
  const lower = name.toLowerCase()
  if (lower.startsWith('__host-') && (secure === false || domain !== undefined || path !== '/')) {
    return ['cookie.name: a __Host- cookie needs secure cookies (an https origin), no domain and path /; browsers drop it otherwise']
  }
  if (lower.startsWith('__secure-') && secure === false) return ['cookie.name: a __Secure- cookie needs secure cookies (an https origin); browsers drop it otherwise']
  return []
}

/** This app's keys from `appKeys`, or derived from the IdP's `syncKeys` (the old way; checked, but none without an origin); exactly one of them. */
function keysOf(o: Partial<TesseraRemoteOptions>, origin: string | undefined, problems: string[]): AppKeyring | undefined {
  const joined = (v: string | readonly string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(',') : (v as string | undefined))
  const appKeys = joined(o.appKeys)
  const syncKeys = joined(o.syncKeys)
  if (appKeys !== undefined && syncKeys !== undefined) { problems.push('appKeys and syncKeys: give appKeys only (syncKeys is the IdP\'s own keyring)'); return undefined }
  if (typeof appKeys === 'string') return parseAppKeys(appKeys, 'appKeys', problems)
  if (typeof syncKeys === 'string') {
    const keyring = parseSyncKeys(syncKeys, 'syncKeys', problems)
    return keyring === undefined || origin === undefined ? undefined : appKeyringFrom(keyring, origin)
  }
  problems.push('appKeys: required, as printed by npx tessera app-key <origin> on the IdP')
  return undefined
}

/**
 * An exact http(s) origin, as the IdP's KNOWN_REMOTE_HOSTS takes it; with NODE_ENV=production, http:
 * only for loopback, as at the IdP.
 */
function originOf(value: unknown, name: string, problems: string[]): string | undefined {
  if (typeof value !== 'string') { problems.push(`${name}: required, an origin like https://app.example.com`); return undefined }
  return parseOrigin(value, name, process.env.NODE_ENV === 'production', problems)
}

const CONNECTION_KEYS = new Set(['url', 'sentinels', 'sentinelName', 'sentinelPassword', 'clusterNodes', 'password'])

/**
 * The `redis` option: a redis:// or rediss:// URL, a connection object or an ioredis client, refused
 * now if it is anything else (an `http://` or `host:port` string would only fail at the first
 * request). The value itself is never echoed: a URL may hold a password.
 */
function checkRedis(value: unknown, problems: string[]): void {
  const expected = 'must be a redis:// or rediss:// URL, a { url, sentinels, sentinelName, clusterNodes, password } object or an ioredis instance'
  if (typeof value === 'string') {
    const problem = redisUrlProblem(value)
    if (problem !== undefined) problems.push(`redis: ${problem === NOT_A_REDIS_URL ? expected : problem}`)
    return
  }
  if (value === null || typeof value !== 'object') { problems.push(`redis: ${expected}`); return }
  // Duck-typed, as the plugin does: the app's ioredis may be another copy than ours.
  if (typeof (value as Partial<RedisClient>).defineCommand === 'function') return
  const conn = value as Record<string, unknown>
  const unknown = Object.keys(conn).find((k) => !CONNECTION_KEYS.has(k))
  if (unknown !== undefined) { problems.push(`redis: unknown key "${unknown}"; ${expected}`); return }
  const urlProblem = conn.url === undefined ? undefined : redisUrlProblem(conn.url)
  if (urlProblem !== undefined) problems.push(`redis.url: ${urlProblem}`)
  for (const key of ['sentinels', 'clusterNodes'] as const) {
    if (conn[key] !== undefined && !isHostList(conn[key])) problems.push(`redis.${key}: must be a list of { host, port } (port 1-65535)`)
  }
  for (const key of ['sentinelName', 'sentinelPassword', 'password'] as const) {
    if (conn[key] !== undefined && typeof conn[key] !== 'string') problems.push(`redis.${key}: must be a string`)
  }
}

function isHostList(value: unknown): boolean {
  return Array.isArray(value) && value.every((n: unknown) => {
    const { host, port } = (n ?? {}) as { host?: unknown; port?: unknown }
    return typeof host === 'string' && host !== '' && Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535
  })
}

function isPlainObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** `/exact/path` or `/prefix/*`: a `*` anywhere else, a query or a fragment would never match a request's path. */
function isPublicPath(p: unknown): boolean {
  if (typeof p !== 'string' || !p.startsWith('/') || /[?#]/.test(p)) return false
  const star = p.indexOf('*')
  return star < 0 || (star === p.length - 1 && p.endsWith('/*'))
}

function publicMatcher(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set(paths.filter((p) => !p.endsWith('/*')))
  const prefixes = paths.filter((p) => p.endsWith('/*')).map((p) => p.slice(0, -1))
  return (path) => exact.has(path) || prefixes.some((p) => path.startsWith(p))
}
