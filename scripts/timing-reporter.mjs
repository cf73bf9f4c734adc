// A node:test reporter that prints where the suite's time went, after the spec reporter's output: each test
// file's wall time, and the ten slowest tests. scripts/test.sh adds it beside the spec reporter.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, relative } from 'node:path'

/** Where the last run's time per file is kept: scripts/run-tests.mjs starts the longest first. */
export const timesFile = () =>
  join(process.env.KRATEO_SANDBOX_CACHE ?? join(homedir(), '.cache', 'krateo-installer'), 'test-file-times.json')

const fmt = (ms) =>
  ms >= 60_000
    ? `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`
    : `${(ms / 1000).toFixed(1)}s`

/** Where the sandboxes' CPU went ($KRATEO_SANDBOX_CPU_LOG: a line per sandbox, written as it stops). */
function cpuSummary() {
  let lines
  try {
    lines = readFileSync(process.env.KRATEO_SANDBOX_CPU_LOG ?? '', 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(JSON.parse)
  } catch {
    return ''
  }
  const byProcess = new Map()
  const byFile = new Map()
  for (const l of lines) {
    const file = `${relative(process.cwd(), l.file)}${l.generation === 'N' ? ' [Gen N]' : ''}`
    for (const [name, sec] of Object.entries(l.cpu)) {
      byProcess.set(name, (byProcess.get(name) ?? 0) + sec)
      byFile.set(file, (byFile.get(file) ?? 0) + sec)
    }
  }
  const total = [...byProcess.values()].reduce((a, b) => a + b, 0)
  let out = `CPU of the ${lines.length} sandboxes (total ${fmt(total * 1000)}), by process:\n`
  for (const [name, sec] of [...byProcess].sort((a, b) => b[1] - a[1]))
    out += `  ${fmt(sec * 1000).padStart(7)}  ${name}\n`
  out += 'by file (the ten largest):\n'
  for (const [file, sec] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 10))
    out += `  ${fmt(sec * 1000).padStart(7)}  ${file}\n`
  return out
}

/** A failed test's error in a few lines: its first lines and the lines the CLI ends a failure with. */
function whyFailed(details) {
  const err = details?.error
  if (!err) return ''
  const lines = String(err.cause?.message ?? err.cause ?? err.message ?? err).split('\n')
  const errorLines = lines.slice(2).filter((l) => /^\s*(Error|.*timed out|.*not found)/.test(l))
  return [...lines.slice(0, 2), ...errorLines.slice(0, 4)]
    .filter((l) => l.trim())
    .map((l) => l.slice(0, 300))
    .join('\n')
}

export default async function* timingReporter(source) {
  const started = Date.now()
  const files = new Map()
  const tests = []
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    const { name, nesting, file, details } = event.data
    const ms = details?.duration_ms ?? 0
    const where = file ? relative(process.cwd(), file) : name
    // A file's time is that of its top-level suites and tests (their before/after hooks, the sandbox's start and
    // stop, included). The Gen N files run the Gen S files' suites (their titles say so): kept apart. When each
    // ended shows the run's tail (what ran last, alone).
    if (nesting === 0) {
      const key = / \[Gen N\]$/.test(name) ? `${where} [Gen N]` : where
      const seen = files.get(key) ?? { ms: 0, endedAt: 0 }
      files.set(key, {
        ms: seen.ms + ms,
        endedAt: Date.now() - started,
        failed: seen.failed || event.type === 'test:fail',
      })
    }
    if (details?.type !== 'suite')
      tests.push({ name: `${where}: ${name}`, ms, failed: event.type === 'test:fail', why: whyFailed(details) })
  }
  try {
    mkdirSync(dirname(timesFile()), { recursive: true })
    // Merged into what earlier runs measured: a run of a few files keeps the others' times.
    let saved = {}
    try {
      saved = JSON.parse(readFileSync(timesFile(), 'utf8'))
    } catch {
      /* first run */
    }
    // A failed file ended early: its time would start it last next time (the real lane, failed in 34 s, did).
    for (const [f, t] of files) if (!t.failed) saved[f] = Math.round(t.ms)
    writeFileSync(timesFile(), JSON.stringify(saved))
  } catch {
    /* the order of the next run is a nicety */
  }
  const total = [...files.values()].reduce((a, b) => a + b.ms, 0)
  // The real-engine lane and the simulator's files, apart: the suite's budget names both (README).
  const real = [...files].filter(([f]) => f.includes('real-engine')).reduce((a, [, t]) => a + t.ms, 0)
  // The simulator part's own wall time is its file time over the run's slots (files run side by side, the lane in one).
  const slots = Number(process.env.KRATEO_TEST_CONCURRENCY ?? 2)
  let out = `\nTime per test file (total ${fmt(total)}; the real-engine lane ${fmt(real)}, the rest ${fmt(total - real)}, ${fmt((total - real) / slots)} on ${slots} slots):\n`
  for (const [file, t] of [...files].sort((a, b) => b[1].ms - a[1].ms))
    out += `  ${fmt(t.ms).padStart(7)}  ${file} (ended at ${fmt(t.endedAt)})\n`
  out += 'The ten slowest tests:\n'
  for (const t of tests.sort((a, b) => b.ms - a.ms).slice(0, 10))
    out += `  ${fmt(t.ms).padStart(7)}  ${t.name}${t.failed ? ' (failed)' : ''}\n`
  out += cpuSummary()
  // Last, where a CI log's tail shows it: what each failed test said, in short.
  const failed = tests.filter((t) => t.failed)
  if (failed.length) out += 'Why the failed tests failed:\n'
  for (const t of failed) out += `  ${t.name}\n${t.why.replace(/^/gm, '      ')}\n`
  out += `Unit and sandbox tests took ${fmt(Date.now() - started)} from first to last (files run side by side).\n`
  yield out
}
