// Scratch directories a test file makes (charts, helm wrappers, kubeconfigs), removed when its process exits,
// whether its tests passed or not: a suite run leaves nothing in the machine's temporary directory.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made: string[] = []
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

/** A new directory under the temporary directory, named `<prefix>XXXXXX`, removed at exit. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}
