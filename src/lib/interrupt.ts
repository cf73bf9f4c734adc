// Ctrl-C during a command: never kill a helm run or an API write half-way. The first SIGINT asks the
// running command to stop at the next safe point; it then exits with code 9 and says how to resume.
import { ExitCode, UserError } from './errors.js'

export class Interrupt {
  requested = false
  private handler = () => {
    if (this.requested) return
    this.requested = true
    process.stderr.write('\nInterrupt received: finishing the current step, then stopping (nothing is left half-applied)...\n')
  }

  constructor(private resumeHint: string) {
    process.on('SIGINT', this.handler)
    process.on('SIGTERM', this.handler)
  }

  error(): UserError {
    return new UserError('interrupted', ExitCode.Interrupted, this.resumeHint)
  }

  dispose(): void {
    process.off('SIGINT', this.handler)
    process.off('SIGTERM', this.handler)
  }
}
