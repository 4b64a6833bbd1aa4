/**
 * The forward-auth stand the flow and e2e tests share: the usual stack (IdP, Fastify apps A and B),
 * a gate on 127.0.0.1 that trusts only 127.0.0.1 (where both proxies connect from) and holds the keys
 * of the two proxied origins only, and nginx on 127.0.0.4 and Caddy on 127.0.0.5, each configured
 * with docs/forward-auth.md's snippets in front of a plain echo. The users are alice and carol (no
 * groups, no email).
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { buildGate } from '../../src/remote/gate.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { freePort } from './net.js'
import { startCaddy, startEcho, startNginx, type Echo, type RunningProxy } from './proxies.js'
import type { TestRedis } from './redis-server.js'
import { startStack, type Stack } from './stack.js'
import { appendFileSync } from 'node:fs'
import { PASSWORD_HASH, writeUsersFile } from './users.js'

export const NGINX_HOST = '127.0.0.4'
export const CADDY_HOST = '127.0.0.5'
export const GATE_SECRET = 'a gate secret of at least thirty-two characters'
/** A user with no groups and no email, beside the usual alice: the gate sends her Remote-Groups and Remote-Email empty. */
export const CAROL = 'carol'

export interface ForwardAuthStand {
  readonly stack: Stack
  readonly gate: FastifyInstance
  readonly gateUrl: string
  readonly echo: Echo
  readonly nginx: RunningProxy
  readonly caddy: RunningProxy
  close(): Promise<void>
}

export async function startForwardAuthStand(redis: Pick<TestRedis, 'url'>, gateLogger: FastifyServerOptions['logger'] = false): Promise<ForwardAuthStand> {
  const [nginxPort, caddyPort, gatePort] = await Promise.all([freePort(NGINX_HOST), freePort(CADDY_HOST), freePort('127.0.0.1')])
  const origins = [`http://${NGINX_HOST}:${nginxPort}`, `http://${CADDY_HOST}:${caddyPort}`]
  const users = writeUsersFile()
  appendFileSync(users, `  ${CAROL}:\n    displayname: Carol\n    password: "${PASSWORD_HASH}"\n`)
  const stack = await startStack(redis, { extraRemoteHosts: origins, env: { USERS_FILE: users } })
  const started: { close(): Promise<void> }[] = [stack]
  const close = async (): Promise<void> => { for (const s of started.reverse()) await s.close() }
  try {
    const gate = buildGate({
      idpUrl: stack.idpUrl, redis: redis.url, sessionSecret: GATE_SECRET, proxies: '127.0.0.1',
      hosts: origins.map((origin) => ({ origin, appKeys: formatAppKeys(stack.config.keyring, origin) })),
    }, { logger: gateLogger })
    started.push(gate)
    await gate.listen({ host: '127.0.0.1', port: gatePort })
    const echo = await startEcho()
    started.push(echo)
    const nginx = await startNginx(NGINX_HOST, `127.0.0.1:${gatePort}`, echo.address, nginxPort)
    started.push({ close: () => nginx.stop() })
    const caddy = await startCaddy(CADDY_HOST, `127.0.0.1:${gatePort}`, echo.address, caddyPort)
    started.push({ close: () => caddy.stop() })
    return { stack, gate, gateUrl: `http://127.0.0.1:${gatePort}`, echo, nginx, caddy, close }
  } catch (err) {
    await close()
    throw err
  }
}
