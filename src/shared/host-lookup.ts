/**
 * Host name lookups for Redis connections that never hold up the process's exit.
 *
 * Node's default lookup (dns.lookup) calls getaddrinfo on libuv's thread pool, and a Node process's
 * exit (process.exit as well as the end of the event loop) joins those threads first: a lookup in
 * flight then delays the exit until it ends, up to the resolver's timeout (5 s by default), and it
 * cannot be cancelled (libuv/libuv#364). An ioredis client reconnecting to a host name nobody answers
 * for (compose's `redis` once its container is gone) has such a lookup in flight nearly all the time,
 * so a stop on SIGTERM took up to 5 s instead of milliseconds.
 *
 * Here the name is looked up the way getaddrinfo does with `hosts: files dns`, but with DNS queries
 * sent from the event loop (c-ares, as dns.Resolver does), which an exit does not wait for: first
 * /etc/hosts, then the name as resolv.conf's search list and `ndots` make it, A and AAAA records from
 * the nameservers resolv.conf lists, with its timeout and attempts. Linux only (where the IdP and the
 * example apps run in containers); elsewhere, dns.lookup as before.
 */
import { lookup as systemLookup, getDefaultResultOrder, type LookupAddress, type LookupOptions } from 'node:dns'
import { Resolver } from 'node:dns/promises'
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'

type Family = 0 | 4 | 6

/** net.connect's `lookup` option (the signature of dns.lookup as net calls it). */
export function lookupHost(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  if (process.platform !== 'linux') {
    systemLookup(hostname, options, callback as never)
    return
  }
  const family: Family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0
  resolveHost(hostname, family).then((addresses) => {
    const first = addresses[0] as LookupAddress
    if (options.all === true) callback(null, addresses)
    else callback(null, first.address, first.family)
  }, (err: NodeJS.ErrnoException) => { callback(err, options.all === true ? [] : '') })
}

/** ioredis Cluster's `dnsLookup` option: one address for a startup node's host name. */
export function lookupOne(hostname: string, callback: (err: NodeJS.ErrnoException | null, address: string, family?: number) => void): void {
  lookupHost(hostname, {}, (err, address, family) => { callback(err, address as string, family) })
}

/** Every address of `hostname` (at least one), IPv4 first unless dns.setDefaultResultOrder says otherwise. */
export async function resolveHost(hostname: string, family: Family = 0): Promise<LookupAddress[]> {
  const literal = isIP(hostname)
  if (literal !== 0) return [{ address: hostname, family: literal }]
  const name = hostname.toLowerCase()
  let found = await fromHostsFile(name.replace(/\.$/, ''), family)
  if (found.length === 0 && /(^|\.)localhost\.?$/.test(name)) found = loopback(family) // RFC 6761
  if (found.length === 0) found = await fromDns(name, family)
  const v6first = getDefaultResultOrder() === 'ipv6first'
  return found.sort((a, b) => (a.family === b.family ? 0 : (a.family === 6) === v6first ? -1 : 1))
}

/** /etc/hosts: every line naming `name` (case-insensitively), in the file's order. */
async function fromHostsFile(name: string, family: Family): Promise<LookupAddress[]> {
  let text: string
  try {
    text = await readFile('/etc/hosts', 'utf8')
  } catch {
    return []
  }
  const found: LookupAddress[] = []
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/)
    const f = isIP(address ?? '')
    if (f === 0 || (family !== 0 && f !== family)) continue
    if (names.some((n) => n.toLowerCase() === name) && !found.some((a) => a.address === address)) {
      found.push({ address: address as string, family: f })
    }
  }
  return found
}

function loopback(family: Family): LookupAddress[] {
  return [
    ...(family === 6 ? [] : [{ address: '127.0.0.1', family: 4 }]),
    ...(family === 4 ? [] : [{ address: '::1', family: 6 }]),
  ]
}

/** The search list and ndots, as glibc reads them: resolv.conf, then LOCALDOMAIN and RES_OPTIONS. */
export interface SearchConfig {
  readonly search: readonly string[]
  readonly ndots: number
}

export function parseSearchConfig(resolvConf: string, env: NodeJS.ProcessEnv = {}): SearchConfig {
  let search: string[] = []
  let ndots = 1
  const options = (words: string[]): void => {
    for (const w of words) {
      const m = /^ndots:(\d+)$/.exec(w)
      if (m !== null) ndots = Math.min(Number(m[1]), 15)
    }
  }
  for (const line of resolvConf.split('\n')) {
    const [keyword, ...words] = line.replace(/[#;].*/, '').trim().split(/\s+/)
    // The last `search` or `domain` line wins.
    if (keyword === 'search' || keyword === 'domain') search = words.filter((w) => w !== '')
    else if (keyword === 'options') options(words)
  }
  if (env.LOCALDOMAIN !== undefined) search = env.LOCALDOMAIN.split(/\s+/).filter((w) => w !== '')
  if (env.RES_OPTIONS !== undefined) options(env.RES_OPTIONS.split(/\s+/))
  return { search: search.map((d) => d.replace(/^\.|\.$/g, '')).filter((d) => d !== ''), ndots }
}

/** The names to ask for, in order, as glibc's res_nsearch tries them. */
export function candidateNames(name: string, config: SearchConfig): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)]
  const searched = config.search.map((domain) => `${name}.${domain}`)
  const dots = name.split('.').length - 1
  return dots >= config.ndots ? [name, ...searched] : [...searched, name]
}

/** A name's absence: try the next candidate. Anything else (a timeout, a refusal) ends the search, as in glibc. */
const ABSENT = new Set(['ENOTFOUND', 'ENODATA', 'ESERVFAIL', 'EBADRESP', 'ENONAME'])

async function fromDns(name: string, family: Family): Promise<LookupAddress[]> {
  let resolvConf = ''
  try {
    resolvConf = await readFile('/etc/resolv.conf', 'utf8')
  } catch { /* no search list: the name as it is */ }
  // A resolver per lookup: it reads resolv.conf's nameservers, timeout and attempts now, not at start-up.
  const resolver = new Resolver()
  let lastError: NodeJS.ErrnoException | undefined
  for (const candidate of candidateNames(name, parseSearchConfig(resolvConf, process.env))) {
    const answers = await Promise.allSettled([
      family === 6 ? Promise.resolve([]) : resolver.resolve4(candidate),
      family === 4 ? Promise.resolve([]) : resolver.resolve6(candidate),
    ])
    const found: LookupAddress[] = []
    for (const [i, answer] of answers.entries()) {
      if (answer.status === 'fulfilled') for (const address of answer.value) found.push({ address, family: i === 0 ? 4 : 6 })
    }
    if (found.length > 0) return found
    const errors = answers.flatMap((a) => (a.status === 'rejected' ? [a.reason as NodeJS.ErrnoException] : []))
    const fatal = errors.find((e) => !ABSENT.has(e.code ?? ''))
    lastError = fatal ?? errors[0] ?? lastError
    if (fatal !== undefined) break
  }
  const code = lastError?.code ?? 'ENOTFOUND'
  throw Object.assign(new Error(`lookup ${code} ${name}`), { code, syscall: 'lookup', hostname: name })
}
