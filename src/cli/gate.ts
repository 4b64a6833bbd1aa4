/**
 * `tessera gate`: runs the forward-auth gate (src/remote/gate.ts) from the environment, for operators
 * who protect apps behind nginx, Caddy or Traefik and write no Node code. The gate is the remote
 * side, not the IdP, so it reads its own few variables and none of the IdP's secrets.
 */
import { OptionsError } from '../shared/errors.js'
import { redisUrlProblem } from '../shared/redis.js'
import { stopOnSignals } from '../shared/shutdown.js'
import { buildGate, resolveGateOptions, type TesseraGateHost, type TesseraGateOptions } from '../remote/gate.js'
import { LOG_LEVELS, loggerOptions } from '../shared/logger.js'
import { EXIT } from './environment.js'

export const HELP = `Usage: tessera gate

Runs the forward-auth gate that nginx (auth_request), Caddy (forward_auth) or Traefik (ForwardAuth)
asks before each request of a protected app (docs/forward-auth.md). From the environment:
  IDP_URL                the IdP's PUBLIC_URL (required)
  REDIS_URL              the shared Redis (default redis://127.0.0.1:6379)
  GATE_SESSION_SECRET    at least 32 characters; signs each protected host's handle cookie (required)
  FORWARD_AUTH_HOSTS     the protected hosts, space-separated <origin>=<app keys> entries; print an
                         origin's app keys on the IdP with: npx tessera app-key <origin> (required)
  FORWARD_AUTH_PROXIES   addresses or CIDR ranges of the proxies whose X-Forwarded-* / X-Original-*
                         headers are believed, comma-separated; empty refuses every request
  FORWARD_AUTH_SECOND_FACTOR  optional (default) or required: only sessions with a second factor pass
  GATE_HOST, GATE_PORT   where it listens (default 127.0.0.1 and 9091)
  LOG_LEVEL              fatal, error, warn, info (default), debug, trace or silent
Stops on SIGTERM or SIGINT.
Exit codes: 0 stopped; 1 bad configuration or cannot listen.
`

/** The environment's names for the gate's options, so a problem names the variable to fix. */
const NAMES: readonly [RegExp, string][] = [
  [/^hosts\[(\d+)\]\./, 'FORWARD_AUTH_HOSTS[$1] '], [/^hosts/, 'FORWARD_AUTH_HOSTS'], [/^proxies/, 'FORWARD_AUTH_PROXIES'],
  [/^FORWARD_AUTH_HOSTS\[\d+\] secondFactor/, 'FORWARD_AUTH_SECOND_FACTOR'], [/^sessionSecret/, 'GATE_SESSION_SECRET'], [/^idpUrl/, 'IDP_URL'], [/^redis/, 'REDIS_URL'],
]

interface GateEnv { readonly options: TesseraGateOptions; readonly host: string; readonly port: number; readonly logLevel: string }

/** The gate's configuration from `env`, or every problem at once, each naming its variable. */
export function gateEnv(env: Readonly<Record<string, string | undefined>>): GateEnv | { problems: readonly string[] } {
  const problems: string[] = []
  const secondFactor = env.FORWARD_AUTH_SECOND_FACTOR as 'optional' | 'required' | undefined
  const hosts: TesseraGateHost[] = (env.FORWARD_AUTH_HOSTS ?? '').split(/\s+/).filter((e) => e !== '').flatMap((entry, i) => {
    const eq = entry.indexOf('=')
    if (eq <= 0) { problems.push(`FORWARD_AUTH_HOSTS[${i}]: must be <origin>=<app keys>`); return [] }
    return [{ origin: entry.slice(0, eq), appKeys: entry.slice(eq + 1), ...(secondFactor === undefined ? {} : { secondFactor }) }]
  })
  const redis = env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const redisProblem = redisUrlProblem(redis)
  if (redisProblem !== undefined) problems.push(`REDIS_URL: ${redisProblem}`)
  // Digits only: Number() would read '1e3' as 1000, '0x10' as 16 and '' as 0 (any free port).
  const portText = env.GATE_PORT ?? '9091'
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN
  if (!(port <= 65535)) problems.push('GATE_PORT: must be an integer from 0 to 65535, in decimal digits')
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}`)
  const options: TesseraGateOptions = {
    idpUrl: env.IDP_URL as string, redis, sessionSecret: env.GATE_SESSION_SECRET as string, hosts, proxies: env.FORWARD_AUTH_PROXIES ?? '',
  }
  try {
    resolveGateOptions(options)
  } catch (err) {
    if (!(err instanceof OptionsError)) throw err
    for (const p of err.problems) problems.push(NAMES.reduce((s, [from, to]) => s.replace(from, to), p))
  }
  if (problems.length > 0) return { problems: [...new Set(problems)] }
  return { options, host: env.GATE_HOST ?? '127.0.0.1', port, logLevel }
}

/** Runs the gate until a signal stops it; resolves with the exit code only when it cannot start. */
export async function gate(env: Readonly<Record<string, string | undefined>>, err: (s: string) => void): Promise<number> {
  const config = gateEnv(env)
  if ('problems' in config) { err(`tessera gate: Invalid configuration: ${config.problems.join('; ')}\n`); return EXIT.problem }
  const app = buildGate(config.options, { logger: loggerOptions(config.logLevel) })
  stopOnSignals(app)
  try {
    await app.listen({ host: config.host, port: config.port })
  } catch (e) {
    err(`tessera gate: cannot listen on ${config.host}:${config.port}: ${(e as Error).message}\n`)
    // Its Redis client would keep the process alive, listening on nothing: a supervisor must see it exit.
    await app.close().catch(() => undefined)
    return EXIT.problem
  }
  if (config.options.proxies === '') app.log.warn('tessera gate: FORWARD_AUTH_PROXIES is empty, so every request is refused')
  // Runs until stopOnSignals ends the process.
  return new Promise<number>(() => {})
}
