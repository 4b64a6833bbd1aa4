/**
 * deploy/kubernetes, checked by reading (no cluster): every variable the manifests set is one the
 * IdP reads, the required ones are there, the ConfigMap's values pass the IdP's own checks in
 * production, the Secret's placeholders are refused, and the objects refer to each other correctly.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../src/shared/errors.js'
import { parseAllDocuments } from 'yaml'
import { loadConfig } from '../src/idp/config.js'
import { ENV_NAMES, REQUIRED_ENV } from '../src/idp/config-schema.js'
import { STOP_GRACE_MS } from '../src/shared/shutdown.js'
import { writeProductionUsersFile } from './helpers/users.js'

const DIR = 'deploy/kubernetes'

interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string> }
  [key: string]: unknown
}

const manifests: Manifest[] = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).flatMap((f) =>
  parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((doc) => {
    assert.deepEqual(doc.errors, [], `${f} parses`)
    return doc.toJS() as Manifest
  }))

const find = (kind: string, name?: string): Manifest => {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name))
  assert.equal(found.length, 1, `one ${kind}${name === undefined ? '' : ` ${name}`}`)
  return found[0] as Manifest
}

interface Container {
  name: string
  ports: { name: string; containerPort: number }[]
  env?: { name: string; value?: string }[]
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[]
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[]
  livenessProbe?: { httpGet?: { path: string; port: string | number } }
  readinessProbe?: { httpGet?: { path: string; port: string | number } }
  startupProbe?: { httpGet?: { path: string; port: string | number } }
  lifecycle?: { preStop?: { exec?: { command: string[] } } }
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext?: Record<string, unknown>
}
interface PodSpec {
  containers: Container[]
  volumes?: { name: string; secret?: { secretName: string } }[]
  securityContext?: Record<string, unknown>
  terminationGracePeriodSeconds?: number
}
const deployment = find('Deployment') as Manifest & {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }
}
const pod = deployment.spec.template.spec
const idp = pod.containers[0] as Container
const configMap = find('ConfigMap') as Manifest & { data: Record<string, string> }
const envSecret = find('Secret', idp.envFrom?.find((e) => e.secretRef)?.secretRef?.name) as Manifest & { stringData: Record<string, string> }

/** Every variable the IdP container gets, and where from. */
function containerEnv(): Map<string, string> {
  const env = new Map<string, string>()
  for (const from of idp.envFrom ?? []) {
    const source = from.configMapRef !== undefined ? find('ConfigMap', from.configMapRef.name) as Manifest & { data: Record<string, string> } : undefined
    const data = source?.data ?? (from.secretRef !== undefined ? (find('Secret', from.secretRef.name) as Manifest & { stringData: Record<string, string> }).stringData : {})
    for (const [k, v] of Object.entries(data)) env.set(k, v)
  }
  for (const e of idp.env ?? []) env.set(e.name, e.value ?? '')
  return env
}

test('every variable the manifests set is in the IdP configuration schema, and the required ones are set', () => {
  const env = containerEnv()
  const known = ENV_NAMES
  for (const name of env.keys()) assert.ok(known.includes(name), `${name} is not an IdP variable (src/idp/config.ts)`)
  assert.deepEqual([...REQUIRED_ENV].sort(), ['PUBLIC_URL', 'SESSION_SECRET', 'SYNC_KEYS', 'USERS_FILE'])
  for (const name of REQUIRED_ENV) assert.ok(env.has(name), `${name} is required and not set`)
  for (const name of ['SYNC_KEYS', 'SESSION_SECRET', 'REDIS_PASSWORD']) {
    assert.ok(name in envSecret.stringData && !(name in configMap.data), `${name} comes from the Secret, not the ConfigMap`)
  }
})

test('with real secrets the ConfigMap\'s values are a production configuration the IdP accepts; the placeholders are refused', () => {
  const env = Object.fromEntries(containerEnv())
  // The users file at its mount path comes from the users Secret; here, one production accepts.
  const real = {
    ...env, USERS_FILE: writeProductionUsersFile(), REDIS_PASSWORD: randomBytes(24).toString('base64url'),
    SYNC_KEYS: `k1:${randomBytes(32).toString('base64url')}`, SESSION_SECRET: randomBytes(48).toString('base64'),
  }
  const config = loadConfig(real)
  assert.equal(env.NODE_ENV, 'production', 'the production checks run')
  assert.equal(config.publicUrl, env.PUBLIC_URL)
  assert.equal(config.port, Number(idp.ports[0]?.containerPort))
  assert.equal(config.redis.password, real.REDIS_PASSWORD)
  assert.ok(config.redis.url?.startsWith('rediss:'), 'a managed Redis over TLS')
})

test('every placeholder of secret.example.yaml is refused, naming its variable, in production and outside it', () => {
  // The users Secret's file, written where USERS_FILE points in the test.
  const usersSecret = find('Secret', pod.volumes?.find((v) => v.secret !== undefined)?.secret?.secretName) as Manifest & { stringData: Record<string, string> }
  const usersFile = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  writeFileSync(usersFile, Object.values(usersSecret.stringData)[0] ?? '')
  const placeholders = { ...envSecret.stringData }
  // Before: REDIS_PASSWORD=replace-me and `users: {}` were accepted.
  const expected = [...Object.keys(placeholders), 'USERS_FILE'].sort()
  for (const nodeEnv of ['production', 'development']) {
    const env = { ...Object.fromEntries(containerEnv()), ...placeholders, USERS_FILE: usersFile, NODE_ENV: nodeEnv }
    assert.throws(() => loadConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      const named = new Set(err.problems.map((p) => /^[A-Z_]+/.exec(p)?.[0]))
      assert.deepEqual([...named].sort(), expected, `${nodeEnv}: ${err.message}`)
      return true
    })
  }
})

test('the users file is mounted read-only from its Secret where USERS_FILE points', () => {
  const mount = idp.volumeMounts?.find((m) => configMap.data.USERS_FILE?.startsWith(`${m.mountPath}/`))
  assert.ok(mount, 'a volume is mounted at the directory of USERS_FILE')
  assert.equal(mount.readOnly, true)
  const secretName = pod.volumes?.find((v) => v.name === mount.name)?.secret?.secretName
  const usersSecret = find('Secret', secretName) as Manifest & { stringData: Record<string, string> }
  assert.ok(configMap.data.USERS_FILE?.endsWith(`/${Object.keys(usersSecret.stringData)[0]}`), 'the file name is the Secret\'s key')
})

test('replicas, probes, resources and a non-root, read-only security context', () => {
  assert.ok(deployment.spec.replicas >= 2, 'more than one replica')
  assert.equal(idp.livenessProbe?.httpGet?.path, '/healthz')
  assert.equal(idp.readinessProbe?.httpGet?.path, '/readyz')
  const port = idp.ports[0]
  for (const probe of [idp.livenessProbe, idp.readinessProbe, idp.startupProbe]) {
    assert.ok(probe?.httpGet?.port === port?.name || probe?.httpGet?.port === port?.containerPort, 'probes ask the container port')
  }
  assert.equal(String(port?.containerPort), configMap.data.PORT)
  assert.ok(idp.resources?.requests?.cpu && idp.resources.requests.memory && idp.resources.limits?.memory, 'requests and a memory limit')
  assert.equal(pod.securityContext?.runAsNonRoot, true)
  assert.equal(pod.securityContext?.runAsUser, 1000, 'the image\'s node user')
  assert.equal(idp.securityContext?.readOnlyRootFilesystem, true)
  assert.equal(idp.securityContext?.allowPrivilegeEscalation, false)
  assert.deepEqual((idp.securityContext?.capabilities as { drop?: string[] } | undefined)?.drop, ['ALL'])
})

test('the grace period covers the preStop pause and the IdP\'s own stop', () => {
  const pause = Number(idp.lifecycle?.preStop?.exec?.command.at(-1) ?? 0)
  assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 > pause * 1000 + STOP_GRACE_MS)
})

test('the Service and the PodDisruptionBudget select the Deployment\'s pods', () => {
  const podLabels = deployment.spec.template.metadata.labels
  const matches = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => podLabels[k] === v)
  assert.ok(matches(deployment.spec.selector.matchLabels))
  const service = find('Service') as Manifest & { spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] } }
  assert.ok(matches(service.spec.selector))
  assert.ok(service.spec.ports.every((p) => p.targetPort === idp.ports[0]?.name || p.targetPort === idp.ports[0]?.containerPort))
  const pdb = find('PodDisruptionBudget') as Manifest & { spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number } }
  assert.ok(matches(pdb.spec.selector.matchLabels))
  const unavailable = pdb.spec.maxUnavailable ?? deployment.spec.replicas - (pdb.spec.minAvailable ?? 0)
  assert.ok(unavailable >= 1 && unavailable < deployment.spec.replicas, 'drains can proceed, one replica at least keeps serving')
})

test('kustomization.yaml lists every manifest in the folder but the example Secrets', () => {
  const kustomization = parseAllDocuments(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as { resources: string[] }
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && !f.endsWith('.example.yaml')).sort()
  assert.deepEqual([...kustomization.resources].sort(), files)
})
