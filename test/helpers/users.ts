/** The users every test and the bench sign in as: one password, its argon2id hash and the users file. */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const USERNAME = 'alice'
export const DISPLAY_NAME = 'Alice Example'
export const PASSWORD = 'correct horse battery staple'
// argon2id of PASSWORD with small costs so tests stay fast and the bench's sign-ins stay untimed
// noise; the format is what matters here.
export const PASSWORD_HASH = '$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RAME85Nb8CxpfIy5Ca0XN5R2weN/7wRhxgF0shgwz70'

/**
 * A USERS_FILE that production accepts: alice with a hash at OWASP's costs whose password nobody
 * knows (random salt and digest: no hashing, so the tests stay fast). For checking configuration,
 * not for signing in.
 */
export function writeProductionUsersFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  const b64 = (n: number): string => randomBytes(n).toString('base64').replace(/=+$/, '')
  writeFileSync(file, `users:\n  ${USERNAME}:\n    password: "$argon2id$v=19$m=19456,t=2,p=1$${b64(16)}$${b64(32)}"\n    groups: [admins]\n`)
  return file
}

/** A USERS_FILE in a fresh temp dir: alice (PASSWORD, groups admins and staff) and bob, disabled. */
export function writeUsersFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  writeFileSync(file, `users:\n  ${USERNAME}:\n    displayname: ${DISPLAY_NAME}\n    email: alice@example.com\n    password: "${PASSWORD_HASH}"\n    groups: [admins, staff]\n  bob:\n    displayname: Bob\n    password: "${PASSWORD_HASH}"\n    disabled: true\n`)
  return file
}
