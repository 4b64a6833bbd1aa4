/**
 * WebAuthn (passkeys) through @simplewebauthn/server, with Tessera's choices written once: the
 * relying party is the IdP itself (RP ID = PUBLIC_URL's host, origin = PUBLIC_URL's origin), user
 * verification is required (a passkey is then a second factor by itself: something held, unlocked by
 * something known or something the user is), and credentials are discoverable, so a user can sign in
 * without typing a name. Every app on every domain signs in on the IdP's origin, so one passkey
 * registered here serves them all.
 *
 * Nothing here speaks to Redis or Fastify: challenges (webauthn-challenges.ts) and credentials
 * (passkey-store.ts) are kept by their own modules.
 */
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { PasskeyError } from '../../shared/errors.js'

export type { AuthenticationResponseJSON, RegistrationResponseJSON }

type Library = typeof import('@simplewebauthn/server')
let library: Promise<Library> | undefined
// Loaded at the first passkey ceremony, not at start-up: it adds about 5 MB to the IdP's resident
// memory (114 against 109 MB at start on Node 24), which an IdP whose users use no passkey never pays.
function webauthn(): Promise<Library> {
  library ??= import('@simplewebauthn/server')
  return library
}

export interface RelyingParty {
  /** The IdP's host name, without port: a passkey is bound to it for good. */
  readonly id: string
  /** The exact origin the browser must report in clientDataJSON. */
  readonly origin: string
  readonly name: string
}

/** What is kept of a registered passkey to verify its later assertions. */
export interface PasskeyCredential {
  /** base64url, as the browser reports it. */
  readonly id: string
  readonly publicKey: Uint8Array
  readonly counter: number
  readonly transports: readonly string[]
}

/** How long the browser may take for a ceremony; the challenge lives a little longer (webauthn-challenges.ts). */
export const CEREMONY_TIMEOUT_MS = 120_000

// ES256 and EdDSA cover every current platform and roaming authenticator; RS256 for Windows Hello.
// Listed once so that the options offered and the registration check agree.
const ALGORITHMS = [-8, -7, -257]

export function relyingParty(publicUrl: string): RelyingParty {
  const url = new URL(publicUrl)
  return { id: url.hostname, origin: url.origin, name: 'Tessera' }
}

export interface PasskeyUser {
  readonly username: string
  readonly displayName: string
  /** The random WebAuthn user handle (never the user name: it is stored on the authenticator). */
  readonly handle: Uint8Array
}

export async function registrationOptions(
  rp: RelyingParty, user: PasskeyUser, existing: readonly PasskeyCredential[],
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { generateRegistrationOptions } = await webauthn()
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.username,
    userDisplayName: user.displayName,
    userID: new Uint8Array(user.handle),
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    // The same authenticator twice would be one factor counted as two.
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: [...c.transports] })),
    authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
    supportedAlgorithmIDs: ALGORITHMS,
  })
}

/**
 * Checks a registration against the challenge this browser was given. Resolves to the credential to
 * keep; throws PasskeyError for any failure.
 */
export async function verifyRegistration(rp: RelyingParty, response: RegistrationResponseJSON, challenge: string): Promise<PasskeyCredential> {
  const { verifyRegistrationResponse } = await webauthn()
  let result: Awaited<ReturnType<Library['verifyRegistrationResponse']>>
  try {
    result = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: true,
      supportedAlgorithmIDs: ALGORITHMS,
    })
  } catch (err) {
    throw new PasskeyError(`registration refused: ${reasonOf(err)}`)
  }
  if (!result.verified) throw new PasskeyError('registration did not verify')
  const { credential } = result.registrationInfo
  return { id: credential.id, publicKey: credential.publicKey, counter: credential.counter, transports: credential.transports ?? [] }
}

/** Options for a sign-in: no allow-list when `credentials` is empty, so the browser offers every passkey it holds for this RP. */
export async function authenticationOptions(rp: RelyingParty, credentials: readonly PasskeyCredential[] = []): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { generateAuthenticationOptions } = await webauthn()
  return generateAuthenticationOptions({
    rpID: rp.id,
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: 'required',
    allowCredentials: credentials.map((c) => ({ id: c.id, transports: [...c.transports] })),
  })
}

/**
 * Checks an assertion: challenge, origin, RP ID hash, signature, user presence and verification, and
 * that the sign counter went up where the authenticator keeps one. Resolves to the new counter.
 */
export async function verifyAuthentication(
  rp: RelyingParty, response: AuthenticationResponseJSON, challenge: string, credential: PasskeyCredential,
): Promise<number> {
  const { verifyAuthenticationResponse } = await webauthn()
  let result: Awaited<ReturnType<Library['verifyAuthenticationResponse']>>
  try {
    result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: { id: credential.id, publicKey: new Uint8Array(credential.publicKey), counter: credential.counter, transports: [...credential.transports] },
      requireUserVerification: true,
    })
  } catch (err) {
    throw new PasskeyError(`assertion refused: ${reasonOf(err)}`)
  }
  if (!result.verified || !result.authenticationInfo.userVerified) throw new PasskeyError('assertion did not verify')
  return result.authenticationInfo.newCounter
}

// The library's messages name what failed (origin, RP ID, counter, signature), but some quote the
// challenge they expected and the one they got: quoted values are cut, so no challenge reaches a log.
function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message.replace(/"[^"]*"/g, '"…"').slice(0, 160) : 'unknown error'
}
