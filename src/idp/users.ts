/**
 * The users file, in the form of Authelia's file backend so users can bring theirs:
 *   users: { alice: { password: "$argon2id$...", displayname: "Alice", email: "...", groups: [..] } }
 * Passwords are argon2id PHC strings only. A file Authelia would read differently is refused, not
 * guessed at: unknown keys, and `disabled` values Authelia would not read as a boolean.
 */
import { verify } from '@node-rs/argon2'
import type { SessionUser } from '../shared/session.js'
import { readYamlFile } from './yaml-file.js'
import { isDemoPasswordHash } from './demo-secrets.js'
import { DEFAULT_COSTS, makeDummyHash, meetsOwaspCosts, parseArgon2id, type Argon2Costs } from './argon2-phc.js'

interface UserEntry {
  readonly user: SessionUser
  readonly passwordHash: string
  readonly disabled: boolean
}

const USERNAME = /^[\p{L}\p{N}._@+-]{1,64}$/u

/** The keys Tessera reads. */
const USED_KEYS = new Set(['password', 'displayname', 'email', 'groups', 'disabled'])
/** Authelia's other profile attributes: accepted so its files load, not used (no app receives them). */
const AUTHELIA_KEYS = new Set(['given_name', 'middle_name', 'family_name', 'nickname', 'gender', 'birthdate', 'website',
  'profile', 'picture', 'zoneinfo', 'locale', 'phone_number', 'phone_extension', 'address', 'extra'])

/**
 * What Authelia reads as a boolean: it decodes the file with go-yaml into a Go bool, which takes
 * YAML 1.2's true/false (parsed as booleans here too) and, for YAML 1.1 compatibility, these words,
 * quoted or not. Anything else (`"true"` in quotes, 1, an empty value) it refuses, and so do we.
 */
const YAML11_TRUE = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'])
const YAML11_FALSE = new Set(['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'])

function asBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value
  if (typeof value !== 'string') return undefined
  return YAML11_TRUE.has(value) ? true : YAML11_FALSE.has(value) ? false : undefined
}

export class UserDirectory {
  readonly #users: ReadonlyMap<string, UserEntry>
  // Unknown users are checked against this, so they cost the same argon2 work as known ones.
  readonly #dummyHash: string

  /** @param dummyCosts the costs of a real user's hash, or the work would tell a known name from an unknown one. */
  constructor(users: ReadonlyMap<string, UserEntry>, dummyCosts: Argon2Costs) {
    this.#users = users
    this.#dummyHash = makeDummyHash(dummyCosts)
  }

  get size(): number {
    return this.#users.size
  }

  /** The user, when the password is right and the account enabled; undefined otherwise, in the same time. */
  async verify(username: string, password: string): Promise<SessionUser | undefined> {
    const entry = this.#users.get(username)
    let ok = false
    try {
      // Every hash, and the dummy's costs, were checked at load: argon2 can use each one.
      ok = await verify(entry?.passwordHash ?? this.#dummyHash, password)
    } catch {
      ok = false // still, never a 500 for a password check
    }
    return ok && entry !== undefined && !entry.disabled ? entry.user : undefined
  }

  /** The user, when the account exists and is enabled: for a sign-in that another factor (a passkey) proved. */
  active(username: string): SessionUser | undefined {
    const entry = this.#users.get(username)
    return entry !== undefined && !entry.disabled ? entry.user : undefined
  }
}

/** Reads and checks the users file; pushes one message per problem, naming the file's key path. */
export function loadUsers(path: string, name: string, problems: string[], opts: { production?: boolean } = {}): UserDirectory | undefined {
  const read = readYamlFile(path)
  if ('error' in read) {
    const { error } = read
    const why = 'code' in error ? error.code : 'yaml' in error ? `not valid YAML: ${error.yaml}` : error.reader
    problems.push(`${name}: cannot read ${path} (${why})`)
    return undefined
  }
  const doc = read.doc
  const users = (doc as { users?: unknown } | null)?.users
  if (users === null || typeof users !== 'object' || Array.isArray(users)) {
    problems.push(`${name}: ${path} must have a top-level "users" map`)
    return undefined
  }
  if (Object.keys(users).length === 0) {
    // deploy/kubernetes/secret.example.yaml's placeholder: an IdP no one can sign in to is never meant.
    problems.push(`${name}: ${path} lists no users; add at least one (npx tessera hash-password makes the hash)`)
    return undefined
  }
  const before = problems.length
  const entries = new Map<string, UserEntry>()
  let firstCosts: Argon2Costs | undefined
  for (const [username, raw] of Object.entries(users as Record<string, unknown>)) {
    const at = `${name} (${path}): users.${username}`
    const u = raw as Record<string, unknown> | null
    if (!USERNAME.test(username)) { problems.push(`${at}: user names are 1-64 letters, digits or . _ @ + -`); continue }
    if (u === null || typeof u !== 'object' || Array.isArray(u)) { problems.push(`${at}: must be a map`); continue }
    // Every problem of this user at once: fixing one should not reveal the next on the following start.
    const own: string[] = []
    for (const k of Object.keys(u)) {
      if (!USED_KEYS.has(k) && !AUTHELIA_KEYS.has(k)) own.push(`${at}: unknown key "${k}" (known: ${[...USED_KEYS].join(', ')} and Authelia's profile attributes)`)
    }
    const disabled = 'disabled' in u ? asBoolean(u.disabled) : false
    if (disabled === undefined) own.push(`${at}.disabled: must be true or false (or yes/no, on/off, y/n, as Authelia reads them)`)
    const costs = typeof u.password === 'string' ? parseArgon2id(u.password) : 'must be an argon2id PHC string (npx tessera hash-password)'
    if (typeof costs === 'string') own.push(`${at}.password: ${costs}`)
    else if (opts.production === true && !meetsOwaspCosts(costs)) {
      own.push(`${at}.password: argon2id costs below OWASP's minimum (e.g. m=19456,t=2,p=1); re-hash with npx tessera hash-password`)
    } else if (opts.production === true && isDemoPasswordHash(u.password as string)) {
      // The image ships examples/users.yml: pointing USERS_FILE at it (or copying its alice) would
      // let anyone sign in as an admin with the password printed in that file.
      own.push(`${at}.password: is a published demo hash (examples/users.yml), whose password anyone can read; set the user's own with npx tessera hash-password`)
    }
    const groups = u.groups ?? []
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string')) own.push(`${at}.groups: must be a list of strings`)
    if (u.displayname !== undefined && typeof u.displayname !== 'string') own.push(`${at}.displayname: must be a string`)
    if (u.email !== undefined && typeof u.email !== 'string') own.push(`${at}.email: must be a string`)
    if (own.length > 0 || disabled === undefined || typeof costs === 'string') { problems.push(...own); continue }
    firstCosts ??= costs
    entries.set(username, {
      user: Object.freeze({
        username,
        displayName: (u.displayname as string | undefined) ?? username,
        email: (u.email as string | undefined) ?? '',
        groups: Object.freeze([...(groups as string[])]),
      }),
      passwordHash: u.password as string,
      disabled,
    })
  }
  return problems.length > before ? undefined : new UserDirectory(entries, firstCosts ?? DEFAULT_COSTS)
}
