/**
 * Real Redis topologies on loopback for the Sentinel and Cluster tests: a 3-master Redis Cluster
 * (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`) and a Sentinel group (one
 * primary, one replica, three sentinels). Every process runs in a temp dir on free ports and is
 * killed by `stop()`; call it in `after()`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import type { HostPort } from '../../src/shared/redis.js'
import { freePort } from './net.js'

const run = promisify(execFile)
const HOST = '127.0.0.1'
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every 100 ms until it is true, or throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await check()) return
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not true after ${timeoutMs} ms${last === undefined ? '' : ` (${(last as Error).message})`}`)
    await sleep(100)
  }
}

/** The clients a topology hands out, so that stopping it disconnects them all. */
function clientPool<C extends Redis | Cluster>(): { track(c: C): C; disconnectAll(): void } {
  const clients: C[] = []
  return {
    track: (c) => {
      c.on('error', () => {}) // refused while nodes stop and fail over: expected in these tests
      clients.push(c)
      return c
    },
    disconnectAll: () => { for (const c of clients) c.disconnect() },
  }
}

type ClientPool<C extends Redis | Cluster> = ReturnType<typeof clientPool<C>>

/**
 * Builds a topology on fresh processes and clients, and adds its stop(): disconnect every client
 * handed out, kill every process. If the build fails, whatever it started is killed.
 */
async function topology<C extends Redis | Cluster, T>(build: (procs: Processes, clients: ClientPool<C>) => Promise<T>): Promise<T & { stop(): Promise<void> }> {
  const procs = new Processes()
  const clients = clientPool<C>()
  try {
    const built = await build(procs, clients)
    return { ...built, stop: async () => { clients.disconnectAll(); await procs.killAll() } }
  } catch (err) {
    await procs.killAll()
    throw err
  }
}

/** Sends one command to host:port on a short-lived connection (no retries, no offline queue). */
async function command(port: number, cmd: string, ...args: (string | number)[]): Promise<unknown> {
  const c = new Redis(port, HOST, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000, enableOfflineQueue: false })
  c.on('error', () => {})
  try {
    await c.connect()
    return await c.call(cmd, ...args)
  } finally {
    c.disconnect()
  }
}

/** A set of redis-server processes this helper started, with their temp dir. */
class Processes {
  readonly dir = mkdtempSync(join(tmpdir(), 'tessera-topology-'))
  readonly #children = new Map<number, ChildProcess>()
  #hooked = false

  spawn(port: number, args: string[]): ChildProcess {
    const child = spawn('redis-server', args, { stdio: 'ignore', cwd: this.dir })
    child.on('error', () => {}) // reported by the readiness wait
    this.#children.set(port, child)
    if (!this.#hooked) { process.on('exit', this.#onExit); this.#hooked = true }
    return child
  }

  /** Should the test process end without stop() (a crash), its redis-servers do not outlive it. */
  readonly #onExit = (): void => {
    for (const c of this.#children.values()) c.kill('SIGKILL')
  }

  async kill(port: number): Promise<void> {
    const c = this.#children.get(port)
    this.#children.delete(port)
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL') })
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.#children.keys()].map((p) => this.kill(p)))
    process.off('exit', this.#onExit)
    this.#hooked = false
    rmSync(this.dir, { recursive: true, force: true })
  }
}

async function waitForPing(port: number): Promise<void> {
  await waitFor(`redis-server on port ${port}`, async () => (await command(port, 'PING')) === 'PONG', 10_000)
}

export interface TestCluster {
  /** The masters' client ports, as REDIS_CLUSTER_NODES / `clusterNodes` take them. */
  readonly nodes: readonly HostPort[]
  /** `host:port,host:port`, for REDIS_CLUSTER_NODES. */
  readonly nodesEnv: string
  /** A redis:// URL of the first node (startStack's REDIS_URL; the cluster nodes take precedence). */
  readonly url: string
  /** A Cluster client for assertions on what is stored (closed by stop()). */
  client(): Cluster
  stop(): Promise<void>
}

/** A Redis Cluster of `masters` primaries (no replicas), all slots assigned, cluster_state:ok on every node. */
export async function startCluster(opts: { masters?: number } = {}): Promise<TestCluster> {
  const masters = opts.masters ?? 3
  return topology<Cluster, Omit<TestCluster, 'stop'>>(async (procs, clients) => {
    const ports: number[] = []
    const used: number[] = []
    for (let i = 0; i < masters; i++) {
      // The cluster bus needs a port of its own; Redis 7's cluster-port sets it (port+10000 may not exist).
      const [port, bus] = await distinctFreePorts(2, used)
      ports.push(port as number)
      used.push(port as number, bus as number)
      procs.spawn(port as number, [
        '--port', String(port), '--bind', HOST, '--cluster-enabled', 'yes', '--cluster-port', String(bus),
        '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
        '--dir', procs.dir, '--save', '', '--appendonly', 'no',
      ])
    }
    await Promise.all(ports.map(waitForPing))
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 })
    await waitFor('cluster_state:ok on every node', async () => {
      const infos = await Promise.all(ports.map((p) => command(p, 'CLUSTER', 'INFO')))
      return infos.every((info) => /cluster_state:ok/.test(String(info)) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(String(info)))
    })
    const nodes = ports.map((port) => ({ host: HOST, port }))
    return {
      nodes,
      nodesEnv: nodes.map((n) => `${n.host}:${n.port}`).join(','),
      url: `redis://${HOST}:${ports[0]}`,
      client: () => clients.track(new Cluster(nodes.map((n) => ({ ...n })))),
    }
  })
}

export interface TestSentinelGroup {
  /** The name the sentinels monitor (`sentinel monitor <name> ...`). */
  readonly name: string
  readonly sentinels: readonly HostPort[]
  /** `host:port,host:port`, for REDIS_SENTINELS. */
  readonly sentinelsEnv: string
  /** A redis:// URL of the first primary (startStack's REDIS_URL; the sentinels take precedence). */
  readonly url: string
  /** The primary's port as the sentinels report it now. */
  primaryPort(): Promise<number>
  /** SIGKILLs the current primary (no shutdown, no save). Resolves to its port. */
  killPrimary(): Promise<number>
  /**
   * A manual failover (SENTINEL FAILOVER) with the primary still up: the replica is promoted and the
   * old primary is turned into its replica, so clients still connected to it meet READONLY.
   * Resolves to the new primary's port.
   */
  failover(timeoutMs?: number): Promise<number>
  /** Resolves to the new primary's port once every sentinel reports one other than `oldPort`. */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>
  /**
   * Starts the redis-server on `port` again as a replica of the current primary (as an operator
   * brings a failed node back), and waits until the primary sees it online and every sentinel
   * sees that primary up and the node as its replica with the link up.
   */
  restartAsReplica(port: number): Promise<void>
  /**
   * Resolves once the current primary has a replica online (e.g. the old primary, converted by the
   * sentinels) and every sentinel sees that primary up.
   */
  waitForReplica(timeoutMs?: number): Promise<void>
  /** A plain client on the current primary, for assertions (closed by stop()). */
  primaryClient(): Promise<Redis>
  stop(): Promise<void>
}

/**
 * One primary, one replica (`--replicaof`; `replicas` for more) and three sentinels, each with its
 * own generated sentinel.conf (quorum 2, down-after 2000 ms, failover-timeout 3000 ms). Resolves
 * once the replicas are in sync and every sentinel knows them and the two other sentinels.
 */
export async function startSentinelGroup(opts: { name?: string; replicas?: number } = {}): Promise<TestSentinelGroup> {
  const name = opts.name ?? 'mymaster'
  const replicaCount = opts.replicas ?? 1
  return topology<Redis, Omit<TestSentinelGroup, 'stop'>>(async (procs, clients) => {
    const ports = await distinctFreePorts(4 + replicaCount, [])
    const primary = ports[0] as number
    const sentinelPorts = ports.slice(1 + replicaCount)
    // repl-diskless-sync-delay 0: a (re)joining replica gets its full sync at once, not after the default 5 s.
    const dataArgs = (port: number): string[] => ['--port', String(port), '--bind', HOST, '--dir', procs.dir, '--save', '', '--appendonly', 'no',
      '--dbfilename', `dump-${port}.rdb`, '--repl-diskless-sync-delay', '0']
    procs.spawn(primary, dataArgs(primary))
    await waitForPing(primary)
    for (const replica of ports.slice(1, 1 + replicaCount)) {
      procs.spawn(replica, [...dataArgs(replica), '--replicaof', HOST, String(primary)])
      await waitForPing(replica)
      await waitForReplicaOnline(primary, replica)
    }
    for (const port of sentinelPorts) procs.spawn(port, [writeSentinelConf(procs.dir, port, name, primary), '--sentinel'])
    await Promise.all(sentinelPorts.map(waitForPing))
    await waitFor('every sentinel knows the replica and the other sentinels', async () => {
      for (const port of sentinelPorts) {
        const replicas = await command(port, 'SENTINEL', 'REPLICAS', name) as unknown[]
        const others = await command(port, 'SENTINEL', 'SENTINELS', name) as unknown[]
        if (replicas.length < replicaCount || others.length < 2) return false
        if (!String(await command(port, 'SENTINEL', 'CKQUORUM', name)).startsWith('OK')) return false
      }
      return true
    }, 30_000)
    const sentinels = sentinelPorts.map((port) => ({ host: HOST, port }))
    return {
      name,
      sentinels,
      sentinelsEnv: sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      url: `redis://${HOST}:${primary}`,
      ...sentinelControls(procs, clients, name, sentinelPorts, dataArgs),
    }
  })
}

/**
 * sentinel.conf for the sentinel on `port`: quorum 2, down-after 2000 ms, failover-timeout 3000 ms.
 * Returns its path.
 *
 * down-after must stay well above 1000 ms, Sentinel's own PING period, or a kill -9 is followed by a
 * second, spurious failover. After +switch-master a sentinel counts the new primary's silence from
 * the switch, but it reconnects to it no sooner than 1 s after its last attempt to reach the dead
 * one; with down-after 1000 its first PONG may come too late. Seen in the kill -9 test: one sentinel
 * put '+sdown' on the promoted primary 1,007 to 1,029 ms after its switch, '+odown' in the same
 * millisecond (the other sentinels' "down" answers about the dead primary still counted) and
 * '+try-failover'. Either it found no replica to promote, or it promoted the node the test had just
 * brought back, which then had no replica itself: WAIT 1 answered 503 for some 10 s after the
 * recovery (until the sentinels demoted the other node), and restartAsReplica never saw its node as
 * a replica.
 */
function writeSentinelConf(dir: string, port: number, name: string, primary: number): string {
  const conf = join(dir, `sentinel-${port}.conf`)
  writeFileSync(conf, [
    `port ${port}`,
    `bind ${HOST}`,
    `dir ${dir}`,
    'sentinel resolve-hostnames no',
    `sentinel monitor ${name} ${HOST} ${primary} 2`,
    `sentinel down-after-milliseconds ${name} 2000`,
    `sentinel failover-timeout ${name} 3000`,
    `sentinel parallel-syncs ${name} 1`,
    '',
  ].join('\n'))
  return conf
}

type SentinelControls = Pick<TestSentinelGroup, 'primaryPort' | 'killPrimary' | 'waitForFailover' | 'failover' | 'restartAsReplica' | 'waitForReplica' | 'primaryClient'>

/** What a test does to a running sentinel group: find, kill or fail over the primary, bring a node back. */
function sentinelControls(procs: Processes, clients: ClientPool<Redis>, name: string, sentinelPorts: readonly number[], dataArgs: (port: number) => string[]): SentinelControls {
  const primaryPort = async (): Promise<number> => {
    const addr = await command(sentinelPorts[0] as number, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string]
    return Number(addr[1])
  }
  const waitForNewPrimary = async (oldPort: number, timeoutMs: number): Promise<number> => {
    let next = oldPort
    await waitFor('a sentinel failover', async () => {
      const seen = await Promise.all(sentinelPorts.map(async (p) =>
        Number((await command(p, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string])[1])))
      const first = seen[0] as number
      if (first === oldPort || !seen.every((s) => s === first)) return false
      const role = await command(first, 'ROLE') as [string]
      next = first
      return role[0] === 'master'
    }, timeoutMs)
    return next
  }
  // A failover is over only once every sentinel has reconnected to the promoted primary and sees
  // it up: its flags read exactly 'master', not 'disconnected' (a sentinel reconnects to it only
  // after the switch), 's_down', 'o_down' or 'failover_in_progress'. Until then a sentinel may still
  // take it for down and fail over again (see writeSentinelConf). With `replica`, every sentinel
  // must also list that node as a replica of the primary with its link up, as restartAsReplica
  // brings it back. A primary other than `primary` means that the sentinels did fail over again:
  // that fails at once, naming what each sentinel saw.
  const sentinelsSettled = async (primary: number, replica: number | undefined, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    let seen = ''
    for (;;) {
      const views = await Promise.all(sentinelPorts.map(async (p) => {
        const master = fieldsOf(await command(p, 'SENTINEL', 'MASTER', name) as string[])
        const replicas = (await command(p, 'SENTINEL', 'REPLICAS', name) as string[][]).map(fieldsOf)
        return { sentinel: p, master, node: replicas.find((r) => r.get('port') === String(replica)) }
      })).catch((err: unknown) => err as Error)
      if (views instanceof Error) seen = `a sentinel did not answer: ${views.message}`
      else {
        seen = views.map(({ sentinel, master, node }) => `sentinel ${sentinel}: primary ${master.get('port')} [${master.get('flags')}]` +
          (replica === undefined ? '' : node === undefined ? `, no replica ${replica}` : `, replica ${replica} [${node.get('flags')}] link ${node.get('master-link-status')} to ${node.get('master-port')}`)).join('; ')
        if (views.some((v) => v.master.get('port') !== String(primary))) throw new Error(`the sentinels failed over again, from ${primary}: ${seen}`)
        if (views.every(({ master, node }) => master.get('flags') === 'master' && (replica === undefined ||
          (node?.get('flags') === 'slave' && node.get('master-link-status') === 'ok' && node.get('master-port') === String(primary))))) return
      }
      if (Date.now() > deadline) {
        throw new Error(`every sentinel sees primary ${primary} up${replica === undefined ? '' : ` and ${replica} as its replica with the link up`}: not true after ${timeoutMs} ms (${seen})`)
      }
      await sleep(100)
    }
  }
  return {
    primaryPort,
    killPrimary: async () => {
      const port = await primaryPort()
      await procs.kill(port)
      return port
    },
    waitForFailover: (oldPort, timeoutMs = 30_000) => waitForNewPrimary(oldPort, timeoutMs),
    failover: async (timeoutMs = 30_000) => {
      const old = await primaryPort()
      // Retried while the sentinels do not yet see a replica they may promote (-NOGOODSLAVE).
      await waitFor('SENTINEL FAILOVER accepted', async () =>
        (await command(sentinelPorts[0] as number, 'SENTINEL', 'FAILOVER', name).catch(() => 'retry')) === 'OK', timeoutMs)
      return waitForNewPrimary(old, timeoutMs)
    },
    restartAsReplica: async (port) => {
      const current = await primaryPort()
      procs.spawn(port, [...dataArgs(port), '--replicaof', HOST, String(current)])
      await waitForPing(port)
      await waitForReplicaOnline(current, port)
      await sentinelsSettled(current, port, 30_000)
    },
    waitForReplica: async (timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs
      let primary = 0
      await waitFor('a replica online at the primary', async () => {
        primary = await primaryPort()
        return /slave\d+:ip=[^,]+,port=\d+,state=online/.test(String(await command(primary, 'INFO', 'replication')))
      }, timeoutMs)
      // Not the converted node as every sentinel sees it: the sentinel that converted it may show
      // its last INFO of it (role master) for up to 10 s, its INFO period for a replica; but a
      // sentinel reconfigures a node only when an INFO reply comes in, and the next one shows it
      // replicating from the primary.
      await sentinelsSettled(primary, undefined, Math.max(deadline - Date.now(), 1000))
    },
    primaryClient: async () => clients.track(new Redis(await primaryPort(), HOST)),
  }
}

/** A SENTINEL MASTER / REPLICAS entry (a flat field, value, field, value list) as a map. */
function fieldsOf(flat: readonly string[]): Map<string, string> {
  const f = new Map<string, string>()
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i] as string, flat[i + 1] as string)
  return f
}

/** Waits until `primary`'s INFO replication lists the replica on `replicaPort` as online. */
async function waitForReplicaOnline(primary: number, replicaPort: number): Promise<void> {
  await waitFor(`replica ${replicaPort} online at primary ${primary}`, async () => {
    const info = String(await command(primary, 'INFO', 'replication'))
    return new RegExp(`slave\\d+:ip=[^,]+,port=${replicaPort},state=online`).test(info)
  }, 20_000)
}

/** `n` free loopback ports, distinct from each other and from `taken`. */
async function distinctFreePorts(n: number, taken: readonly number[]): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) {
    const p = await freePort(HOST)
    if (!ports.includes(p) && !taken.includes(p)) ports.push(p)
  }
  return ports
}
