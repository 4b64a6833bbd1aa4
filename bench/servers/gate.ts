/** Bench server: the forward-auth gate (`buildGate`, as `tessera gate` runs it), for the nginx-protected host only. */
import { buildGate } from '../../src/remote/gate.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'
import { loggerOptions } from '../../src/shared/logger.js'
import { childConfig, runChild } from '../lib/child.js'
import type { TesseraChildConfig } from '../lib/tessera-child.js'

interface GateChildConfig extends TesseraChildConfig {
  idpUrl: string
  /** The nginx-protected origin. */
  protectedOrigin: string
}

runChild(async () => {
  const c = childConfig<GateChildConfig>()
  const gate = buildGate({
    idpUrl: c.idpUrl,
    redis: c.redisUrl,
    sessionSecret: c.sessionSecret,
    // nginx reaches the gate over loopback.
    proxies: '127.0.0.0/8',
    // The gate holds only the protected origin's keys, as `npx tessera app-key <origin>` prints them.
    hosts: [{ origin: c.protectedOrigin, appKeys: formatAppKeys(parseSyncKeys(c.syncKeys, 'SYNC_KEYS', []) as Keyring, c.protectedOrigin) }],
  }, { logger: loggerOptions(c.logLevel) })
  await gate.listen({ host: c.host, port: c.port })
  return { close: () => gate.close() }
})
