/**
 * `tessera hash-password`: a password in, its argon2id PHC string out. In a terminal it asks twice,
 * without echo; otherwise it reads standard input, so scripts can pipe a password in.
 */
import { hash } from '@node-rs/argon2'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { EXIT } from './environment.js'

export const HELP = `Usage: tessera hash-password
       printf '%s' 'a long passphrase' | tessera hash-password

In a terminal, asks for the password twice without showing it. Otherwise reads it from standard
input (one trailing newline is dropped). Prints its argon2id PHC string (m=19456 KiB, t=2, p=1:
OWASP's recommended minimum) for the users file.
It takes no argument: a password on the command line would stay in the shell's history.
Exit codes: 0 printed; 1 shorter than 8 or longer than 1024 characters, or the two entries differ;
2 an argument given; 130 cancelled (Ctrl-C or end of input at the prompt).
`

const CANCELLED = 130

export async function hashPassword(out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let password: string
  if (process.stdin.isTTY === true) {
    const answers = await askHidden(['Password: ', 'Again: '], err)
    if (answers === undefined) { err('tessera hash-password: cancelled\n'); return CANCELLED }
    const [first, second] = answers as [string, string]
    if (first !== second) { err('tessera hash-password: the two passwords do not match; nothing printed\n'); return EXIT.problem }
    password = first
  } else {
    password = await readStdin()
  }
  // ASVS 5.0 V6.2.1: at least 8 characters (code points, so an emoji is one, as the login form's
  // limit counts them); over 1024 the IdP refuses before hashing anyway.
  const characters = [...password].length
  if (characters < 8 || characters > 1024) {
    err('tessera hash-password: the password must be 8 to 1024 characters\n')
    return EXIT.problem
  }
  out(`${await hash(password)}\n`)
  return EXIT.ok
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/**
 * Asks each prompt on the terminal (prompts on stderr, so stdout holds only the hash) and reads one
 * line per prompt with echo off: readline puts the terminal in raw mode and echoes into a stream
 * that drops everything. Resolves undefined on Ctrl-C or end of input.
 */
function askHidden(prompts: readonly string[], err: (s: string) => void): Promise<string[] | undefined> {
  const silent = new Writable({ write(_chunk, _encoding, done) { done() } })
  const rl = createInterface({ input: process.stdin, output: silent, terminal: true })
  const answers: string[] = []
  return new Promise((resolve) => {
    const finish = (result: string[] | undefined): void => {
      rl.removeAllListeners('close')
      rl.close()
      resolve(result)
    }
    rl.on('line', (line) => {
      err('\n')
      answers.push(line)
      if (answers.length === prompts.length) finish(answers)
      else err(prompts[answers.length] as string)
    })
    rl.on('SIGINT', () => { err('\n'); finish(undefined) })
    rl.on('close', () => { err('\n'); resolve(undefined) })
    err(prompts[0] as string)
  })
}
