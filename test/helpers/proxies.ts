/**
 * Debian's nginx and Caddy in front of a plain HTTP echo, configured with the snippets of
 * docs/forward-auth.md as they are written there (only the gate's address replaced), each on a free
 * port of its own loopback host, in a temp directory. For the forward-auth flow test and the bench.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './net.js'

/** The gate's address as the doc writes it; every copy is replaced by the real one. */
const DOC_GATE = '127.0.0.1:9091'

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try { readFileSync(join(dir, 'package.json')); return dir } catch { /* up */ }
    const up = resolve(dir, '..')
    if (up === dir) throw new Error('no package.json above the test helpers')
    dir = up
  }
}

/** The fenced block that follows `<!-- file: <name> -->` in docs/forward-auth.md, with the gate's address in. */
export function docFile(name: string, gate: string): string {
  const doc = readFileSync(join(repoRoot(), 'docs', 'forward-auth.md'), 'utf8')
  const m = new RegExp(`<!-- file: ${name.replace(/\./g, '\\.')} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(doc)
  if (m === null) throw new Error(`docs/forward-auth.md has no block for ${name}`)
  return (m[1] as string).replaceAll(DOC_GATE, gate)
}

export interface RunningProxy {
  /** The protected app's origin, e.g. http://127.0.0.4:40123. */
  readonly url: string
  stop(): Promise<void>
}

/** Until a TCP connection to host:port is accepted, for at most 20 s. */
async function untilListening(host: string, port: number, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output()}`)
    const ok = await new Promise<boolean>((done) => {
      const s = connect(port, host)
      s.once('connect', () => { s.destroy(); done(true) })
      s.once('error', () => done(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`not listening on ${host}:${port} after 20 s: ${output()}`)
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv, dir: string, host: string, port: number): Promise<RunningProxy> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (b: Buffer): void => { output = (output + b.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((done) => { child.once('exit', () => done()); child.kill('SIGTERM') })
    }
    rmSync(dir, { recursive: true, force: true })
  }
  return untilListening(host, port, child, () => output).then(
    () => ({ url: `http://${host}:${port}`, stop }),
    async (err: unknown) => { await stop(); throw new Error(`${command}: ${(err as Error).message}`) },
  )
}

/** nginx on `host` (on `port`, or a free one), its one server protected by the doc's three files, proxying to `upstream`. */
export async function startNginx(host: string, gate: string, upstream: string, port?: number): Promise<RunningProxy> {
  port ??= await freePort(host)
  const dir = mkdtempSync(join(tmpdir(), 'tessera-nginx-'))
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, t))
  writeFileSync(join(dir, 'tessera-upstream.conf'), docFile('tessera-upstream.conf', gate))
  writeFileSync(join(dir, 'tessera-authz.conf'), docFile('tessera-authz.conf', gate))
  writeFileSync(join(dir, 'tessera-protect.conf'), docFile('tessera-protect.conf', gate))
  // As root, nginx's workers would switch to `nobody`, who cannot read this private temp directory.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : ''
  writeFileSync(join(dir, 'nginx.conf'), `${user}worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
    access_log off;
    # nginx closes a client's kept-alive connection after 1,000 requests by default; a load
    # generator that has already sent the next request then sees a reset (the bench counted these
    # as forward-auth errors: about one per 10,000 page views). Not a setting of the docs' snippets.
    keepalive_requests 1000000;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/tessera-upstream.conf;
    server {
        listen ${host}:${port};
        server_name ${host};
        include ${dir}/tessera-authz.conf;
        location / {
            include ${dir}/tessera-protect.conf;
            proxy_pass http://${upstream};
        }
    }
}
`)
  return run('nginx', ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], process.env, dir, host, port)
}

/** Caddy on `host` (on `port`, or a free one), its one site importing the doc's snippet, proxying to `upstream`. */
export async function startCaddy(host: string, gate: string, upstream: string, port?: number): Promise<RunningProxy> {
  port ??= await freePort(host)
  const dir = mkdtempSync(join(tmpdir(), 'tessera-caddy-'))
  writeFileSync(join(dir, 'tessera.caddy'), docFile('tessera.caddy', gate))
  // No admin endpoint (its fixed port would clash between test files) and no certificates.
  writeFileSync(join(dir, 'Caddyfile'), `{
	admin off
	auto_https off
}

import ${dir}/tessera.caddy

http://${host}:${port} {
	bind ${host}
	import tessera
	reverse_proxy ${upstream}
}
`)
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') }
  return run('caddy', ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], env, dir, host, port)
}

export interface Echo {
  readonly address: string
  close(): Promise<void>
}

/** The protected app: not Node-aware, it only prints what reached it (path and Remote-* headers) as JSON. */
export async function startEcho(host = '127.0.0.1'): Promise<Echo> {
  const server: Server = createServer((req, res) => {
    const remote = Object.fromEntries(Object.entries(req.headers).filter(([k]) => /^remote[-_]/.test(k)))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ path: req.url, method: req.method, remote }))
  })
  await new Promise<void>((done) => server.listen(0, host, () => done()))
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  return {
    address: `${host}:${port}`,
    close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => done()) }),
  }
}
