#!/usr/bin/env node
/** `tessera`: everyday commands for operators. It writes to stdout/stderr itself: a CLI, not the server. */
import { randomBytes } from 'node:crypto'
import { randomId } from '../shared/crypto.js'
import { appKey, HELP as APP_KEY_HELP } from './app-key.js'
import { checkCallback, HELP as CHECK_CALLBACK_HELP } from './check-callback.js'
import { checkConfig, HELP as CHECK_CONFIG_HELP } from './check-config.js'
import { environment, EXIT } from './environment.js'
import { ConfigError } from '../shared/errors.js'
import { gate, HELP as GATE_HELP } from './gate.js'
import { hashPassword, HELP as HASH_HELP } from './hash-password.js'
import { sessions, HELP as SESSIONS_HELP } from './sessions.js'
import { factors, HELP as FACTORS_HELP } from './factors.js'

const HELP = `Usage: tessera <command> [--help]

Commands:
  hash-password            ask for a password (or read it on standard input), print its argon2id PHC string
  gen-key                  print a new id:key pair for SYNC_KEYS
  app-key <origin>         print the appKeys one app holds (derived from SYNC_KEYS)
  check-config             load the IdP's configuration as it would, ping Redis, list every problem
  check-callback <url>     say whether the IdP would redirect to <url>, and why not
  sessions list <user>     list a user's live sessions
  sessions revoke <user>   end every session of a user, everywhere
  factors list <user>      list a user's second factors
  factors reset <user>     remove every second factor of a user and end their sessions
  gate                     run the forward-auth gate for nginx, Caddy or Traefik (docs/forward-auth.md)

Exit codes: 0 success; 1 a problem found or bad input; 2 usage error; 3 Redis does not answer.
`

const GEN_KEY_HELP = `Usage: tessera gen-key

Prints a new random id:key pair (32 random bytes, base64url), for SYNC_KEYS or FACTOR_KEYS.
To rotate SYNC_KEYS (docs/deploy.md, key rotation): first give every app the appKeys that
'tessera app-key <origin>' prints with SYNC_KEYS=new,old; only then the IdP SYNC_KEYS=new,old
(it mints with the first key: an app that does not hold it yet refuses every sign-in).
Exit codes: 0 printed, 2 usage.
`

const out = (s: string): void => { process.stdout.write(s) }
const err = (s: string): void => { process.stderr.write(s) }

const HELPS: Record<string, string> = {
  'hash-password': HASH_HELP, 'gen-key': GEN_KEY_HELP, 'check-config': CHECK_CONFIG_HELP,
  'check-callback': CHECK_CALLBACK_HELP, 'app-key': APP_KEY_HELP, sessions: SESSIONS_HELP,
  factors: FACTORS_HELP, gate: GATE_HELP,
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) { err(HELP); return EXIT.usage }
  if (command === '--help' || command === '-h' || command === 'help') { out(HELP); return EXIT.ok }
  const help = HELPS[command]
  if (help === undefined) { err(`tessera: unknown command "${command}"\n\n${HELP}`); return EXIT.usage }
  if (rest.includes('--help') || rest.includes('-h')) { out(help); return EXIT.ok }
  switch (command) {
    case 'hash-password':
      // A password given as an argument would stay in the shell's history and in `ps`: refused, not ignored.
      if (rest.length > 0) { err(`tessera hash-password takes no argument: type the password at the prompt or pipe it in\n\n${HASH_HELP}`); return EXIT.usage }
      return hashPassword(out, err)
    case 'gen-key':
      if (rest.length > 0) { err(GEN_KEY_HELP); return EXIT.usage }
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
    case 'gate':
      return gate(environment(), err)
    case 'factors':
      return factors(rest, out, err)
    default:
      err(`tessera: unknown command "${command}"\n`)
      return EXIT.usage
  }
}

// Output cut short by its reader (`tessera sessions list alice | head -1`): stop, as a Unix tool
// does, with the command's own exit code and no stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e
  process.exit(process.exitCode ?? EXIT.ok)
})

// A .env that cannot be read (permissions, a directory) is one line naming it, as every other
// configuration problem, never a stack trace.
process.exitCode = await main(process.argv.slice(2)).catch((e: unknown) => {
  if (!(e instanceof ConfigError)) throw e
  err(`tessera ${process.argv[2] ?? ''}: ${e.problems.join('; ')}\n`)
  return EXIT.problem
})
