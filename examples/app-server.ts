/**
 * Runs one example app from environment variables (used by docker-compose.yml):
 *   APP_NAME, APP_ORIGIN, IDP_URL, APP_KEYS, REDIS_URL, APP_SESSION_SECRET, PORT, HOST, APP_LINKS
 * (SYNC_KEYS instead of APP_KEYS still works, with a warning: the app would hold the IdP's keys).
 */
import { exitOnSignalsWhileLoading, stopOnSignals } from '../src/shared/shutdown.js'

exitOnSignalsWhileLoading()
// Loaded after the line above (a few hundred ms), so a stop meanwhile is not ignored.
const { buildExampleApp } = await import('./remote-app.js')

const need = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === '') {
    process.stderr.write(`example app: ${name} is required\n`)
    process.exit(1)
  }
  return value
}

const app = buildExampleApp({
  name: process.env.APP_NAME ?? 'Example app',
  origin: need('APP_ORIGIN'),
  idpUrl: need('IDP_URL'),
  ...(process.env.APP_KEYS === undefined && process.env.SYNC_KEYS !== undefined ? { syncKeys: need('SYNC_KEYS') } : { appKeys: need('APP_KEYS') }),
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  sessionSecret: need('APP_SESSION_SECRET'),
  links: (process.env.APP_LINKS ?? '').split(',').filter((s) => s !== ''),
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
})
stopOnSignals(app)
try {
  await app.listen({ port: Number(process.env.PORT ?? 3001), host: process.env.HOST ?? '127.0.0.1' })
} catch (err) {
  process.stderr.write(`example app: ${(err as Error).message}\n`)
  process.exit(1)
}
