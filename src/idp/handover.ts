/** Mints the one-time token for a remote and builds the redirect that carries it. */
import { mintToken } from '../shared/token.js'
import { mintingKeyFor } from '../shared/app-keys.js'
import { replaceQueryParam } from '../shared/query.js'
import type { IdpContext } from './context.js'

/** Mints a token for `sid` to `callback`'s origin; the caller records its `tokenId` in Redis before sending. */
export function mintFor(ctx: IdpContext, sid: string, callback: URL, state: string): { location: string; tokenId: string; ttlMs: number } {
  const { token, claims } = mintToken(mintingKeyFor(ctx.config.keyring, callback.origin), {
    sid, aud: callback.origin, st: state, ttlSeconds: ctx.config.tokenTtlSeconds,
  })
  return { location: withToken(callback, token), tokenId: claims.jti, ttlMs: ctx.config.tokenTtlSeconds * 1000 }
}

/** The callback with `token` set: path, other parameters and fragment kept, any earlier `token` replaced. */
export function withToken(callback: URL, token: string): string {
  return `${callback.origin}${callback.pathname}${replaceQueryParam(callback.search, 'token', token)}${callback.hash}`
}
