/** Where the IdP's templates and stylesheet live, relative to this module in src/ or dist/src/. */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('tessera: package.json not found above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
  return dir
}

const root = packageRoot()
export const VIEWS_DIR = join(root, 'views')
export const STYLESHEET = join(root, 'public', 'tessera.css')
export const PASSKEYS_SCRIPT = join(root, 'public', 'passkeys.js')
