// Asking a person before something irreversible: only on a terminal, once per question, one question at a
// time, and a Ctrl-C at the prompt (or no answer in 10 minutes) is a "no" (the command then stops with exit 9),
// never a hang.
import { createInterface } from 'node:readline'
import { ExitCode, UserError } from '../platform/errors.js'

export const canAsk = (): boolean => !!process.stdin.isTTY && !!process.stderr.isTTY

/** How long a question waits for an answer: an unseen prompt must not hold the platform's lock for ever. */
export const ASK_TIMEOUT_MS = Number(process.env.KRATEO_INSTALLER_ASK_TIMEOUT_MS ?? 10 * 60_000)

/** One question at a time: parallel waits that both need a "yes" ask one after the other, never over each other. */
let asking: Promise<unknown> = Promise.resolve()

/** Resolves true only for an explicit y/yes; no answer within ASK_TIMEOUT_MS is a "no". */
export function ask(question: string): Promise<boolean> {
  const turn = asking.then(() => askNow(question))
  asking = turn.catch(() => undefined)
  return turn
}

function askNow(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr })
    let settled = false
    const timer = setTimeout(() => {
      process.stderr.write(`\nno answer in ${Math.round(ASK_TIMEOUT_MS / 60_000)} min: taken as no\n`)
      done(false)
    }, ASK_TIMEOUT_MS)
    timer.unref()
    const done = (answer: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      rl.close()
      resolve(answer)
    }
    rl.on('SIGINT', () => {
      process.stderr.write('\n')
      done(false)
    })
    rl.on('close', () => done(false))
    rl.question(`${question} [y/N] `, (a) => done(/^y(es)?$/i.test(a.trim())))
  })
}

/**
 * The confirmation a destructive flag needs: `--yes`, or a "yes" typed at a terminal. Without either it is
 * refused before anything changes (exit 9), with what it would have done.
 */
export async function confirmOrRefuse(what: string, plan: string, yes: boolean): Promise<void> {
  if (yes) return
  if (!canAsk())
    throw new UserError(
      `${what} needs confirmation, and there is no terminal to ask at (${plan})`,
      ExitCode.Interrupted,
      'nothing was changed; pass --yes to confirm in a non-interactive run',
    )
  if (!(await ask(`${what}: ${plan}. Continue?`)))
    throw new UserError(`${what} not confirmed`, ExitCode.Interrupted, 'nothing was changed')
}
