// Runs test files with node:test, longest first, two at a time ($KRATEO_TEST_CONCURRENCY), the spec reporter on
// stdout and the timing summary on stderr. Longest first because the run ends when its last file does: a long file
// started last (node's own runner starts them in path order) runs alone at the end while a core idles. The order
// comes from the previous run's file times (scripts/timing-reporter.mjs keeps them beside the sandbox's binaries);
// without them, from the list below. Exit code 1 when any test failed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { run } from 'node:test'
import { spec } from 'node:test/reporters'
import timing, { timesFile } from './timing-reporter.mjs'

const files = process.argv.slice(2)
const LONGEST = [
  'test/sandbox/real-engine.test.ts',
  'test/sandbox/gen-n/uninstall.test.ts',
  'test/sandbox/uninstall.test.ts',
  'test/sandbox/ownership.test.ts',
  'test/sandbox/upgrade.test.ts',
  'test/sandbox/gen-n/upgrade.test.ts',
  'test/sandbox/gen-n/chart-install.test.ts',
  'test/sandbox/rerun.test.ts',
]
const concurrency = Number(process.env.KRATEO_TEST_CONCURRENCY ?? 2)

/** The previous run's time per file, by the path the file is run as (a Gen N file as test/sandbox/gen-n/...). */
function previousTimes() {
  try {
    const saved = JSON.parse(readFileSync(timesFile(), 'utf8'))
    return new Map(
      Object.entries(saved).map(([key, ms]) => {
        const genN = / \[Gen N\]$/.exec(key)
        return [genN ? key.slice(0, genN.index).replace(/([^/]+)$/, 'gen-n/$1') : key, ms]
      }),
    )
  } catch {
    // No run measured on this machine yet: the longest as last measured (docs/benchmarks.md), the rest in path order.
    return new Map(LONGEST.map((f, i) => [f, LONGEST.length - i]))
  }
}

const times = previousTimes()
const ordered = [...files].sort((a, b) => (times.get(b) ?? 0) - (times.get(a) ?? 0) || a.localeCompare(b))

// The run's cluster images: a sandbox test that needs a Ready platform restores the one another file's sandbox
// kept after installing it, on the same registry address (sandbox/lib/sandbox.ts, freshPlatform in test/helpers).
const images = mkdtempSync(join(tmpdir(), 'krateo-images-'))
process.env.KRATEO_SANDBOX_IMAGES = images
// Each sandbox appends where its CPU went; the timing summary adds it up.
process.env.KRATEO_SANDBOX_CPU_LOG = join(images, 'cpu.jsonl')
process.on('exit', () => rmSync(images, { recursive: true, force: true }))

// node 20's run() takes the files in the order given (its command line sorts them by path).
const stream = run({ files: ordered, concurrency, timeout: 30 * 60_000 })
let failed = false
const toSpec = new PassThrough({ objectMode: true })
const toTiming = new PassThrough({ objectMode: true })
stream.on('test:fail', () => {
  failed = true
})
stream.pipe(toSpec)
stream.pipe(toTiming)
toSpec.compose(new spec()).pipe(process.stdout)
toTiming.compose(timing).pipe(process.stderr)
await new Promise((resolve) => toTiming.on('end', resolve))
process.exitCode = failed ? 1 : 0
