/**
 * Creates the ioredis client both sides use: one Redis, a Sentinel-managed primary, or a Cluster,
 * chosen by configuration alone. Tuned to fail fast rather than queue during an outage.
 */
import { connect as netConnect, type Socket, type TcpNetConnectOpts } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { AbstractConnector, Cluster, Command, Redis, SentinelConnector, type ClusterNode, type SentinelConnectionOptions, type RedisOptions, type StandaloneConnectionOptions } from 'ioredis'
import { StoreUnavailableError } from './errors.js'
import { lookupHost, lookupOne } from './host-lookup.js'
import { listEntries } from './list-entries.js'

export type RedisClient = Redis | Cluster

/**
 * HGETALL's reply as Redis sends it (field, value, field, value, …; empty when the key is missing),
 * each part the Buffer ioredis's parser sliced, not yet a string. ioredis's own `hgetall` turns it
 * into an object, a property check and insert per field, and a `utf8` reply decodes every part; the
 * page view reads the session whole on every request and decodes only the few parts it uses
 * (bench/README.md, issue 17).
 */
export function hgetallParts(redis: RedisClient, key: string): Promise<Buffer[]> {
  const command = new PartsReplyCommand('hgetall', [key], { replyEncoding: null })
  void redis.sendCommand(command)
  return command.promise as Promise<Buffer[]>
}

// ioredis applies its reply transformers in Command#transformReply; this one keeps the reply flat.
// It leans on that method staying where it is: shared/store-contract.test.ts and the Cluster flow
// read every session through it.
class PartsReplyCommand extends Command {
  override transformReply(result: Buffer | Buffer[]): Buffer[] {
    return Array.isArray(result) ? result : []
  }
}

/** Where Redis is. `url` alone is the simple case; `sentinels` or `clusterNodes` select a topology. */
export interface RedisConnection {
  /** redis:// or rediss:// (TLS); its password and TLS also apply to sentinel-managed and cluster nodes. */
  readonly url?: string
  readonly sentinels?: readonly HostPort[]
  /** The primary's name as the sentinels know it (sentinel `monitor` name). */
  readonly sentinelName?: string
  readonly sentinelPassword?: string
  readonly clusterNodes?: readonly HostPort[]
  /** Overrides the URL's password. */
  readonly password?: string
}

export interface HostPort {
  readonly host: string
  readonly port: number
}

/**
 * Commands fail at once while disconnected (no offline queue), so a request during a Redis outage
 * or a failover gets a 503 in milliseconds instead of hanging, and the client reconnects by itself.
 * A connected Redis that does not answer is bounded by `inStore` (COMMAND_TIMEOUT_MS), not by
 * ioredis's `commandTimeout`.
 */
export const REDIS_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  retryStrategy: (times) => Math.min(50 * times, 1000),
  // After a failover a client can still be talking to the demoted primary: READONLY means
  // "reconnect and ask the sentinels again", and resend the command (2).
  reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
}

/**
 * ioredis's StandaloneConnector, but with host names looked up by lookupHost (host-lookup.ts) rather
 * than getaddrinfo: a reconnect's lookup in flight then never holds up the process's exit (a stop on
 * SIGTERM with Redis's name unresolvable took up to the resolver's 5 s timeout).
 */
export class RedisConnector extends AbstractConnector {
  private readonly options: StandaloneConnectionOptions

  // `unknown`, as ioredis's ConnectorConstructor has it: a Redis client's options.
  constructor(options: unknown) {
    const opts = options as StandaloneConnectionOptions
    super(opts.disconnectTimeout ?? 2000)
    this.options = opts
  }

  connect(): Promise<Socket | TLSSocket> {
    const { options } = this
    this.connecting = true
    const target: Partial<TcpNetConnectOpts> & { path?: string } = options.path
      ? { path: options.path }
      : {
          ...(options.port == null ? {} : { port: options.port }),
          ...(options.host == null ? {} : { host: options.host }),
          ...(options.family == null ? {} : { family: options.family }),
          lookup: lookupHost,
        }
    // Connected on the next tick, as ioredis does, so that a disconnect() meanwhile is seen.
    return new Promise((resolve, reject) => {
      process.nextTick(() => {
        if (!this.connecting) {
          reject(new Error('Connection is closed.'))
          return
        }
        try {
          this.stream = options.tls
            ? tlsConnect({ ...target, ...options.tls } as ConnectionOptions)
            : netConnect(target as TcpNetConnectOpts)
        } catch (err) {
          reject(err)
          return
        }
        this.stream.once('error', (err) => { this.firstError = err })
        resolve(this.stream)
      })
    })
  }
}

/**
 * A sentinel-managed client whose connector, when disconnect() is called while it is asking the
 * sentinels for the primary, asks them again, unless the client's owner closed the client.
 *
 * With `failoverDetector`, ioredis drops the connection on every +switch-master by calling the
 * connector's disconnect(). When the primary has died, the client is already reconnecting, and if
 * that message comes while a reconnect is waiting for a sentinel's answer, ioredis's
 * SentinelConnector rejects with "Connection is closed." and ioredis ends the client for good: it
 * never reconnects, and every command fails with that message (seen in the Sentinel kill -9 test
 * under load: the IdP and both apps answered 503 for the whole minute after the failover; with a
 * sentinel lookup slowed to 300 ms it happened on every failover). The lookup under way may still
 * name the old primary, so asking again is what the +switch-master asked for.
 */
function sentinelRedis(options: RedisOptions): Redis {
  // Set by the owner's disconnect() (no reconnect), cleared by a connect(): the one case where
  // the lookup must stop and the client end.
  let closing = false
  class FollowingSentinelConnector extends SentinelConnector {
    // `unknown`, as ioredis's ConnectorConstructor has it: the client's options, sentinels included.
    constructor(opts: unknown) {
      super(opts as SentinelConnectionOptions)
    }

    override async connect(...args: Parameters<SentinelConnector['connect']>): ReturnType<SentinelConnector['connect']> {
      for (;;) {
        try {
          return await super.connect(...args)
        } catch (err) {
          // With sentinelRetryStrategy always giving a delay, "Connection is closed." is the only
          // rejection: disconnect() was called during the lookup.
          if (closing || !(err instanceof Error) || err.message !== 'Connection is closed.') throw err
        }
      }
    }
  }
  class SentinelRedis extends Redis {
    override connect(...args: Parameters<Redis['connect']>): ReturnType<Redis['connect']> {
      closing = false
      return super.connect(...args)
    }

    override disconnect(reconnect = false): void {
      if (!reconnect) closing = true
      super.disconnect(reconnect)
    }
  }
  return new SentinelRedis({ ...options, Connector: FollowingSentinelConnector })
}

export function createRedis(target: string | RedisConnection, options: RedisOptions = {}): RedisClient {
  const conn: RedisConnection = typeof target === 'string' ? { url: target } : target
  const fromUrl = urlOptions(conn.url)
  const auth = { ...fromUrl, ...(conn.password === undefined ? {} : { password: conn.password }) }
  if (conn.clusterNodes !== undefined && conn.clusterNodes.length > 0) {
    const { enableOfflineQueue, retryStrategy, ...nodeOptions } = { ...REDIS_OPTIONS, ...options }
    return new Cluster(conn.clusterNodes as ClusterNode[], {
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy as (times: number) => number,
      redisOptions: { ...nodeOptions, ...auth, Connector: RedisConnector },
      dnsLookup: lookupOne,
      // Every read goes to primaries: a replica may lag, and a session must never look logged-in after a logout.
      scaleReads: 'master',
      slotsRefreshTimeout: 2000,
    })
  }
  if (conn.sentinels !== undefined && conn.sentinels.length > 0) {
    return sentinelRedis({
      ...REDIS_OPTIONS, ...options, ...auth,
      sentinels: conn.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: conn.sentinelName ?? 'mymaster',
      ...(conn.sentinelPassword === undefined ? {} : { sentinelPassword: conn.sentinelPassword }),
      // Sentinel lookups fail fast too, and are retried like connections.
      sentinelRetryStrategy: (times: number) => Math.min(50 * times, 1000),
      // Follow a failover at once: listen for +switch-master on the sentinels and reconnect. Without
      // it, a client whose old primary stays up (manual failover, partition) keeps writing there
      // until the sentinels demote it, ~10 s later, and every one of those writes is then lost.
      failoverDetector: true,
    })
  }
  return new Redis(conn.url ?? 'redis://127.0.0.1:6379', { ...REDIS_OPTIONS, Connector: RedisConnector, ...options, ...auth })
}

/** Password, TLS and db from a redis:// or rediss:// URL, for topologies whose nodes come from elsewhere. */
function urlOptions(url: string | undefined): RedisOptions {
  if (url === undefined) return {}
  try {
    const u = new URL(url)
    return {
      ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
      ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
      ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    }
  } catch {
    return {}
  }
}

/** redisUrlProblem's answer for anything that is not a redis:// or rediss:// URL at all. */
export const NOT_A_REDIS_URL = 'must be a redis:// or rediss:// URL'

/** Database numbers: Redis has 16 by default, a server may be given more; five digits is plenty. */
const DB_PATH = /^\/\d{1,5}$/

/**
 * Why `url` is no Redis URL that ioredis can use as it reads it, or undefined when it is. ioredis
 * reads the path as the database with parseInt (`/abc` sends SELECT NaN, and the rejected SELECT then
 * crashes the process), every query parameter as a client option (`?db=abc` the same; `?keyPrefix=`
 * would move every key; `?Connector=x` throws in the constructor), and percent-decodes the user and
 * password (`%zz` throws). Each such mistake is refused here, before any connection. The sentence
 * never echoes the URL: it may hold a password.
 */
export function redisUrlProblem(url: unknown): string | undefined {
  const expected = NOT_A_REDIS_URL
  if (typeof url !== 'string') return expected
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return expected
  }
  if (!/^rediss?:$/.test(u.protocol)) return expected
  if (u.pathname !== '' && u.pathname !== '/' && !DB_PATH.test(u.pathname)) {
    return 'the path is the database number and must be digits only, 0 to 99999 (e.g. redis://host:6379/0)'
  }
  if (u.search !== '' || url.includes('?')) return 'must have no query (?…): the Redis client would read each parameter as a client option'
  if (u.hash !== '' || url.includes('#')) return 'must have no fragment (#…); write a # in a password as %23'
  try {
    decodeURIComponent(u.username)
    decodeURIComponent(u.password)
  } catch {
    return 'the user name or password has a bad %-escape (write % as %25)'
  }
  return undefined
}

/** Parses `host:port,host:port`; pushes one problem per bad entry, naming `name[i]`. */
export function parseHostList(raw: string, name: string, problems: string[]): HostPort[] {
  const list: HostPort[] = []
  for (const { entry, index: i } of listEntries(raw)) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry)
    const port = Number(m?.[2])
    if (m === null || port < 1 || port > 65535) {
      // Never echoed with a user-info part (`user:secret@host:port`): that would print a password.
      problems.push(`${name}[${i}]: "${entry.includes('@') ? `***${entry.slice(entry.lastIndexOf('@'))}` : entry}" must be host:port`)
      continue
    }
    list.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port })
  }
  return list
}

/** Resolves once the client is ready, or after `timeoutMs` (the caller carries on, answering 503). */
export async function waitForRedis(redis: RedisClient, timeoutMs = 2000): Promise<boolean> {
  if (redis.status === 'ready') return true
  return new Promise((resolve) => {
    const timer = setTimeout(() => { redis.off('ready', onReady); resolve(false) }, timeoutMs)
    const onReady = (): void => { clearTimeout(timer); resolve(true) }
    redis.once('ready', onReady)
  })
}

/** Resolves when Redis answers a PING; rejects with StoreUnavailableError otherwise. */
export async function pingRedis(redis: RedisClient): Promise<void> {
  await inStore(() => redis.ping())
}

/** How long a Redis operation may take before it counts as Redis not answering (503). */
export const COMMAND_TIMEOUT_MS = 2000
const SWEEP_MS = 100
const TIMEOUT_SWEEPS = COMMAND_TIMEOUT_MS / SWEEP_MS

/** An operation in flight: the sweep it started in, and how to fail it; `done` once it settled. */
interface InFlight { readonly sweep: number; done: boolean; readonly reject: (err: Error) => void }

// Every operation in flight, oldest first (one timeout for all), swept every SWEEP_MS while any is:
// one timer and no clock read per operation, instead of ioredis's `commandTimeout`, which sets a
// timer per command and `delete`s it on the reply, making V8 turn every command object into a
// dictionary; together about 8% of a page view's instructions (bench/README.md, issue 17). An
// operation fails after TIMEOUT_SWEEPS sweeps: 2.0 to 2.1 s.
let queue: InFlight[] = []
let head = 0
let sweeps = 0
let sweeper: NodeJS.Timeout | undefined

function sweep(): void {
  sweeps++
  while (head < queue.length) {
    const op = queue[head] as InFlight
    if (!op.done) {
      if (sweeps - op.sweep <= TIMEOUT_SWEEPS) break
      op.done = true
      op.reject(new StoreUnavailableError(new Error(`Redis did not answer within ${COMMAND_TIMEOUT_MS} ms`)))
    }
    head++
  }
  if (head === queue.length) {
    queue = []
    head = 0
    if (sweeper !== undefined) { clearInterval(sweeper); sweeper = undefined }
  } else if (head > 1024) {
    queue = queue.slice(head)
    head = 0
  }
}

/**
 * Runs a Redis operation; any failure is Redis being unavailable, answered 503 (fail closed), and so
 * is no answer within COMMAND_TIMEOUT_MS (a hung or partitioned Redis; the reply, if it comes later,
 * is dropped). The timer does not keep a stopping process alive.
 */
export function inStore<T>(op: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry: InFlight = { sweep: sweeps, done: false, reject }
    queue.push(entry)
    sweeper ??= setInterval(sweep, SWEEP_MS).unref()
    let pending: Promise<T>
    try {
      pending = op()
    } catch (cause) {
      entry.done = true
      reject(new StoreUnavailableError(cause))
      return
    }
    pending.then(
      (value) => { entry.done = true; resolve(value) },
      (cause: unknown) => { entry.done = true; reject(new StoreUnavailableError(cause)) },
    )
  })
}
