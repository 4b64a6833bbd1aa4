/** `npm run load`'s app side: the example app (examples/remote-app.ts) with `tessera/remote`, as its own process. */
import { buildExampleApp } from '../../examples/remote-app.js'
import type { RedisConnection } from '../../src/shared/redis.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'

/** Handed over in the LOAD_APP environment variable (JSON). */
export interface AppChild { name: string; origin: string; host: string; port: number; idpUrl: string; syncKeys: string; sessionSecret: string; redis: string | RedisConnection; links: string[] }

const c = JSON.parse(process.env.LOAD_APP as string) as AppChild
const app = buildExampleApp({ name: c.name, origin: c.origin, idpUrl: c.idpUrl, appKeys: formatAppKeys(parseSyncKeys(c.syncKeys, 'SYNC_KEYS', []) as Keyring, c.origin), sessionSecret: c.sessionSecret, redis: c.redis, links: c.links })
await app.listen({ host: c.host, port: c.port })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
process.on('disconnect', () => process.exit(0))
process.send?.('ready')
