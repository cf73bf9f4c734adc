// Ctrl-C during a command: the first SIGINT asks the running command to stop at its next safe point (it
// then exits 9 and says how to resume); a second Ctrl-C, or SIGTERM/SIGHUP (a CI runner cancelling, a closed
// terminal), stops at once: the helm run in flight gets SIGTERM (its own process group, so helm can mark its
// release instead of being killed mid-write), and the command exits 9 saying what is left. Nothing keeps
// running in the background.
import { ExitCode, UserError, printable, redact } from '../platform/errors.js'
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

  /**
   * A throw nobody caught (a bug reached from a timer or an event): without this the process dies at once and no
   * finally runs, so the lock stays held and a helm child is orphaned. Ends like a second Ctrl-C, exit 1.
   */
  private crash = (err: unknown) => {
    const message = printable(redact(String((err as Error)?.message ?? err).split('\n')[0] ?? ''))
    this.stopNow('uncaught', `unexpected failure: ${message}; re-run with --verbose and report it`, ExitCode.Internal)
    if (process.argv.includes('--verbose') && (err as Error)?.stack)
      process.stderr.write(redact((err as Error).stack!) + '\n')
  }

  constructor(private resumeHint: string) {
    for (const s of SIGNALS) process.on(s, this.handler)
    process.on('uncaughtException', this.crash)
    process.on('unhandledRejection', this.crash)
  }

  error(): UserError {
    return new UserError('interrupted', ExitCode.Interrupted, this.resumeHint)
  }

  private cleanups: (() => Promise<void>)[] = []

  /** Runs fn (bounded to 2 s in all) when the command stops at once, e.g. to give back the run lock. */
  onStop(fn: () => Promise<void>): void {
    this.cleanups.push(fn)
  }

  private stopNow(signal: NodeJS.Signals | 'uncaught', what?: string, code: ExitCode = ExitCode.Interrupted): void {
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
    process.stderr.write(
      what
        ? `\nError: ${what}${cut}; ${this.resumeHint}\n`
        : `\nError: stopped at once (${signal})${cut}; ${this.resumeHint}\n`,
    )
    const bound = new Promise((r) => setTimeout(r, 2000).unref())
    void Promise.race([Promise.allSettled(this.cleanups.map((f) => f())), bound]).then(() => process.exit(code))
  }

  dispose(): void {
    for (const s of SIGNALS) process.off(s, this.handler)
    process.off('uncaughtException', this.crash)
    process.off('unhandledRejection', this.crash)
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
