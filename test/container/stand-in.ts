/**
 * Local stand-ins for the registry images the Dockerfile and docker-compose.yml name, for machines
 * that reach no container registry: Debian 12 from debootstrap (minbase, trimmed like debian:*-slim),
 * then `node:24-slim` (Node 24 and npm, a `node` user with uid 1000, the same entrypoint) and
 * `redis:7-alpine` (Debian's Redis 7, protected mode off, /data, user redis) on it. They are tagged
 * under the real names, so the Dockerfile and the compose file are used unchanged, and labelled, so
 * a real image pulled under that name is used as it is and never overwritten. Built once, then kept
 * in podman's image store (warm runs reuse them); what differs from the real images: docs/deploy.md.
 */
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { exec, podman } from './podman.js'

export const NODE_IMAGE = 'docker.io/library/node:24-slim'
export const REDIS_IMAGE = 'docker.io/library/redis:7-alpine'
const DEBIAN_IMAGE = 'localhost/tessera-stand-in/debian:bookworm-slim'
const LABEL = 'org.tessera.stand-in'
/** Part of every stand-in's label: change it when a recipe below changes, and they are rebuilt. */
const RECIPE = 'recipe 1'
const DEBIAN_MIRROR = 'http://deb.debian.org/debian'

type Log = (line: string) => void

/** The stand-in label of a local image: undefined when there is no such image, '' when it is not ours. */
async function standInLabel(image: string): Promise<string | undefined> {
  const run = await exec('podman', ['image', 'inspect', '--format', `{{index .Config.Labels "${LABEL}"}}`, image])
  if (run.code !== 0) return undefined
  const label = run.stdout.trim()
  return label === '<no value>' ? '' : label
}

/** True when `image` must be (re)built for `key`; a real (unlabelled) image is kept. */
async function stale(image: string, key: string, log: Log): Promise<boolean> {
  const label = await standInLabel(image)
  if (label === '') log(`${image}: a real image (no stand-in label), used as it is`)
  return label !== '' && label !== key
}

/** Makes sure the stand-ins exist; returns what the node image holds, for the test's diagnostics. */
async function ensureStandIns(log: Log): Promise<{ node: string; npm: string }> {
  const node24 = spawnSync('bash', ['.ci/node', '24'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).stdout.trim()
  const nodeVersion = spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout.trim()
  if (!nodeVersion.startsWith('v24.')) throw new Error(`.ci/node 24 gave ${node24} (${nodeVersion}), not Node 24`)
  // The npm on the PATH (bin/npm -> …/npm/bin/npm-cli.js), not `npm root -g`: that follows the
  // running node's prefix, which for Node 24 from the npm package holds no npm.
  const npmCli = realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim())
  const npmDir = dirname(dirname(npmCli))
  const npmVersion = (JSON.parse(readFileSync(join(npmDir, 'package.json'), 'utf8')) as { version: string }).version

  const debianKey = `debian bookworm minbase; ${RECIPE}`
  const debianRebuilt = await stale(DEBIAN_IMAGE, debianKey, log)
  if (debianRebuilt) await buildDebian(debianKey, log)
  const nodeKey = `node ${nodeVersion}; npm ${npmVersion}; ${debianKey}`
  if (debianRebuilt || await stale(NODE_IMAGE, nodeKey, log)) await buildNode(nodeKey, node24, npmDir, nodeVersion, log)
  const redisKey = `debian redis-server; ${debianKey}`
  if (debianRebuilt || await stale(REDIS_IMAGE, redisKey, log)) await buildRedis(redisKey, log)
  return { node: nodeVersion, npm: npmVersion }
}

async function buildDebian(key: string, log: Log): Promise<void> {
  log(`building ${DEBIAN_IMAGE} with debootstrap (once; about 40 s)`)
  const dir = mkdtempSync('/var/tmp/tessera-stand-in-')
  try {
    const root = join(dir, 'rootfs')
    const run = (cmd: string, args: string[]): void => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${(r.stdout + r.stderr).split('\n').slice(-15).join('\n')}`)
    }
    run('debootstrap', ['--variant=minbase', 'bookworm', root, DEBIAN_MIRROR])
    // What debian:bookworm-slim leaves out: the package cache and lists, manuals, docs (but copyright
    // notices), translations.
    run('sh', ['-c', `cd '${root}' && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* usr/share/man/* usr/share/info/* usr/share/locale/* ` +
      '&& find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete && find usr/share/doc -mindepth 1 -type d -empty -delete'])
    run('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.'])
    await podman(['import', '--change', 'CMD ["bash"]', '--change', `LABEL ${LABEL}="${key}"`, join(dir, 'rootfs.tar'), DEBIAN_IMAGE])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** As docker-library's node:24-bookworm-slim Dockerfile, from the machine's Node 24 and npm. */
async function buildNode(key: string, node24: string, npmDir: string, nodeVersion: string, log: Log): Promise<void> {
  log(`building the stand-in ${NODE_IMAGE} (Node ${nodeVersion})`)
  await buildFrom(key, NODE_IMAGE, [], (ctx) => {
    cpSync(node24, join(ctx, 'node'))
    cpSync(npmDir, join(ctx, 'npm'), { recursive: true })
    writeFileSync(join(ctx, 'docker-entrypoint.sh'), [
      '#!/bin/sh',
      'set -e',
      '# As the real image: an option or a non-command as the first argument runs under node.',
      'if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1")" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then',
      '  set -- node "$@"',
      'fi',
      'exec "$@"',
      '',
    ].join('\n'), { mode: 0o755 })
    return [
      `FROM ${DEBIAN_IMAGE}`,
      'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node',
      `ENV NODE_VERSION=${nodeVersion.slice(1)}`,
      'COPY node /usr/local/bin/node',
      'COPY npm /usr/local/lib/node_modules/npm',
      'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
      ' && ln -s /usr/local/bin/node /usr/local/bin/nodejs && node --version && npm --version',
      'COPY docker-entrypoint.sh /usr/local/bin/',
      'ENTRYPOINT ["docker-entrypoint.sh"]',
      'CMD ["node"]',
    ]
  })
}

/** As the official redis image where the compose file relies on it: redis-server and redis-cli on the PATH, /data, not root. */
async function buildRedis(key: string, log: Log): Promise<void> {
  log(`building the stand-in ${REDIS_IMAGE} (Debian's redis-server)`)
  await buildFrom(key, REDIS_IMAGE, ['--network', 'host'], (ctx) => {
    // The official image is built with protected mode off (the container network is the boundary);
    // Debian's binary has it on, which refuses every client from another container.
    writeFileSync(join(ctx, 'redis-server'), '#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n', { mode: 0o755 })
    return [
      `FROM ${DEBIAN_IMAGE}`,
      'RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\',
      ' && rm -rf /var/lib/apt/lists/* && mkdir /data && chown redis:redis /data',
      'COPY redis-server /usr/local/bin/redis-server',
      'WORKDIR /data',
      'VOLUME /data',
      'USER redis',
      'EXPOSE 6379',
      'CMD ["redis-server"]',
    ]
  })
}

async function buildFrom(key: string, tag: string, extra: string[], prepare: (ctx: string) => string[]): Promise<void> {
  const ctx = mkdtempSync('/var/tmp/tessera-stand-in-')
  try {
    writeFileSync(join(ctx, 'Containerfile'), `${prepare(ctx).join('\n')}\n`)
    await podman(['build', '--format', 'docker', '--pull=never', ...extra, '--label', `${LABEL}=${key}`, '-t', tag, '-f', join(ctx, 'Containerfile'), ctx])
  } finally {
    rmSync(ctx, { recursive: true, force: true })
  }
}

/** The Tessera image, built from the repository's Dockerfile as it is, tagged as compose names it. */
export const TESSERA_IMAGE = 'localhost/tessera:latest'

/**
 * `--format docker`: the OCI format has no HEALTHCHECK, and podman would drop it. `--network host`:
 * the build's `npm ci` reaches the registry as the host does. The host's CA bundle goes to npm as
 * the Dockerfile's optional `npm_ca` build secret (for a TLS-inspecting proxy), never into a layer.
 */
async function buildTesseraImage(): Promise<void> {
  const ca = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt'
  await podman(['build', '--format', 'docker', '--pull=never', '--network', 'host',
    ...(existsSync(ca) ? ['--secret', `id=npm_ca,src=${ca}`] : []), '-t', TESSERA_IMAGE, '.'])
}

/** The stand-ins, then the Tessera image (podman's layer cache makes a second build quick); says how long each took. */
export async function prepareImages(): Promise<void> {
  const say = (line: string): void => { process.stdout.write(`${line}\n`) }
  const t0 = Date.now()
  const versions = await ensureStandIns(say)
  const t1 = Date.now()
  await buildTesseraImage()
  const size = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', TESSERA_IMAGE])).trim())
  say(`stand-ins ready in ${t1 - t0} ms (Node ${versions.node}, npm ${versions.npm}); ${TESSERA_IMAGE} built in ${Date.now() - t1} ms, ${(size / 1e6).toFixed(0)} MB`)
}
