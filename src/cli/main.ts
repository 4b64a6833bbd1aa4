#!/usr/bin/env node
/** `tessera`: everyday commands for operators. Prints to stdout/stderr directly: it is a CLI, not the server. */
import { hash } from '@node-rs/argon2'
import { randomBytes } from 'node:crypto'
import { randomId } from '../shared/crypto.js'

const HELP = `Usage: tessera <command>

Commands:
  hash-password   read a password on standard input, print its argon2id PHC string
  gen-key         print a new id:key pair for SYNC_KEYS

Exit codes: 0 success, 1 bad input, 2 usage error.
`

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || rest.includes('--help')) {
    process.stdout.write(HELP)
    return command === undefined ? 2 : 0
  }
  switch (command) {
    case 'hash-password': {
      const password = await readStdin()
      if (password.length === 0 || password.length > 1024) {
        process.stderr.write('tessera hash-password: the password on standard input must be 1 to 1024 characters\n')
        return 1
      }
      // @node-rs/argon2's defaults are argon2id, m=19456 KiB, t=2, p=1: OWASP's recommended minimum.
      process.stdout.write(`${await hash(password)}\n`)
      return 0
    }
    case 'gen-key':
      process.stdout.write(`${randomId(6)}:${randomBytes(32).toString('base64url')}\n`)
      return 0
    default:
      process.stderr.write(`tessera: unknown command "${command}"\n${HELP}`)
      return 2
  }
}

process.exitCode = await main(process.argv.slice(2))
