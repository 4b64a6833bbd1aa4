/**
 * Every IdP environment variable, declared once: its type, default and range. `Env` follows from it,
 * so the schema and the code that reads it cannot drift apart. What the values mean (keys decode,
 * origins are exact, the users file loads) is checked in config.ts.
 */
import { envObject, integer, oneOf, optional, string, text, type Static } from './env-schema-types.js'
import { LOG_LEVELS } from '../shared/logger.js'

const DAY = 86_400

export const ENV_SCHEMA = envObject({
  NODE_ENV: text('development'),
  REDIS_URL: text('redis://127.0.0.1:6379'),
  REDIS_PASSWORD: optional(string()),
  REDIS_SENTINELS: text(''), // host:port,host:port
  REDIS_SENTINEL_NAME: text('mymaster'),
  REDIS_SENTINEL_PASSWORD: optional(string()),
  REDIS_CLUSTER_NODES: text(''), // host:port,host:port
  REDIS_WAIT_REPLICAS: integer(0, 0, 16),
  KNOWN_REMOTE_HOSTS: text(''), // empty allows nothing
  SYNC_KEYS: string(),
  SESSION_SECRET: string({ minLength: 32 }),
  USERS_FILE: string({ minLength: 1 }),
  PUBLIC_URL: string({ minLength: 1 }),
  PORT: integer(3000, 0, 65535),
  HOST: string({ default: '127.0.0.1', minLength: 1 }),
  // CAS servers default their one-time service tickets to 10 s; a hand-over takes well under 1 s.
  TOKEN_TTL_SECONDS: integer(10, 1, 120),
  SESSION_TTL_SECONDS: integer(8 * 3600, 1, 30 * DAY), // absolute
  SESSION_IDLE_SECONDS: integer(3600, 1, 30 * DAY),
  LOG_LEVEL: oneOf(LOG_LEVELS, 'info'),
  TRUST_PROXY: text('false'),
  // Authelia's regulation defaults, per user name: failed passwords only. A guesser pacing 2 failures
  // per 2-minute window gets at most 60 an hour per account (36 if it keeps hitting the ban), under
  // the 100 an hour of ASVS 4.0.3 V2.2.1.
  LOGIN_MAX_RETRIES: integer(3, 1, 100),
  LOGIN_FIND_TIME_SECONDS: integer(120, 1, DAY),
  LOGIN_BAN_TIME_SECONDS: integer(300, 1, DAY),
  // Per client address, against password spraying: 100 failures in 5 minutes is far beyond what an
  // office behind one NAT types by mistake, and a browser that has signed in as the user before is
  // exempt (regulation.ts).
  LOGIN_IP_MAX_RETRIES: integer(100, 1, 100_000),
  LOGIN_IP_FIND_TIME_SECONDS: integer(300, 1, DAY),
  LOGIN_IP_BAN_TIME_SECONDS: integer(600, 1, DAY),
  // Second factors (docs/second-factor.md): off, optional (users may enrol), required (everyone must).
  SECOND_FACTOR: oneOf(['off', 'optional', 'required'] as const, 'optional'),
  SECOND_FACTOR_GROUPS: text(''), // comma-separated: a second factor is required for these groups only
  FACTOR_KEYS: text(''), // id:key pairs as SYNC_KEYS: seal TOTP secrets; the first seals, all open
})

export type Env = Static<typeof ENV_SCHEMA>

/** The variables the IdP reads, for tools that check a deployment's settings against them. */
export const ENV_NAMES: readonly string[] = Object.keys(ENV_SCHEMA.properties)

/** The variables with no default, which every deployment must set. */
export const REQUIRED_ENV: readonly string[] = Object.entries(ENV_SCHEMA.properties)
  .filter(([name, p]) => !('default' in p) && ENV_SCHEMA.required.includes(name)).map(([name]) => name)
