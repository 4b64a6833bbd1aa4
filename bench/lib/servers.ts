/** Every server under test, each in its own child process on its own loopback address (see HOSTS). */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../../test/helpers/net.js'
import { startNginx, type RunningProxy } from '../../test/helpers/proxies.js'
import { writeBenchUsersFile } from './signin.js'
import type { ChildConfig } from './common.js'
import type { Meter } from './meter.js'
import { ServerProcess } from './proc.js'
import { AUTO_PIPELINING, HOSTS, LOG_LEVEL, PROFILE, VERIFY_SIGNATURE, profileDir, runDir, serversDir } from './settings.js'

export interface Servers {
  readonly idp: ServerProcess
  readonly app: ServerProcess
  readonly op: ServerProcess
  readonly rp: ServerProcess
  /** @fastify/session with rolling: false, and with its default (rolling: true). */
  readonly fsNoRolling: ServerProcess
  readonly fsDefault: ServerProcess
  readonly hello: ServerProcess
  readonly bareIdp: ServerProcess
  readonly bareApp: ServerProcess
  /** The forward-auth gate, the plain app behind nginx, and nginx (not a Node child: its CPU is not counted). */
  readonly gate: ServerProcess
  readonly remoteUserPage: ServerProcess
  readonly nginx: RunningProxy
  /** The forward-auth floor: the bare gate (bare.ts, role 'gate') behind a second nginx with the same snippets, the same plain app. */
  readonly bareGate: ServerProcess
  readonly nginxFloor: RunningProxy
  /** The argon2id hash (shipped costs) of the IdP's capacity users, for the raw argon2 floor. */
  readonly capacityPhc: string
  /** The TOTP step's floor (totp-floor.ts), and the IdP's FACTOR_KEYS (the driver enrols the TOTP users with it). */
  readonly totpFloor: ServerProcess
  readonly factorKeys: string
}

type Spawn = (name: string, script: string, config: Omit<ChildConfig, 'redisUrl'> & Record<string, unknown>, nodeFlags?: readonly string[]) => ServerProcess

/** The Node flags `npm start` gives the IdP (package.json), so the bench's IdP runs as the product does. */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  return pkg.scripts.start.split(' ').filter((word) => word.startsWith('--'))
}

/** Starts every server on the meter's Redis, adds it to the meter's account, and waits until all are ready. */
export async function startServers(meter: Meter): Promise<Servers> {
  const ports = Object.fromEntries(await Promise.all(Object.entries(HOSTS).map(async ([k, h]) => [k, await freePort(h)] as const))) as Record<keyof typeof HOSTS, number>
  const url = (k: keyof typeof HOSTS): string => `http://${HOSTS[k]}:${ports[k]}`
  const syncKeys = `k1:${randomBytes(32).toString('base64url')}`
  const secret = (): string => randomBytes(32).toString('base64url')
  const spawnServer: Spawn = (name, script, config, nodeFlags = []) => {
    const execArgv = [...nodeFlags, ...(PROFILE.has(name) || PROFILE.has('all') ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [])]
    const s = new ServerProcess(name, new URL(script, serversDir), { ...config, redisUrl: meter.redis.url } as ChildConfig, { logFile: join(runDir, `${name}.log`), execArgv })
    meter.servers.push(s)
    return s
  }

  const users = await writeBenchUsersFile()
  const factorKeys = `f1:${randomBytes(32).toString('base64url')}`
  const idp = spawnServer('idp', 'idp.js', {
    host: HOSTS.idp, port: ports.idp, knownRemoteHosts: `${url('app')},${url('forwardAuth')}`, syncKeys, sessionSecret: secret(), usersFile: users.file, factorKeys, logLevel: LOG_LEVEL, autoPipelining: AUTO_PIPELINING,
  }, startFlags())
  const app = spawnServer('app', 'app.js', {
    host: HOSTS.app, port: ports.app, idpUrl: url('idp'), syncKeys, sessionSecret: secret(), logLevel: LOG_LEVEL, autoPipelining: AUTO_PIPELINING,
  })
  const clientSecret = secret()
  const op = spawnServer('op', 'oidc-provider.js', {
    host: HOSTS.op, port: ports.op, clientId: 'bench-rp', clientSecret, redirectUri: `${url('rp')}/cb`,
  })
  const fsNoRolling = spawnServer('fastify-session', 'fastify-session.js', { host: HOSTS.fastifySession, port: ports.fastifySession, rolling: false, sessionSecret: secret(), logLevel: LOG_LEVEL })
  const fsDefault = spawnServer('fastify-session-default', 'fastify-session.js', { host: HOSTS.fastifySessionDefault, port: ports.fastifySessionDefault, rolling: true, sessionSecret: secret(), logLevel: LOG_LEVEL })
  const hello = spawnServer('hello', 'hello.js', { host: HOSTS.hello, port: ports.hello })
  const bareKey = secret()
  // With the IdP's Node flags, like for like: its RSS after the load is the floor for the IdP's.
  const bareIdp = spawnServer('bare-idp', 'bare.js', { host: HOSTS.bareIdp, port: ports.bareIdp, role: 'idp', peerUrl: url('bareApp'), key: bareKey }, startFlags())
  const bareApp = spawnServer('bare-app', 'bare.js', { host: HOSTS.bareApp, port: ports.bareApp, role: 'app', peerUrl: url('bareIdp'), key: bareKey })
  const gate = spawnServer('gate', 'gate.js', {
    host: HOSTS.gate, port: ports.gate, idpUrl: url('idp'), protectedOrigin: url('forwardAuth'), syncKeys, sessionSecret: secret(), logLevel: LOG_LEVEL, autoPipelining: false,
  })
  const bareGate = spawnServer('bare-gate', 'bare.js', { host: HOSTS.bareGate, port: ports.bareGate, role: 'gate', peerUrl: url('bareIdp'), key: bareKey })
  const totpFloor = spawnServer('totp-floor', 'totp-floor.js', { host: HOSTS.totpFloor, port: ports.totpFloor })
  const remoteUserPage = spawnServer('remote-user-page', 'remote-user-page.js', { host: HOSTS.remoteUserPage, port: ports.remoteUserPage })
  await op.ready // the RP reads the provider's discovery document when it starts
  const rp = spawnServer('rp', 'oidc-rp.js', {
    host: HOSTS.rp, port: ports.rp, issuer: url('op'), clientId: 'bench-rp', clientSecret, sessionSecret: secret(), logLevel: LOG_LEVEL, verifySignature: VERIFY_SIGNATURE,
  })
  await Promise.all(meter.servers.map((s) => s.ready))
  // docs/forward-auth.md's nginx snippets, as the forward-auth test runs them.
  const nginx = await startNginx(HOSTS.forwardAuth, `${HOSTS.gate}:${ports.gate}`, `${HOSTS.remoteUserPage}:${ports.remoteUserPage}`, ports.forwardAuth)
  // Its floor: the same snippets in front of the same plain app, the gate replaced by the bare one.
  const nginxFloor = await startNginx(HOSTS.forwardAuthFloor, `${HOSTS.bareGate}:${ports.bareGate}`, `${HOSTS.remoteUserPage}:${ports.remoteUserPage}`, ports.forwardAuthFloor)
  return { idp, app, op, rp, fsNoRolling, fsDefault, hello, bareIdp, bareApp, gate, remoteUserPage, nginx, bareGate, nginxFloor, capacityPhc: users.phc, totpFloor, factorKeys }
}
