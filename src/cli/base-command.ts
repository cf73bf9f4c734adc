// What every command shares: the global flags, and the one place where errors become one line and an
// exit code (a stack trace only with --verbose).
import { Command, Flags, Errors } from '@oclif/core'
import chalk from 'chalk'
import { ExitCode, UserError, printable, redact } from '../platform/errors.js'

export abstract class KrateoCommand extends Command {
  static override baseFlags = {
    kubeconfig: Flags.string({
      description: 'path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)',
      helpGroup: 'GLOBAL',
    }),
    context: Flags.string({
      description: 'kubeconfig context to use (default: the current context)',
      helpGroup: 'GLOBAL',
    }),
    namespace: Flags.string({
      char: 'n',
      description: 'namespace of the Krateo platform',
      default: 'krateo-system',
      helpGroup: 'GLOBAL',
    }),
    json: Flags.boolean({
      description: 'print one JSON document (progress goes to stderr)',
      default: false,
      helpGroup: 'GLOBAL',
    }),
    verbose: Flags.boolean({
      description: 'print details of every step, and stack traces on errors',
      default: false,
      helpGroup: 'GLOBAL',
    }),
    'no-color': Flags.boolean({
      description: 'no colours (also when NO_COLOR is set)',
      default: false,
      helpGroup: 'GLOBAL',
    }),
  }

  protected verbose = false

  override async init(): Promise<void> {
    // Before any output: colours off for --no-color and NO_COLOR (https://no-color.org), as in kubectl and helm.
    if (this.argv.includes('--no-color') || (process.env.NO_COLOR ?? '') !== '') {
      chalk.level = 0
      process.env.NO_COLOR = '1'
      process.env.FORCE_COLOR = '0'
    }
    this.verbose = this.argv.includes('--verbose')
    await super.init()
  }

  /** With --json, a failure is a JSON document on stdout too, so CI can parse it. */
  private get wantsJson(): boolean {
    const a = this.argv
    return (
      a.includes('--json') ||
      ['-ojson', '-o=json', '--output=json'].some((x) => a.includes(x)) ||
      a.some((x, i) => (x === '-o' || x === '--output') && a[i + 1] === 'json')
    )
  }

  private failJson(message: string, hint: string | undefined, exitCode: number): void {
    if (!this.wantsJson) return
    process.stdout.write(
      JSON.stringify({ error: { message: redact(message), hint: hint ? redact(hint) : null }, exitCode }, null, 2) +
        '\n',
    )
  }

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
      const message = redact(
        err.message
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !/^The following errors? occurred:?$/i.test(l) && !/^See more help/i.test(l))
          .join('; '),
      )
        // A value given to an unknown password/token flag is a secret typed in the wrong place: never echo it.
        .replace(
          /(Nonexistent flags?: --[\w-]*(?:password|token|secret)[\w-]*)(.*?Unexpected argument: )\S+/gi,
          '$1$2***',
        )
      this.failJson(message, 'see --help', ExitCode.Usage)
      process.stderr.write(`Error: ${message}; see --help\n`)
      process.exitCode = ExitCode.Usage
      this.exit(ExitCode.Usage)
    }
    if (err instanceof UserError) {
      this.failJson(err.message, err.hint, err.exitCode)
      process.stderr.write(`Error: ${printable(redact(err.line()))}\n`)
      if (this.verbose && err.stack) process.stderr.write(redact(err.stack) + '\n')
      this.exit(err.exitCode)
    }
    this.failJson(
      `unexpected failure: ${err.message.split('\n')[0] ?? ''}`,
      're-run with --verbose and report it',
      ExitCode.Internal,
    )
    process.stderr.write(
      `Error: unexpected failure: ${printable(redact(err.message.split('\n')[0] ?? ''))}; re-run with --verbose and report it\n`,
    )
    if (this.verbose && err.stack) process.stderr.write(redact(err.stack) + '\n')
    this.exit(ExitCode.Internal)
  }
}

/**
 * A command's description as prose: lines inside a paragraph joined, so oclif wraps them to the terminal
 * instead of breaking our own line breaks again; "Exit codes", "Stage N" and "--flag" lines start their own.
 */
export function prose(text: string): string {
  return text.split('\n').reduce((out, line, i) => {
    if (i === 0) return line
    if (!line.trim() || /^(Exit codes?:|Stage \d|--|With --)/.test(line) || out.endsWith('\n')) return `${out}\n${line}`
    return `${out} ${line}`
  }, '')
}
