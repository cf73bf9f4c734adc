// An unknown command: one line with the closest known one, in a terminal and in CI alike (exit 2), instead
// of a prompt that a pipeline cannot answer.
import type { Hook } from '@oclif/core'
import { closest, distance } from 'fastest-levenshtein'
import { ExitCode } from '../platform/errors.js'

const hook: Hook.CommandNotFound = async function (opts) {
  const ids = opts.config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases])
  const guess = ids.length ? closest(opts.id, ids) : undefined
  const near = guess && distance(opts.id, guess) <= Math.max(2, Math.floor(opts.id.length / 3))
  const message = `"${opts.id}" is not a ${opts.config.bin} command`
  const hint = `${near ? `did you mean "${guess}"? ` : ''}(${opts.config.bin} help lists them all)`
  if (process.argv.includes('--json'))
    process.stdout.write(JSON.stringify({ error: { message, hint }, exitCode: ExitCode.Usage }, null, 2) + '\n')
  process.stderr.write(`Error: ${message}; ${hint}\n`)
  process.exit(ExitCode.Usage)
}

export default hook
