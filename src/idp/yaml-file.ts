/**
 * Reads and parses a YAML file in a short-lived child process, synchronously for the caller. The
 * parse of a users file of a few thousand entries leaves some 20 MB of parser garbage (the `yaml`
 * package's document and syntax tree) whose pages V8 keeps for the rest of the process's life: the
 * IdP's RSS then stays that much higher (bench/README.md, issue 17). In a child they go with it, and
 * the IdP never loads the parser at all. The result comes back as a structured clone (v8.serialize),
 * so every value YAML can give arrives as the parser made it.
 */
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { deserialize } from 'node:v8'

/**
 * The document; or why not: the file's errno code, the first line of the YAML parser's message, or
 * why the child process that reads it did not answer (it could not start, or died).
 */
export type YamlFileResult =
  | { readonly doc: unknown }
  | { readonly error: { readonly code: string } | { readonly yaml: string } | { readonly reader: string } }

// The child is a CommonJS script: it loads the yaml package's CommonJS build, from where we are.
const YAML_MODULE = createRequire(import.meta.url).resolve('yaml')
// merge: Authelia (go-yaml) resolves `<<: *anchor`; unresolved, a merged `disabled` would be lost.
// Only the message's first line (what and where): the lines after it quote the file, passwords included.
const CHILD = `
const [yaml, path] = process.argv.slice(1)
let result
try {
  result = { doc: require(yaml).parse(require('node:fs').readFileSync(path, 'utf8'), { merge: true }) }
} catch (err) {
  result = { error: typeof err?.errno === 'number' ? { code: String(err.code) } : { yaml: String(err?.message).split('\\n')[0].replace(/:$/, '') } }
}
process.stdout.write(require('node:v8').serialize(result))
`

export function readYamlFile(path: string): YamlFileResult {
  const child = spawnSync(process.execPath, ['-e', CHILD, '--', YAML_MODULE, path], {
    // Its stderr is kept out of the IdP's: a start-up failure is one line naming the variable.
    maxBuffer: 1024 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true,
  })
  if (child.error !== undefined) return { error: { reader: `could not start ${process.execPath} (${(child.error as NodeJS.ErrnoException).code ?? child.error.message})` } }
  // Killed (out of memory, a signal) or failed before it could answer: nothing to read.
  if (child.status !== 0 || child.stdout.length === 0) {
    return { error: { reader: `the reading process ended with ${child.signal ?? `exit code ${child.status ?? '?'}`} before answering` } }
  }
  return deserialize(child.stdout) as YamlFileResult
}
