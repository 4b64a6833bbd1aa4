/**
 * The IdP's configuration, read once from the environment (and `.env` when asked), checked in two
 * passes (types and ranges, then meaning), every problem reported at once, each naming its variable.
 */
import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { envSchema } from 'env-schema'
import { ConfigError } from '../shared/errors.js'
import { parseSyncKeys, type Keyring } from '../shared/keyring.js'
import type { ThrottlePolicy } from '../shared/session-store.js'
import { parseHostList, type RedisConnection } from '../shared/redis.js'
import { loadUsers, type UserDirectory } from './users.js'

export interface IdpConfig {
  readonly nodeEnv: string
  readonly redisUrl: string
  /** Where Redis is: REDIS_URL alone, or with REDIS_SENTINELS or REDIS_CLUSTER_NODES. */
  readonly redis: RedisConnection
  /** Replicas that must acknowledge a new session before sign-in completes (Redis WAIT); 0 = none. */
  readonly redisWaitReplicas: number
  /** Exact origins that may receive a user back (scheme://host[:port], normalised). */
  readonly knownRemoteHosts: readonly string[]
  readonly keyring: Keyring
  readonly sessionSecret: string
  readonly usersFile: string
  readonly users: UserDirectory
  /** The IdP's external origin; https here turns on Secure and __Host- cookies. */
  readonly publicUrl: string
  readonly port: number
  readonly host: string
  readonly tokenTtlSeconds: number
  readonly sessionTtlSeconds: number
  readonly sessionIdleSeconds: number
  readonly logLevel: string
  /** Fastify's trustProxy: false, true, a hop count, or the proxies' addresses/CIDRs. */
  readonly trustProxy: boolean | number | string[]
  readonly throttle: ThrottlePolicy
}

interface Env {
  NODE_ENV: string
  REDIS_URL: string
  REDIS_PASSWORD?: string
  REDIS_SENTINELS: string
  REDIS_SENTINEL_NAME: string
  REDIS_SENTINEL_PASSWORD?: string
  REDIS_CLUSTER_NODES: string
  REDIS_WAIT_REPLICAS: number
  KNOWN_REMOTE_HOSTS: string
  SYNC_KEYS: string
  SESSION_SECRET: string
  USERS_FILE: string
  PUBLIC_URL: string
  PORT: number
  HOST: string
  TOKEN_TTL_SECONDS: number
  SESSION_TTL_SECONDS: number
  SESSION_IDLE_SECONDS: number
  LOG_LEVEL: string
  TRUST_PROXY: string
  LOGIN_MAX_RETRIES: number
  LOGIN_FIND_TIME_SECONDS: number
  LOGIN_BAN_TIME_SECONDS: number
}

const DAY = 86_400
export const schema = {
  type: 'object',
  required: ['SYNC_KEYS', 'SESSION_SECRET', 'USERS_FILE', 'PUBLIC_URL'],
  properties: {
    NODE_ENV: { type: 'string', default: 'development' },
    REDIS_URL: { type: 'string', default: 'redis://127.0.0.1:6379' },
    REDIS_PASSWORD: { type: 'string', nullable: true },
    REDIS_SENTINELS: { type: 'string', default: '' }, // host:port,host:port
    REDIS_SENTINEL_NAME: { type: 'string', default: 'mymaster' },
    REDIS_SENTINEL_PASSWORD: { type: 'string', nullable: true },
    REDIS_CLUSTER_NODES: { type: 'string', default: '' }, // host:port,host:port
    REDIS_WAIT_REPLICAS: { type: 'integer', default: 0, minimum: 0, maximum: 16 },
    KNOWN_REMOTE_HOSTS: { type: 'string', default: '' }, // empty allows nothing
    SYNC_KEYS: { type: 'string' },
    SESSION_SECRET: { type: 'string', minLength: 32 },
    USERS_FILE: { type: 'string', minLength: 1 },
    PUBLIC_URL: { type: 'string', minLength: 1 },
    PORT: { type: 'integer', default: 3000, minimum: 0, maximum: 65535 },
    HOST: { type: 'string', default: '127.0.0.1', minLength: 1 },
    // CAS servers default their one-time service tickets to 10 s; a hand-over takes well under 1 s.
    TOKEN_TTL_SECONDS: { type: 'integer', default: 10, minimum: 1, maximum: 120 },
    SESSION_TTL_SECONDS: { type: 'integer', default: 8 * 3600, minimum: 1, maximum: 30 * DAY }, // absolute
    SESSION_IDLE_SECONDS: { type: 'integer', default: 3600, minimum: 1, maximum: 30 * DAY },
    LOG_LEVEL: { type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    TRUST_PROXY: { type: 'string', default: 'false' },
    // Authelia's regulation defaults, per user name and per client address. A guesser pacing 3 per
    // 2-minute window gets at most 90 an hour per account (36 if it keeps hitting the ban), under the
    // 100 an hour of ASVS 4.0.3 V2.2.1; set LOGIN_FIND_TIME_SECONDS to the ban time for 36.
    LOGIN_MAX_RETRIES: { type: 'integer', default: 3, minimum: 1, maximum: 100 },
    LOGIN_FIND_TIME_SECONDS: { type: 'integer', default: 120, minimum: 1, maximum: DAY },
    LOGIN_BAN_TIME_SECONDS: { type: 'integer', default: 300, minimum: 1, maximum: DAY },
  },
} as const

/** Loads the configuration from `source` (default process.env; `.env` is read when `dotenv` is true). */
export function loadConfig(source: Record<string, string | undefined> = process.env, opts: { dotenv?: boolean } = {}): IdpConfig {
  const merged = { ...readDotenv(opts.dotenv), ...source }
  let env: Env
  try {
    env = envSchema<Env>({
      schema, data: merged, env: false,
      // allErrors: report every bad variable at once, not the first. env-schema accepts an options
      // object here (it builds its default Ajv with them); its typings only name the function form.
      ajv: { customOptions: { allErrors: true } } as never,
    })
  } catch (err) {
    // Still check the meaning of what is there, so one run lists every problem.
    const problems = describeSchemaErrors(err)
    checkMeaning(merged as Partial<Env>, problems)
    parseRedisConnection(merged as Partial<Env>, problems)
    throw new ConfigError(problems)
  }
  const problems: string[] = []
  const { keyring, knownRemoteHosts, publicUrl, users } = checkMeaning(env, problems)
  const redis = parseRedisConnection(env, problems)
  if (env.NODE_ENV === 'production') refuseDemoSecrets(env, problems)
  const trustProxy = parseTrustProxy(env.TRUST_PROXY, problems)
  if (env.SESSION_IDLE_SECONDS > env.SESSION_TTL_SECONDS) {
    problems.push('SESSION_IDLE_SECONDS: must not exceed SESSION_TTL_SECONDS')
  }
  if (problems.length > 0 || keyring === undefined || users === undefined || publicUrl === undefined) {
    throw new ConfigError(problems)
  }
  return Object.freeze({
    nodeEnv: env.NODE_ENV,
    redisUrl: env.REDIS_URL,
    redis,
    redisWaitReplicas: env.REDIS_WAIT_REPLICAS,
    knownRemoteHosts,
    keyring,
    sessionSecret: env.SESSION_SECRET,
    usersFile: env.USERS_FILE,
    users,
    publicUrl,
    port: env.PORT,
    host: env.HOST,
    tokenTtlSeconds: env.TOKEN_TTL_SECONDS,
    sessionTtlSeconds: env.SESSION_TTL_SECONDS,
    sessionIdleSeconds: env.SESSION_IDLE_SECONDS,
    logLevel: env.LOG_LEVEL,
    trustProxy,
    throttle: Object.freeze({
      maxRetries: env.LOGIN_MAX_RETRIES,
      findTimeMs: env.LOGIN_FIND_TIME_SECONDS * 1000,
      banTimeMs: env.LOGIN_BAN_TIME_SECONDS * 1000,
    }),
  })
}

// The secrets published in .env.example and docker-compose.yml: fine for a demo, never in production.
const DEMO_SECRETS = ['demo-only-session-secret-change-me-0123456789', 'ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q']

function refuseDemoSecrets(env: Env, problems: string[]): void {
  if (DEMO_SECRETS.some((d) => env.SESSION_SECRET.includes(d))) problems.push('SESSION_SECRET: is the published demo value; generate your own (openssl rand -base64 48)')
  if (DEMO_SECRETS.some((d) => env.SYNC_KEYS.includes(d))) problems.push('SYNC_KEYS: holds the published demo key; generate your own (npx tessera gen-key)')
}

/**
 * TRUST_PROXY: `false` (default: the socket's address is the client's), `true` (trust every
 * X-Forwarded-For hop: only when nothing but your proxy can reach the IdP), a hop count, or the
 * proxies' addresses/CIDRs, comma-separated (the safe choice behind a known proxy).
 */
function parseTrustProxy(raw: string, problems: string[]): boolean | number | string[] {
  const value = raw.trim()
  if (value === 'false' || value === '') return false
  if (value === 'true') return true
  if (/^\d{1,2}$/.test(value)) return Number(value)
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (list.every((a) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(a))) return list
  problems.push('TRUST_PROXY: must be true, false, a hop count, or comma-separated proxy addresses/CIDRs')
  return false
}

/** Where Redis is, from REDIS_URL, REDIS_SENTINELS (+ REDIS_SENTINEL_NAME) or REDIS_CLUSTER_NODES. */
export function parseRedisConnection(env: Partial<Record<keyof Env, unknown>>, problems: string[]): RedisConnection {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
  const url = str(env.REDIS_URL) ?? 'redis://127.0.0.1:6379'
  try {
    if (!/^rediss?:$/.test(new URL(url).protocol)) throw new Error('scheme')
  } catch {
    problems.push('REDIS_URL: must be a redis:// or rediss:// URL')
  }
  const sentinels = parseHostList(str(env.REDIS_SENTINELS) ?? '', 'REDIS_SENTINELS', problems)
  const clusterNodes = parseHostList(str(env.REDIS_CLUSTER_NODES) ?? '', 'REDIS_CLUSTER_NODES', problems)
  if (sentinels.length > 0 && clusterNodes.length > 0) problems.push('REDIS_SENTINELS and REDIS_CLUSTER_NODES: set one or the other, not both')
  const password = str(env.REDIS_PASSWORD)
  const sentinelPassword = str(env.REDIS_SENTINEL_PASSWORD)
  return Object.freeze({
    url,
    ...(sentinels.length > 0 ? { sentinels, sentinelName: str(env.REDIS_SENTINEL_NAME) ?? 'mymaster' } : {}),
    ...(clusterNodes.length > 0 ? { clusterNodes } : {}),
    ...(password === undefined ? {} : { password }),
    ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
  })
}

/** Pass two: what the values mean (keys decode, origins are exact, the users file loads). */
function checkMeaning(env: Partial<Env>, problems: string[]): {
  keyring?: Keyring; knownRemoteHosts: string[]; publicUrl?: string; users?: UserDirectory
} {
  const production = env.NODE_ENV === 'production'
  return {
    keyring: typeof env.SYNC_KEYS === 'string' ? parseSyncKeys(env.SYNC_KEYS, 'SYNC_KEYS', problems) : undefined,
    knownRemoteHosts: typeof env.KNOWN_REMOTE_HOSTS === 'string' ? parseOrigins(env.KNOWN_REMOTE_HOSTS, production, problems) : [],
    publicUrl: typeof env.PUBLIC_URL === 'string' && env.PUBLIC_URL !== '' ? parseOrigin(env.PUBLIC_URL, 'PUBLIC_URL', production, problems) : undefined,
    users: typeof env.USERS_FILE === 'string' && env.USERS_FILE !== '' ? loadUsers(env.USERS_FILE, 'USERS_FILE', problems, { production }) : undefined,
  }
}

/** The `.env` file's variables when asked for and present (Node's own parser, as env-schema uses). */
export function readDotenv(enabled: boolean | undefined): Record<string, string> {
  if (enabled !== true) return {}
  try {
    return parseEnv(readFileSync('.env', 'utf8')) as Record<string, string>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError([`.env: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'invalid'})`])
  }
}

function describeSchemaErrors(err: unknown): string[] {
  const errors = (err as { errors?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] }).errors
  if (!Array.isArray(errors)) return [(err as Error).message]
  return errors.map((e) => {
    if (typeof e.params?.missingProperty === 'string') return `${e.params.missingProperty}: is required`
    const allowed = Array.isArray(e.params?.allowedValues) ? ` (${(e.params.allowedValues as string[]).join(', ')})` : ''
    return `${e.instancePath.replace(/^\//, '')}: ${e.message ?? 'is invalid'}${allowed}`
  })
}

function parseOrigins(raw: string, production: boolean, problems: string[]): string[] {
  const origins: string[] = []
  raw.split(',').map((s) => s.trim()).filter((s) => s !== '').forEach((entry, i) => {
    const origin = parseOrigin(entry, `KNOWN_REMOTE_HOSTS[${i}]`, production, problems)
    if (origin !== undefined && !origins.includes(origin)) origins.push(origin)
  })
  return origins
}

/** An exact origin, normalised by the URL parser, or a problem naming `name`. */
export function parseOrigin(entry: string, name: string, production: boolean, problems: string[]): string | undefined {
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    problems.push(`${name}: "${entry}" is not a URL; expected an origin like https://app.example.com`)
    return undefined
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' ||
      url.pathname !== '/' || url.search !== '' || url.hash !== '' || /^https?:\/\/[^/]*\/./i.test(entry)) {
    problems.push(`${name}: "${entry}" must be an origin: http(s)://host[:port], no path, query or user-info`)
    return undefined
  }
  if (production && url.protocol === 'http:' && !isLoopback(url.hostname)) {
    problems.push(`${name}: "${url.origin}" uses http: in production; use https: (only loopback and *.localhost may be http)`)
    return undefined
  }
  return url.origin
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}
