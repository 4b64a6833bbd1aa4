/**
 * The IdP's only scripts, both files (CSP `script-src 'self'`, nothing inline): @simplewebauthn/browser's
 * own bundle, served as installed, and public/passkeys.js, which drives the passkey forms with it.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import { PASSKEYS_SCRIPT } from '../paths.js'

// The package exports only its entry points; its UMD bundle (global SimpleWebAuthnBrowser) sits
// beside them in dist/bundle.
const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser')
const WEBAUTHN_BUNDLE = join(dirname(dirname(entry)), 'dist', 'bundle', 'index.umd.min.js')

export const passkeyScriptRoutes: FastifyPluginAsync = async (app) => {
  const files = { '/static/webauthn.js': readFileSync(WEBAUTHN_BUNDLE), '/static/passkeys.js': readFileSync(PASSKEYS_SCRIPT) }
  for (const [path, body] of Object.entries(files)) {
    app.get(path, async (req, reply) =>
      reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(body))
  }
}
