/**
 * The IdP's configuration, read once from the environment (and `.env` when asked), checked in two
 * passes (types and ranges, then meaning), every problem reported at once, each naming its variable.
 */
import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { isIP } from 'node:net'
import { envSchema } from 'env-schema'
import { ENV_SCHEMA, type Env } from './config-schema.js'
import { parseOrigin } from '../shared/origin.js'
import { ConfigError } from '../shared/errors.js'
import { parseSyncKeys, type Keyring } from '../shared/keyring.js'
import type { RegulationConfig } from './regulation.js'
import { parseHostList, redisUrlProblem, type RedisConnection } from '../shared/redis.js'
import { loadUsers, type UserDirectory } from './users.js'
import { parseGroups, type SecondFactorPolicy } from './second-factor-policy.js'
import { listEntries } from '../shared/list-entries.js'
import { DEMO_SECRETS, isPlaceholder } from './demo-secrets.js'

export interface IdpConfig {
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
  /** Fastify's trustProxy: false, true, or the proxies' addresses/CIDRs. */
  readonly trustProxy: boolean | string[]
  readonly regulation: RegulationConfig
  /** SECOND_FACTOR and SECOND_FACTOR_GROUPS (second-factor-policy.ts). */
  readonly secondFactor: SecondFactorPolicy
  /** FACTOR_KEYS: seal TOTP secrets at rest; undefined when unset (then TOTP cannot be enrolled). */
  readonly factorKeyring: Keyring | undefined
  /** Settings that work but weaken something: logged at start-up, printed by check-config. */
  readonly warnings: readonly string[]
}

/** Loads the configuration from `source` (default process.env; `.env` is read when `dotenv` is true). */
export function loadConfig(source: Record<string, string | undefined> = process.env, opts: { dotenv?: boolean } = {}): IdpConfig {
  const merged = { ...readDotenv(opts.dotenv), ...source }
  // Pass one gives the valid variables typed and defaulted, and leaves the invalid ones out; pass
  // two checks the meaning of every value that is there, so one run lists every problem.
  const { env: valid, problems } = checkTypes(merged)
  const { keyring, knownRemoteHosts, publicUrl, users } = checkMeaning(valid, problems)
  const redis = parseRedisConnection(valid, problems)
  refusePlaceholders(valid, problems)
  if (valid.NODE_ENV === 'production') refuseDemoSecrets(valid, problems)
  const trustProxy = valid.TRUST_PROXY === undefined ? false : parseTrustProxy(valid.TRUST_PROXY, problems)
  if (valid.SESSION_IDLE_SECONDS !== undefined && valid.SESSION_TTL_SECONDS !== undefined && valid.SESSION_IDLE_SECONDS > valid.SESSION_TTL_SECONDS) {
    problems.push('SESSION_IDLE_SECONDS: must not exceed SESSION_TTL_SECONDS')
  }
  const { secondFactor, factorKeyring } = parseSecondFactor(valid, problems)
  if (problems.length > 0 || keyring === undefined || users === undefined || publicUrl === undefined || secondFactor === undefined) {
    throw new ConfigError(problems)
  }
  // No problem: pass one left nothing out, so every variable is there.
  const env = valid as Env
  return Object.freeze({
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
    regulation: Object.freeze({
      user: Object.freeze({
        maxRetries: env.LOGIN_MAX_RETRIES,
        findTimeMs: env.LOGIN_FIND_TIME_SECONDS * 1000,
        banTimeMs: env.LOGIN_BAN_TIME_SECONDS * 1000,
      }),
      address: Object.freeze({
        maxRetries: env.LOGIN_IP_MAX_RETRIES,
        findTimeMs: env.LOGIN_IP_FIND_TIME_SECONDS * 1000,
        banTimeMs: env.LOGIN_IP_BAN_TIME_SECONDS * 1000,
      }),
    }),
    secondFactor,
    factorKeyring,
    warnings: Object.freeze(warningsFor(env, trustProxy)),
  })
}

/**
 * SECOND_FACTOR, SECOND_FACTOR_GROUPS and FACTOR_KEYS. Fails closed: a policy that requires a second
 * factor with no key to seal TOTP secrets would lock every such user out (or tempt one to store
 * secrets in clear), so it stops start-up instead.
 */
function parseSecondFactor(env: Partial<Env>, problems: string[]): { secondFactor?: SecondFactorPolicy; factorKeyring?: Keyring } {
  const { SECOND_FACTOR: mode, FACTOR_KEYS: keys } = env
  const groups = env.SECOND_FACTOR_GROUPS === undefined ? undefined : parseGroups(env.SECOND_FACTOR_GROUPS)
  // Each rule runs when the variables it reads are valid: an invalid one is already reported.
  if (mode === 'off' && groups !== undefined && groups.length > 0) problems.push('SECOND_FACTOR_GROUPS: is set while SECOND_FACTOR is off; set SECOND_FACTOR=optional (or required) or empty the groups')
  const noKeys = keys !== undefined && keys.trim() === ''
  const factorKeyring = keys === undefined || noKeys ? undefined : parseSyncKeys(keys, 'FACTOR_KEYS', problems)
  if (noKeys && (mode === 'required' || (groups !== undefined && groups.length > 0))) {
    problems.push('FACTOR_KEYS: is required when SECOND_FACTOR is required or SECOND_FACTOR_GROUPS is set (npx tessera gen-key)')
  }
  if (env.NODE_ENV === 'production' && keys !== undefined && DEMO_SECRETS.some((d) => keys.includes(d))) {
    problems.push('FACTOR_KEYS: holds a published demo key; generate your own (npx tessera gen-key)')
  }
  const secondFactor = mode === undefined || groups === undefined ? undefined : Object.freeze({ mode, groups: Object.freeze(groups) })
  return { ...(secondFactor === undefined ? {} : { secondFactor }), ...(factorKeyring === undefined ? {} : { factorKeyring }) }
}

/** SESSION_SECRET still a placeholder, long enough to pass its length check (secret.example.yaml's short one does not). */
function refusePlaceholders(env: Partial<Env>, problems: string[]): void {
  if (env.SESSION_SECRET !== undefined && isPlaceholder(env.SESSION_SECRET)) problems.push('SESSION_SECRET: is a placeholder; generate your own (openssl rand -base64 48)')
}

function refuseDemoSecrets(env: Partial<Env>, problems: string[]): void {
  const { SESSION_SECRET: secret, SYNC_KEYS: keys } = env
  if (secret !== undefined && DEMO_SECRETS.some((d) => secret.includes(d))) problems.push('SESSION_SECRET: is the published demo value; generate your own (openssl rand -base64 48)')
  if (keys !== undefined && DEMO_SECRETS.some((d) => keys.includes(d))) problems.push('SYNC_KEYS: holds the published demo key; generate your own (npx tessera gen-key)')
}

/** Settings that the IdP accepts but that weaken it; each names its variable. */
function warningsFor(env: Env, trustProxy: IdpConfig['trustProxy']): string[] {
  const warnings: string[] = []
  if (trustProxy === true && env.NODE_ENV === 'production') {
    warnings.push('TRUST_PROXY: "true" trusts every X-Forwarded-For hop, so a client can pick the address it is regulated under (and ban someone else\'s); give the proxies\' addresses or CIDRs instead')
  }
  return warnings
}

/**
 * TRUST_PROXY: `false` (default: the socket's address is the client's), `true` (trust every
 * X-Forwarded-For hop: a client can then choose its address, so only when nothing but your proxy
 * can reach the IdP, and warned in production), or the proxies' addresses/CIDRs, comma-separated
 * (the safe choice: the client is the first address, from the right, that is not one of them).
 * A hop count is refused: Fastify 5.12 trusts no hop at all when given a number (it cannot check the
 * immediate peer), so every client would share the proxy's address and its regulation.
 */
function parseTrustProxy(raw: string, problems: string[]): boolean | string[] {
  const value = raw.trim()
  if (value === 'false' || value === '') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    problems.push(`TRUST_PROXY: a hop count ("${value}") is not supported; give the proxy's addresses or CIDRs (e.g. 10.0.0.0/8, or loopback for a proxy on this host)`)
    return false
  }
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (list.every(isProxyAddress)) return list
  problems.push('TRUST_PROXY: must be true, false, or comma-separated proxy addresses/CIDRs (or loopback, linklocal, uniquelocal)')
  return false
}

/** An address, a CIDR, or one of proxy-addr's named ranges. */
function isProxyAddress(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true
  const [address = '', bits, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
}

/** Where Redis is, from REDIS_URL, REDIS_SENTINELS (+ REDIS_SENTINEL_NAME) or REDIS_CLUSTER_NODES. */
export function parseRedisConnection(env: Partial<Record<keyof Env, unknown>>, problems: string[]): RedisConnection {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
  const url = str(env.REDIS_URL) ?? 'redis://127.0.0.1:6379'
  const urlProblem = redisUrlProblem(url)
  if (urlProblem !== undefined) problems.push(`REDIS_URL: ${urlProblem}`)
  const sentinels = parseHostList(str(env.REDIS_SENTINELS) ?? '', 'REDIS_SENTINELS', problems)
  const clusterNodes = parseHostList(str(env.REDIS_CLUSTER_NODES) ?? '', 'REDIS_CLUSTER_NODES', problems)
  if (sentinels.length > 0 && clusterNodes.length > 0) problems.push('REDIS_SENTINELS and REDIS_CLUSTER_NODES: set one or the other, not both')
  const password = str(env.REDIS_PASSWORD)
  const sentinelPassword = str(env.REDIS_SENTINEL_PASSWORD)
  // Nothing else checks a password's form: the manifest's placeholder would otherwise be sent to Redis.
  if (password !== undefined && isPlaceholder(password)) problems.push('REDIS_PASSWORD: is a placeholder (as in deploy/kubernetes/secret.example.yaml); set your Redis password')
  if (sentinelPassword !== undefined && isPlaceholder(sentinelPassword)) problems.push('REDIS_SENTINEL_PASSWORD: is a placeholder; set the sentinels\' password')
  return Object.freeze({
    url,
    ...(sentinels.length > 0 ? { sentinels, sentinelName: str(env.REDIS_SENTINEL_NAME) ?? 'mymaster' } : {}),
    ...(clusterNodes.length > 0 ? { clusterNodes } : {}),
    ...(password === undefined ? {} : { password }),
    ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
  })
}

/** REDIS_WAIT_REPLICAS as the CLI reads it (the IdP reads it through the schema): 0 when unset. */
export function parseWaitReplicas(env: Partial<Record<keyof Env, unknown>>, problems: string[]): number {
  const raw = env.REDIS_WAIT_REPLICAS
  if (raw === undefined || raw === '') return 0
  // The range the IdP's schema gives it, so the two cannot drift apart.
  const { minimum, maximum } = ENV_SCHEMA.properties.REDIS_WAIT_REPLICAS as unknown as { minimum: number; maximum: number }
  const n = typeof raw === 'number' ? raw : /^\d{1,5}$/.test(String(raw)) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < minimum || n > maximum) {
    problems.push(`REDIS_WAIT_REPLICAS: must be an integer from ${minimum} to ${maximum}`)
    return 0
  }
  return n
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

/**
 * Pass one: presence, type, default and range of every variable, every problem at once (env-schema's
 * Ajv runs allErrors). Returns the valid variables typed and with their defaults, without the
 * invalid ones, so that pass two checks what it can and skips only what reads an invalid value.
 */
function checkTypes(merged: Readonly<Record<string, string | undefined>>): { env: Partial<Env>; problems: string[] } {
  const problems = integerSpellingProblems(merged)
  const invalid = new Set(problems.map(variableOf))
  try {
    const env = envSchema<Env>({ schema: ENV_SCHEMA, data: { ...merged }, env: false })
    if (invalid.size === 0) return { env, problems }
  } catch (err) {
    for (const p of describeSchemaErrors(err)) {
      if (invalid.has(variableOf(p))) continue // a spelling problem already names it
      problems.push(p)
      invalid.add(variableOf(p))
    }
  }
  // Again without the invalid variables: the rest pass, coerced and defaulted as on a clean run.
  const properties = Object.fromEntries(Object.entries(ENV_SCHEMA.properties).filter(([name]) => !invalid.has(name)))
  const schema = { ...ENV_SCHEMA, properties, required: ENV_SCHEMA.required.filter((name) => !invalid.has(name)) }
  const data = Object.fromEntries(Object.entries(merged).filter(([name]) => !invalid.has(name)))
  try {
    return { env: envSchema<Partial<Env>>({ schema, data, env: false }), problems }
  } catch {
    return { env: {}, problems } // cannot happen (allErrors named every failing variable); checks nothing more
  }
}

/** The variable a problem line names: the text before its first `:` or `[`. */
function variableOf(problem: string): string {
  return /^[A-Z0-9_]*/.exec(problem)?.[0] ?? ''
}

/**
 * Whole numbers must be written in decimal digits. Ajv's type coercion reads a value as JavaScript's
 * Number() does, so `PORT=1e3` would listen on 1000, `0x10` be 16 and ` 3950` be 3950: a typo taken
 * silently for another setting. What is no whole number at all is left to the schema ("must be integer").
 */
function integerSpellingProblems(env: Readonly<Record<string, string | undefined>>): string[] {
  const problems: string[] = []
  for (const [name, schema] of Object.entries(ENV_SCHEMA.properties)) {
    const value = env[name]
    if (schema.type !== 'integer' || value === undefined || /^[0-9]+$/.test(value) || !Number.isInteger(Number(value))) continue
    problems.push(`${name}: must be a whole number in decimal digits, got ${JSON.stringify(value.slice(0, 32))}`)
  }
  return problems
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
  for (const { entry, index } of listEntries(raw)) {
    const origin = parseOrigin(entry, `KNOWN_REMOTE_HOSTS[${index}]`, production, problems)
    if (origin !== undefined && !origins.includes(origin)) origins.push(origin)
  }
  return origins
}
