/**
 * A software passkey authenticator for tests over HTTP, with node:crypto: ES256 keys, a 'none'
 * attestation at registration, signed assertions at sign-in, a sign counter the test can turn back.
 * It plays the authenticator and the browser (it writes clientDataJSON with the origin it is told),
 * so a test can also play a phishing page on another origin. The few CBOR items WebAuthn needs
 * (RFC 8949: unsigned and negative integers, byte and text strings, maps) are encoded here.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

interface CreationOptions { challenge: string; rp: { id?: string }; user: { id: string } }
interface RequestOptions { challenge: string; rpId?: string; allowCredentials?: readonly { id: string }[] }

export interface SoftCredential {
  readonly id: string
  readonly rpId: string
  readonly userHandle: string
  readonly privateKey: KeyObject
  /** The authenticator's sign counter; the next assertion signs counter + 1. */
  counter: number
}

export interface AnswerOptions {
  /** The origin the "browser" writes in clientDataJSON (default: the one given to the constructor). */
  origin?: string
  /** Sign as if the user was not verified (UV flag clear). */
  unverified?: boolean
  /** Use this credential (default: the first one for the RP, as a browser offering one passkey). */
  credentialId?: string
}

const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_AT = 0x40

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = []
  readonly #origin: string

  constructor(origin: string) {
    this.#origin = origin
  }

  /** Answers navigator.credentials.create() for `options` (the JSON the IdP sent): a new ES256 passkey. */
  register(options: CreationOptions, answer: AnswerOptions = {}): Record<string, unknown> {
    const rpId = options.rp.id ?? new URL(this.#origin).hostname
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    const rawId = randomBytes(32)
    const id = rawId.toString('base64url')
    // COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
    const coseKey = cborMap([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x as string, 'base64url')], [-3, Buffer.from(jwk.y as string, 'base64url')]])
    const credentialIdLength = Buffer.alloc(2)
    credentialIdLength.writeUInt16BE(rawId.length)
    const authData = Buffer.concat([
      authenticatorData(rpId, FLAG_UP | (answer.unverified === true ? 0 : FLAG_UV) | FLAG_AT, 0),
      Buffer.alloc(16), // AAGUID: none for a 'none' attestation
      credentialIdLength, rawId, coseKey,
    ])
    const attestationObject = cborMap([['fmt', 'none'], ['attStmt', { map: [] }], ['authData', authData]])
    this.credentials.push({ id, rpId, userHandle: options.user.id, privateKey, counter: 0 })
    return {
      id, rawId: id, type: 'public-key', authenticatorAttachment: 'platform', clientExtensionResults: {},
      response: {
        clientDataJSON: clientData('webauthn.create', options.challenge, answer.origin ?? this.#origin),
        attestationObject: attestationObject.toString('base64url'),
        transports: ['internal'],
      },
    }
  }

  /** Answers navigator.credentials.get() for `options`: an assertion signed by one of its passkeys. */
  assert(options: RequestOptions, answer: AnswerOptions = {}): Record<string, unknown> {
    const rpId = options.rpId ?? new URL(this.#origin).hostname
    const allowed = options.allowCredentials?.map((c) => c.id) ?? []
    const credential = this.credentials.find((c) => answer.credentialId !== undefined
      ? c.id === answer.credentialId
      : c.rpId === rpId && (allowed.length === 0 || allowed.includes(c.id)))
    if (credential === undefined) throw new Error(`no passkey for ${rpId}`)
    credential.counter += 1
    const authData = authenticatorData(rpId, FLAG_UP | (answer.unverified === true ? 0 : FLAG_UV), credential.counter)
    const clientDataJSON = clientData('webauthn.get', options.challenge, answer.origin ?? this.#origin)
    const signed = Buffer.concat([authData, createHash('sha256').update(Buffer.from(clientDataJSON, 'base64url')).digest()])
    return {
      id: credential.id, rawId: credential.id, type: 'public-key', authenticatorAttachment: 'platform', clientExtensionResults: {},
      response: {
        clientDataJSON,
        authenticatorData: authData.toString('base64url'),
        signature: sign('sha256', signed, credential.privateKey).toString('base64url'), // ECDSA, DER-encoded, as WebAuthn wants
        userHandle: credential.userHandle,
      },
    }
  }
}

function authenticatorData(rpId: string, flags: number, counter: number): Buffer {
  const tail = Buffer.alloc(5)
  tail.writeUInt8(flags, 0)
  tail.writeUInt32BE(counter, 1)
  return Buffer.concat([createHash('sha256').update(rpId).digest(), tail])
}

function clientData(type: string, challenge: string, origin: string): string {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false })).toString('base64url')
}

/** A CBOR value: an integer, a text string, a byte string, or a map (its entries in order). */
type CborValue = number | string | Buffer | { readonly map: readonly (readonly [number | string, CborValue])[] }

function cborHead(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n])
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n])
  if (n < 0x10000) { const b = Buffer.alloc(3); b[0] = (major << 5) | 25; b.writeUInt16BE(n, 1); return b }
  const b = Buffer.alloc(5); b[0] = (major << 5) | 26; b.writeUInt32BE(n, 1); return b
}

function cbor(value: CborValue): Buffer {
  if (typeof value === 'number') return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value)
  if (typeof value === 'string') { const text = Buffer.from(value); return Buffer.concat([cborHead(3, text.length), text]) }
  if (Buffer.isBuffer(value)) return Buffer.concat([cborHead(2, value.length), value])
  return Buffer.concat([cborHead(5, value.map.length), ...value.map.flatMap(([k, v]) => [cbor(k), cbor(v)])])
}

function cborMap(entries: readonly (readonly [number | string, CborValue])[]): Buffer {
  return cbor({ map: entries })
}
