/**
 * Bench server: oidc-provider v9 as the OpenID Provider, storage in the same Redis, with its own
 * login and consent interactions (the documented interactionDetails / interactionFinished / Grant API,
 * as in its example/routes). Served by node:http with the provider's Koa callback.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { Redis } from 'ioredis'
import Provider, { type Configuration } from 'oidc-provider'
import { waitForRedis } from '../../src/shared/redis.js'
import { childConfig, runChild } from '../lib/child.js'
import { escapeHtml, type ChildConfig, BASELINE_REDIS_OPTIONS } from '../lib/common.js'
import { DISPLAY_NAME, PASSWORD, USERNAME } from '../../test/helpers/users.js'
import { RedisAdapter } from './oidc-redis-adapter.js'

interface OpChildConfig extends ChildConfig {
  clientId: string
  clientSecret: string
  redirectUri: string
}

const SESSION_S = 8 * 3600 // the same absolute session lifetime as Tessera's default

runChild(async () => {
  const c = childConfig<OpChildConfig>()
  const issuer = `http://${c.host}:${c.port}`
  const redis = new Redis(c.redisUrl, BASELINE_REDIS_OPTIONS)
  redis.on('error', () => {})
  if (!(await waitForRedis(redis))) throw new Error('redis not ready')

  // A real signing key (else the provider uses a development-only key set and warns).
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const configuration: Configuration = {
    adapter: (name: string) => new RedisAdapter(redis, name),
    clients: [{
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: [c.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    async findAccount(_ctx, sub) {
      if (sub !== USERNAME) return undefined
      return { accountId: sub, claims: async () => ({ sub, name: DISPLAY_NAME }) }
    },
    claims: { openid: ['sub'], profile: ['name'] },
    cookies: { keys: [randomBytes(32).toString('base64url')] }, // signs the provider's cookies
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' }] } as Configuration['jwks'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } }, // our own interaction routes below
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Grant: SESSION_S, Session: SESSION_S },
  }
  const provider = new Provider(issuer, configuration)
  provider.on('server_error', (_ctx, err) => { console.error('oidc-provider server_error', err) })
  const oidc = provider.callback()

  const server = createServer((req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(provider, req, res).catch((err: Error) => {
        console.error('interaction error', err)
        if (!res.headersSent) { res.statusCode = 500; res.end('interaction failed') }
      })
      return
    }
    void oidc(req, res)
  })
  // Fastify's keep-alive default (Node's own 5 s makes the RP's kept-alive token requests race the close).
  server.keepAliveTimeout = 72_000
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(c.port, c.host, resolve) })
  return {
    close: async () => {
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
      redis.disconnect()
    },
  }
})

/** GET /interaction/:uid shows the login or consent form; POST .../login and .../confirm finish it. */
async function interaction(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res)
  const { uid, prompt, params } = details
  const html = (body: string): void => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>${body}</body></html>`)
  }
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      return html(`<form method="post" action="/interaction/${escapeHtml(uid)}/login"><input name="login"><input name="password" type="password"><button>Sign in</button></form>`)
    }
    return html(`<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><p>Allow ${escapeHtml(String(params.client_id))}?</p><button>Allow</button></form>`)
  }
  const form = new URLSearchParams(await readBody(req))
  if (req.url?.endsWith('/login') && prompt.name === 'login') {
    if (form.get('login') !== USERNAME || !equal(form.get('password') ?? '', PASSWORD)) {
      return html('<p>Wrong user name or password.</p>')
    }
    return provider.interactionFinished(req, res, { login: { accountId: USERNAME } }, { mergeWithLastSubmission: false })
  }
  if (req.url?.endsWith('/confirm') && prompt.name === 'consent') {
    const accountId = details.session?.accountId
    if (accountId === undefined) throw new Error('consent without a session')
    const grant = details.grantId !== undefined
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: String(params.client_id) })
    if (grant === undefined) throw new Error('grant not found')
    const missing = prompt.details.missingOIDCScope as string[] | undefined
    if (missing !== undefined) grant.addOIDCScope(missing.join(' '))
    const missingClaims = prompt.details.missingOIDCClaims as string[] | undefined
    if (missingClaims !== undefined) grant.addOIDCClaims(missingClaims)
    const grantId = await grant.save()
    return provider.interactionFinished(req, res, { consent: details.grantId === undefined ? { grantId } : {} }, { mergeWithLastSubmission: true })
  }
  res.statusCode = 400
  res.end('unexpected interaction')
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > 64 * 1024) throw new Error('body too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
