#!/usr/bin/env node
/** `tessera`: everyday commands for operators. It writes to stdout/stderr itself: a CLI, not the server. */
import { hash } from '@node-rs/argon2'
import { randomBytes } from 'node:crypto'
import { randomId } from '../shared/crypto.js'
import { appKey, HELP as APP_KEY_HELP } from './app-key.js'
import { checkCallback, HELP as CHECK_CALLBACK_HELP } from './check-callback.js'
import { checkConfig, HELP as CHECK_CONFIG_HELP } from './check-config.js'
import { EXIT } from './environment.js'
import { sessions, HELP as SESSIONS_HELP } from './sessions.js'

const HELP = `Usage: tessera <command> [--help]

Commands:
  hash-password            read a password on standard input, print its argon2id PHC string
  gen-key                  print a new id:key pair for SYNC_KEYS
  app-key <origin>         print the appKeys one app holds (derived from SYNC_KEYS)
  check-config             load the IdP's configuration as it would, ping Redis, list every problem
  check-callback <url>     say whether the IdP would redirect to <url>, and why not
  sessions list <user>     list a user's live sessions
  sessions revoke <user>   end every session of a user, everywhere

Exit codes: 0 success; 1 a problem found or bad input; 2 usage error; 3 Redis does not answer.
`

const HASH_HELP = `Usage: echo -n 'password' | tessera hash-password

Reads the password from standard input (one trailing newline is dropped) and prints its argon2id PHC
string (m=19456 KiB, t=2, p=1: OWASP's recommended minimum) for the users file.
Exit codes: 0 printed; 1 shorter than 8 or longer than 1024 characters.
`

const GEN_KEY_HELP = `Usage: tessera gen-key

Prints a new random id:key pair (32 random bytes, base64url). Put it FIRST in SYNC_KEYS to rotate:
it then mints, and the old keys still open tokens until you remove them.
Exit codes: 0 printed.
`

const out = (s: string): void => { process.stdout.write(s) }
const err = (s: string): void => { process.stderr.write(s) }

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

const HELPS: Record<string, string> = {
  'hash-password': HASH_HELP, 'gen-key': GEN_KEY_HELP, 'check-config': CHECK_CONFIG_HELP,
  'check-callback': CHECK_CALLBACK_HELP, 'app-key': APP_KEY_HELP, sessions: SESSIONS_HELP,
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) { err(HELP); return EXIT.usage }
  if (command === '--help' || command === '-h' || command === 'help') { out(HELP); return EXIT.ok }
  const help = HELPS[command]
  if (help === undefined) { err(`tessera: unknown command "${command}"\n\n${HELP}`); return EXIT.usage }
  if (rest.includes('--help') || rest.includes('-h')) { out(help); return EXIT.ok }
  switch (command) {
    case 'hash-password': {
      const password = await readStdin()
      // ASVS 5.0 V6.2.1: at least 8 characters; over 1024 the IdP refuses before hashing anyway.
      if (password.length < 8 || password.length > 1024) {
        err('tessera hash-password: the password on standard input must be 8 to 1024 characters\n')
        return EXIT.problem
      }
      out(`${await hash(password)}\n`)
      return EXIT.ok
    }
    case 'gen-key':
      out(`${randomId(6)}:${randomBytes(32).toString('base64url')}\n`)
      return EXIT.ok
    case 'check-config':
      return checkConfig(out)
    case 'check-callback':
      return checkCallback(rest, out, err)
    case 'app-key':
      return appKey(rest, out, err)
    case 'sessions':
      return sessions(rest, out, err)
    default:
      err(`tessera: unknown command "${command}"\n`)
      return EXIT.usage
  }
}

process.exitCode = await main(process.argv.slice(2))
