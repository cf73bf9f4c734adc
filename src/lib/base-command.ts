// What every command shares: the global flags, and the one place where errors become one line and an
// exit code (a stack trace only with --verbose).
import { Command, Flags, Errors } from '@oclif/core'
import { ExitCode, UserError, redact } from './errors.js'

export abstract class KrateoCommand extends Command {
  static override baseFlags = {
    kubeconfig: Flags.string({ description: 'path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)', helpGroup: 'GLOBAL' }),
    context: Flags.string({ description: 'kubeconfig context to use (default: the current context)', helpGroup: 'GLOBAL' }),
    namespace: Flags.string({ char: 'n', description: 'namespace of the Krateo platform', default: 'krateo-system', helpGroup: 'GLOBAL' }),
    json: Flags.boolean({ description: 'print one JSON document (progress goes to stderr)', default: false, helpGroup: 'GLOBAL' }),
    verbose: Flags.boolean({ description: 'print details of every step, and stack traces on errors', default: false, helpGroup: 'GLOBAL' }),
  }

  protected verbose = false

  /** Writes a JSON document to stdout (the only thing on stdout with --json). */
  protected printJson(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n')
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // this.exit(n) throws an ExitError: let oclif carry the code out.
    if ((err as { code?: string }).code === 'EEXIT') throw err
    // oclif's own parse errors (unknown flag, bad option value) are usage errors.
    if (err instanceof Errors.CLIError && !(err instanceof UserError)) {
      if (err.oclif?.exit === 0) return
      const message = err.message.split('\n').map((l) => l.trim()).filter((l) => l && !/^The following errors? occurred:?$/i.test(l) && !/^See more help/i.test(l)).join('; ')
      process.stderr.write(`Error: ${message}; see --help\n`)
      process.exitCode = ExitCode.Usage
      this.exit(ExitCode.Usage)
    }
    if (err instanceof UserError) {
      process.stderr.write(`Error: ${redact(err.line())}\n`)
      if (this.verbose && err.stack) process.stderr.write(redact(err.stack) + '\n')
      this.exit(err.exitCode)
    }
    process.stderr.write(`Error: unexpected failure: ${redact(err.message.split('\n')[0] ?? '')}; re-run with --verbose and report it\n`)
    if (this.verbose && err.stack) process.stderr.write(redact(err.stack) + '\n')
    this.exit(ExitCode.Internal)
  }
}
