/**
 * Redis host names are looked up like getaddrinfo with `hosts: files dns` (/etc/hosts, then DNS with
 * resolv.conf's search list and ndots), but with queries from the event loop, which a process's exit
 * does not wait for (test/deploy-shutdown.test.ts has the stop; this file, that names still resolve).
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { candidateNames, parseSearchConfig, resolveHost } from '../../src/shared/host-lookup.js'
import { startRedis } from '../helpers/redis-server.js'
import { nameServerSocket, ownResolverSkip, resolvConfFile, withResolvConf } from '../helpers/own-resolver.js'

test('the names tried follow glibc: the search list first below ndots dots, the name as it is first at or above, only it with a final dot', () => {
  const k8s = parseSearchConfig('nameserver 10.96.0.10\nsearch ns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n')
  assert.deepEqual(k8s, { search: ['ns.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 })
  assert.deepEqual(candidateNames('redis', k8s), ['redis.ns.svc.cluster.local', 'redis.svc.cluster.local', 'redis.cluster.local', 'redis'])
  assert.deepEqual(candidateNames('redis.example.com', parseSearchConfig('search dns.podman\n')), ['redis.example.com', 'redis.example.com.dns.podman'])
  assert.deepEqual(candidateNames('redis', parseSearchConfig('search dns.podman\n')), ['redis.dns.podman', 'redis'])
  assert.deepEqual(candidateNames('redis.example.com.', k8s), ['redis.example.com'])
  assert.deepEqual(candidateNames('redis', parseSearchConfig('nameserver 127.0.0.11\noptions ndots:0\n')), ['redis'])
})

test('resolv.conf: the last search or domain line wins; LOCALDOMAIN and RES_OPTIONS override it, as in glibc', () => {
  assert.deepEqual(parseSearchConfig('search a.test b.test\ndomain c.test # comment\n'), { search: ['c.test'], ndots: 1 })
  assert.deepEqual(parseSearchConfig('search a.test\noptions timeout:1 ndots:3\n', { LOCALDOMAIN: 'x.test y.test', RES_OPTIONS: 'ndots:2' }), { search: ['x.test', 'y.test'], ndots: 2 })
  assert.deepEqual(parseSearchConfig('options ndots:99\n'), { search: [], ndots: 15 })
})

test('an address is itself; localhost comes from /etc/hosts or is loopback', async () => {
  assert.deepEqual(await resolveHost('127.0.0.1'), [{ address: '127.0.0.1', family: 4 }])
  assert.deepEqual(await resolveHost('::1'), [{ address: '::1', family: 6 }])
  const local = await resolveHost('localhost', 4)
  assert.ok(local.length > 0 && local.every((a) => a.family === 4 && a.address.startsWith('127.')), JSON.stringify(local))
})

/** Answers A queries for `names` with 127.0.0.1, NXDOMAIN for any other name, no data for other types. */
async function nameServer(names: readonly string[]): Promise<{ address: string; asked: string[] }> {
  const { socket, address } = await nameServerSocket()
  const asked: string[] = []
  socket.on('message', (query, peer) => {
    const labels: string[] = []
    let i = 12
    while (query[i] !== 0 && i < query.length) { labels.push(query.subarray(i + 1, i + 1 + (query[i] as number)).toString()); i += 1 + (query[i] as number) }
    const question = query.subarray(12, i + 5)
    const name = labels.join('.').toLowerCase()
    const isA = query.readUInt16BE(i + 1) === 1
    asked.push(`${name}/${isA ? 'A' : 'other'}`)
    const known = names.includes(name)
    const header = Buffer.alloc(12)
    query.copy(header, 0, 0, 2)
    header.writeUInt16BE(known ? 0x8180 : 0x8183, 2) // a response, recursion available; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(known && isA ? 1 : 0, 6)
    const answer = known && isA ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]) : Buffer.alloc(0)
    socket.send(Buffer.concat([header, question, answer]), peer.port, peer.address)
  })
  return { address, asked }
}

test('a Redis client reaches Redis by a name found through the search list, and an unknown name fails at once', { skip: ownResolverSkip, timeout: 30_000 }, async () => {
  const redis = await startRedis()
  after(() => redis.stop())
  const dns = await nameServer(['redis.tessera.test'])
  const resolvConf = resolvConfFile(`nameserver ${dns.address}\nsearch nothing.test tessera.test\noptions timeout:2 attempts:1\n`)
  const redisModule = fileURLToPath(new URL('../../src/shared/redis.js', import.meta.url))
  const lookupModule = fileURLToPath(new URL('../../src/shared/host-lookup.js', import.meta.url))
  const script = `
    const { createRedis } = await import(${JSON.stringify(redisModule)})
    const { resolveHost } = await import(${JSON.stringify(lookupModule)})
    const unknown = await resolveHost('nobody').then(() => 'resolved', (err) => err.code)
    const client = createRedis('redis://redis:${redis.port}', { enableOfflineQueue: true })
    client.on('error', () => {})
    const pong = await client.ping()
    client.disconnect()
    console.log(JSON.stringify({ unknown, pong }))`
  const [command, args] = withResolvConf(resolvConf, process.execPath, ['--input-type=module', '-e', script])
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const code = await new Promise((resolve) => child.once('exit', resolve))
  assert.equal(code, 0, out)
  assert.deepEqual(JSON.parse(out), { unknown: 'ENOTFOUND', pong: 'PONG' })
  // Searched in resolv.conf's order, the name as it is last; A and AAAA alike.
  assert.deepEqual(dns.asked.filter((q) => q.endsWith('/A')), ['nobody.nothing.test/A', 'nobody.tessera.test/A', 'nobody/A', 'redis.nothing.test/A', 'redis.tessera.test/A'])
})
