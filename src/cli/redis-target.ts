/** Which Redis an admin command talks to, named for the operator, and why it failed: one place for `check-config`, `sessions` and `factors`. */
import { inStore, type RedisClient, type RedisConnection } from '../shared/redis.js'

/** Where a connection goes, as an operator names it, without its password. */
export function describeRedis(conn: RedisConnection): string {
  const { sentinels, sentinelName, clusterNodes } = conn
  if (clusterNodes !== undefined) return `cluster ${clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
  if (sentinels !== undefined) return `sentinels ${sentinels.map((n) => `${n.host}:${n.port}`).join(',')} (${sentinelName ?? ''})`
  return redactUrl(conn.url ?? '')
}

/** A Redis URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.href
  } catch {
    return '(not a URL)'
  }
}

/**
 * The URL's database, selected here and checked: ioredis reports a failed SELECT (a database the
 * server does not have) as a connection error and goes on in database 0, where a revoke or a reset
 * would act on someone else's data.
 */
export async function useDatabase(redis: RedisClient, conn: RedisConnection): Promise<void> {
  if (conn.clusterNodes !== undefined || conn.url === undefined) return
  const db = Number(new URL(conn.url).pathname.slice(1) || '0')
  if (db !== 0) await inStore(() => redis.select(db))
}

/** Why Redis failed, in Redis's own words where it gave some (WRONGPASS, NOPERM, a bad database): never a secret. */
export function reasonOf(e: unknown): string {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e
  const message = cause instanceof Error ? cause.message : ''
  return /^(WRONGPASS|NOPERM|NOAUTH|ERR)\b/.test(message) ? `refused: ${message.split('\n')[0]}` : 'does not answer'
}
