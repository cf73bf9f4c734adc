// Every failure a user can cause ends as one UserError: one line saying what happened and what to do,
// and an exit code from this table (documented in the README). Anything else is a bug (exit 1).
export const ExitCode = {
  Ok: 0,
  Internal: 1,
  Usage: 2,
  Cluster: 3,
  Helm: 4,
  Permission: 5,
  Timeout: 6,
  Stuck: 7,
  Chart: 8,
  Interrupted: 9,
  NotReady: 10,
  Locked: 11,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export class UserError extends Error {
  /** The API server could not be reached (refused, reset, timed out, 502-504): a run retries until its deadline. */
  transient = false

  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message)
    this.name = 'UserError'
  }

  /** The single line a user sees. */
  line(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message
  }
}

/** Strips anything that looks like a credential before a message reaches a terminal or a log. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
  for (const secret of secrets) if (secret) out = out.split(secret).join('***')
  return out
    .replace(/(password|token|secret)(["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1$2***')
    .replace(/(Authorization:\s*Bearer\s+)\S+/gi, '$1***')
}

/**
 * A string from the cluster made safe for a terminal: control characters (C0 but newline and tab, DEL, C1) are
 * written as \xNN, so an annotation or a condition message cannot move the cursor, retitle the window or hide
 * text with escape sequences. JSON output needs none of this (JSON escapes them itself).
 */
export function printable(text: string): string {
  let out = ''
  for (const ch of text) {
    const c = ch.charCodeAt(0)
    out +=
      (c < 0x20 && ch !== '\n' && ch !== '\t') || (c >= 0x7f && c <= 0x9f)
        ? `\\x${c.toString(16).padStart(2, '0')}`
        : ch
  }
  return out
}
