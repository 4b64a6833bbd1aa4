/**
 * Bench server: the app behind nginx, not Node-aware in spirit: plain node:http, no framework, no
 * session, it only prints the page for the user nginx names in Remote-User.
 */
import { createServer } from 'node:http'
import { childConfig, runChild } from '../lib/child.js'
import { page } from '../lib/common.js'

runChild(async () => {
  const c = childConfig()
  const server = createServer((req, res) => {
    const user = req.headers['remote-user']
    if (typeof user !== 'string' || user === '') { res.writeHead(401).end(); return }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(user))
  })
  await new Promise<void>((ok) => server.listen(c.port, c.host, () => ok()))
  return { close: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()) }) }
})
