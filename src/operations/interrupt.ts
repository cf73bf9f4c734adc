// Ctrl-C during a command: the first SIGINT asks the running command to stop at its next safe point (it
// then exits 9 and says how to resume); a second Ctrl-C, or SIGTERM/SIGHUP (a CI runner cancelling, a closed
// terminal), stops at once: the helm run in flight gets SIGTERM (its own process group, so helm can mark its
// release instead of being killed mid-write), and the command exits 9 saying what is left. Nothing keeps
// running in the background.
import { ExitCode, UserError } from '../platform/errors.js'
import { helmInFlight } from '../cluster/helm.js'

export class Interrupt {
  requested = false
  private handler = (signal: NodeJS.Signals) => {
    if (this.requested || signal !== 'SIGINT') return this.stopNow(signal)
    this.requested = true
    process.stderr.write(
      '\nInterrupt received: finishing the current step, then stopping (nothing is left half-applied). Press Ctrl-C again to stop at once.\n',
    )
  }

  constructor(private resumeHint: string) {
    for (const s of SIGNALS) process.on(s, this.handler)
  }

  error(): UserError {
    return new UserError('interrupted', ExitCode.Interrupted, this.resumeHint)
  }

  private cleanups: (() => Promise<void>)[] = []

  /** Runs fn (bounded to 2 s in all) when the command stops at once, e.g. to give back the run lock. */
  onStop(fn: () => Promise<void>): void {
    this.cleanups.push(fn)
  }

  private stopNow(signal: NodeJS.Signals): void {
    const helm = helmInFlight()
    let cut = ''
    if (helm?.pid) {
      try {
        process.kill(-helm.pid, 'SIGTERM')
        cut = `; the helm run in flight (${helm.spawnargs.slice(1, 3).join(' ')}) was sent SIGTERM`
      } catch {
        // It had already ended.
      }
    }
    process.stderr.write(`\nError: stopped at once (${signal})${cut}; ${this.resumeHint}\n`)
    const bound = new Promise((r) => setTimeout(r, 2000).unref())
    void Promise.race([Promise.allSettled(this.cleanups.map((f) => f())), bound]).then(() =>
      process.exit(ExitCode.Interrupted),
    )
  }

  dispose(): void {
    for (const s of SIGNALS) process.off(s, this.handler)
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
