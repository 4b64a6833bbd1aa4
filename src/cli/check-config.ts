/** `tessera check-config`: loads the environment as the IdP would, pings Redis, prints what it found and every problem. */
import { loadConfig, type IdpConfig } from '../idp/config.js'
import { ConfigError } from '../shared/errors.js'
import { createRedis, inStore, pingRedis, type RedisClient } from '../shared/redis.js'
import { describeRedis, reasonOf, useDatabase } from './redis-target.js'
import { environment, EXIT } from './environment.js'

export const HELP = `Usage: tessera check-config

Loads the IdP's configuration from the environment and .env exactly as \`npm start\` does, then pings
Redis. Prints what it found (never a secret) and every problem at once.

Exit codes: 0 configuration valid and Redis answers; 1 configuration invalid; 3 valid but Redis does not answer.
`

export async function checkConfig(out: (s: string) => void): Promise<number> {
  let config: IdpConfig
  try {
    config = loadConfig(environment())
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    out(`Configuration is invalid (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}):\n`)
    for (const p of err.problems) out(`  - ${p}\n`)
    return EXIT.problem
  }
  out('Configuration is valid:\n')
  out(`  PUBLIC_URL            ${config.publicUrl}${config.publicUrl.startsWith('https:') ? '' : '  (http: cookies are not Secure; use https in production)'}\n`)
  out(`  KNOWN_REMOTE_HOSTS    ${config.knownRemoteHosts.length === 0 ? '(none: no callback is allowed)' : config.knownRemoteHosts.join(', ')}\n`)
  out(`  SYNC_KEYS             ${[...config.keyring.byId.keys()].join(', ')} (mints with ${config.keyring.current.id})\n`)
  out(`  USERS_FILE            ${config.usersFile} (${config.users.size} user${config.users.size === 1 ? '' : 's'})\n`)
  out(`  token / idle / absolute  ${config.tokenTtlSeconds} s / ${config.sessionIdleSeconds} s / ${config.sessionTtlSeconds} s\n`)
  out(`  listen                ${config.host}:${config.port}\n`)
  for (const w of config.warnings) out(`  warning: ${w}\n`)
  const redis = createRedis(config.redis, { enableOfflineQueue: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {}) // reported below, once
  try {
    await useDatabase(redis, config.redis)
    await pingRedis(redis)
    out(`  Redis                 ${describeRedis(config.redis)}: answers\n`)
    return await replicasEnough(redis, config, out)
  } catch (err) {
    const reason = reasonOf(err)
    out(`  Redis                 ${describeRedis(config.redis)}: ${reason === 'does not answer' ? 'does NOT answer' : reason}\n`)
    return EXIT.redis
  } finally {
    redis.disconnect()
  }
}

/**
 * REDIS_WAIT_REPLICAS against the replicas the primary has now: with fewer, every sign-in, hand-over
 * and logout would answer 503 while /readyz says ready.
 */
async function replicasEnough(redis: RedisClient, config: IdpConfig, out: (s: string) => void): Promise<number> {
  const wanted = config.redisWaitReplicas
  if (wanted === 0 || config.redis.clusterNodes !== undefined) return EXIT.ok
  const info = await inStore(() => redis.info('replication'))
  const connected = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0)
  if (connected >= wanted) { out(`  REDIS_WAIT_REPLICAS   ${wanted} (${connected} connected)\n`); return EXIT.ok }
  out(`  REDIS_WAIT_REPLICAS   ${wanted}, but ${connected} replica${connected === 1 ? ' is' : 's are'} connected: every sign-in and logout would answer 503\n`)
  return EXIT.problem
}
