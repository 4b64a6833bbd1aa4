/** Bench server: a plain Fastify hello-world, no logger, no plugins: the floor on this machine. */
import Fastify from 'fastify'
import { childConfig, runChild } from '../lib/child.js'

runChild(async () => {
  const c = childConfig()
  const app = Fastify({ logger: false })
  app.get('/', async () => ({ hello: 'world' }))
  await app.listen({ host: c.host, port: c.port })
  return { close: () => app.close() }
})
