/**
 * Every Redis key Tessera writes, in one place. All keys of one session share the `{sid}` hash tag,
 * so every script on a session touches one Cluster slot; the per-user index and each regulation
 * subject have tags of their own, so a Cluster spreads them.
 *
 *   tessera:{<sid>}:s                    the shared session, a hash: u the identity the IdP signed
 *                                        (identity.ts: user, methods, times), x absolute expiry
 *                                        (epoch ms, Redis clock), i idle ms, c created at,
 *                                        d the session data, a line per key (session-data.ts;
 *                                        a session an earlier Tessera created has d:<key> fields),
 *                                        a User-Agent at sign-in, o apps' origins (one per line),
 *                                        h:<sha256(aud|secret)> one handle per app (and the IdP):
 *                                        only a hash of the cookie's secret, bound to the app's
 *                                        origin; it lives as long as the session, so a page view
 *                                        is one plain HMGET of u, c, d and the handle's field;
 *                                        hs:<origin> the app's handle fields, oldest first (bounded)
 *   tessera:{<sid>}:h:<sha256(aud|secret)>  a handle as an earlier Tessera kept it, its
 *                                        own key (TTL: the session's absolute expiry); read only,
 *                                        and moved into the session hash when first read
 *   tessera:{<sid>}:t:<sha256(token id)> a minted, unredeemed token (TTL: the token's)
 *   tessera:{u:<sha256(username)>}:sessions  the user's session ids (a set)
 *   tessera:{rl:<sha256(subject)>}:f|b|p  sign-in regulation: failures, ban, checks in flight
 *   tessera:{f:<sha256(username)>}:factors  the user's second factors, a hash, NO TTL (durable user
 *                                        data): totp sealed secret, totp:step last accepted step,
 *                                        rc:<hash> one per unused recovery code, pk:<id> passkeys;
 *                                        every per-user factor key shares this tag (factorKeys)
 *   tessera:{f:<sha256(username)>}:enrol:<sha256(secret)>  a TOTP enrolment form already confirmed
 *                                        (TTL: the form's remaining life): under the user's factor tag,
 *                                        so the enrolment script marks it and enrols in one step
 *   tessera:{f:<sha256(username)>}:rcform:<sha256(once)>  a "make new recovery codes" form already
 *                                        used (TTL 1 h), so a reload does not replace the codes shown
 *   tessera:{<sid>}:fresh                the password was typed again for this session (TTL 5 min)
 *   tessera:{p:<sha256(id)>}:pending     a sign-in between password and second factor (TTL 5 min)
 *   tessera:{p:<sha256(id)>}:claim       held while one answer to it is checked (TTL 10 s, deleted after)
 *   tessera:{f:<sha256(username)>}:factors  passkey fields beside those: pk:<id> the credential
 *                                        (public key, transports, created), pkm:<id> its name,
 *                                        pkn:<id> its sign counter, pkl:<id> last used (epoch ms)
 *   tessera:{f:<sha256(username)>}:webauthn  the user's WebAuthn user handle (random, no TTL)
 *   tessera:{pkid:<sha256(credential id)>}  who owns a passkey (username), for discoverable sign-in
 *   tessera:{wa:<sha256(browser id)>}:<purpose>  a WebAuthn challenge, taken once (GETDEL), TTL 150 s
 *
 * User names, addresses, handle secrets and token ids are hashed: Redis need not hold them in clear.
 */
import { sha256 } from './crypto.js'
import type { Handle } from './session.js'

export const KEY_PREFIX = 'tessera:'

export const keys = {
  session: (sid: string): string => `${KEY_PREFIX}{${sid}}:s`,
  /** A handle's field in the session hash. */
  handleField: (secret: string, audience: string): string => handleField(secret, audience),
  /** The session hash's field listing an app's handle fields, oldest first. */
  handlesOf: (audience: string): string => `hs:${audience}`,
  /** The same handle as its own key, as an earlier Tessera kept it (read only). */
  legacyHandle: (sid: string, secret: string, audience: string): string => legacyHandleKey(sid, handleField(secret, audience)),
  token: (sid: string, tokenId: string): string => `${KEY_PREFIX}{${sid}}:t:${sha256(tokenId)}`,
  userIndex: (username: string): string => `${KEY_PREFIX}{u:${sha256(username)}}:sessions`,
  regulation: (subject: string): { failures: string; ban: string; inFlight: string } => {
    const tag = `${KEY_PREFIX}{rl:${sha256(subject)}}`
    return { failures: `${tag}:f`, ban: `${tag}:b`, inFlight: `${tag}:p` }
  },
  factors: (username: string): string => `${factorTag(username)}:factors`,
  /** Any other per-user factor key (passkeys' own), under the same tag so `factors reset` finds it. */
  userFactor: (username: string, name: string): string => `${factorTag(username)}:${name}`,
  /** Set once when a TOTP enrolment form is confirmed, so the same form cannot confirm again. */
  enrolmentUsed: (username: string, secret: string): string => `${factorTag(username)}:enrol:${sha256(secret)}`,
  recoveryFormUsed: (username: string, once: string): string => `${factorTag(username)}:rcform:${sha256(once)}`,
  freshAuth: (sid: string): string => `${KEY_PREFIX}{${sid}}:fresh`,
  pendingSignIn: (id: string): string => `${KEY_PREFIX}{p:${sha256(id)}}:pending`,
  /** Held while one answer to that pending sign-in's second step is checked (beside it: one slot). */
  pendingClaim: (id: string): string => `${KEY_PREFIX}{p:${sha256(id)}}:claim`,
  passkeyOwner: (credentialId: string): string => `${KEY_PREFIX}{pkid:${sha256(credentialId)}}`,
  webauthnChallenge: (browserId: string, purpose: string): string => `${KEY_PREFIX}{wa:${sha256(browserId)}}:${purpose}`,
} as const

/** Where a handle is in Redis: its field in the session hash, and its key as an earlier Tessera kept it. */
export interface HandlePlace {
  readonly field: string
  /** `field` as bytes, as a reply's parts are compared to it. */
  readonly fieldBytes: Buffer
  readonly legacyKey: string
}

// The handle's place per Handle object, so a cookie's handle (the same object while its value is
// remembered: handle-cookie.ts) is hashed once, at redemption, not again on every page view.
const handlePlaces = new WeakMap<Handle, HandlePlace & { readonly audience: string }>()

/** `keys.handleField` and `keys.legacyHandle` for `handle`, remembered for as long as the Handle object lives. */
export function handlePlaceOf(handle: Handle, audience: string): HandlePlace {
  let known = handlePlaces.get(handle)
  if (known === undefined || known.audience !== audience) {
    const field = handleField(handle.secret, audience)
    known = { audience, field, fieldBytes: Buffer.from(field), legacyKey: legacyHandleKey(handle.sid, field) }
    handlePlaces.set(handle, known)
  }
  return known
}

function handleField(secret: string, audience: string): string {
  return `h:${sha256(`${audience}|${secret}`)}`
}

function legacyHandleKey(sid: string, field: string): string {
  return `${KEY_PREFIX}{${sid}}:${field}`
}

function factorTag(username: string): string {
  return `${KEY_PREFIX}{f:${sha256(username)}}`
}

/** The pattern of every key of one session, for operators and tests. */
export const sessionKeyPattern = (sid: string): string => `${KEY_PREFIX}{${sid}}:*`
