// Parsing of flag values shared by commands; every bad value is a usage error (exit 2) naming the flag.
import parseDurationText from 'parse-duration'
import { ExitCode, UserError } from './errors.js'

/**
 * A duration as helm and kubectl take it (Go syntax: 90s, 15m, 1h30m, 5m0s, 1.5h; a bare number is seconds,
 * as kubectl's --request-timeout), parsed by parse-duration once the syntax is known good. 0 and negative
 * values are refused: a timeout that has already passed would fail after the first write.
 */
export function parseDuration(text: string, flag = '--timeout'): number {
  const t = text.trim()
  const go = /^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(t)
  const ms = /^-?\d+$/.test(t) ? Number(t) * 1000 : go ? parseDurationText(t.replace(/^-/, '')) : null
  if (typeof ms !== 'number' || !Number.isFinite(ms))
    throw new UserError(`${flag} "${text}" is not a duration`, ExitCode.Usage, 'use e.g. 90s, 15m, 1h30m or 5m0s')
  if (t.startsWith('-') || ms <= 0)
    throw new UserError(`${flag} "${text}" must be longer than 0s`, ExitCode.Usage, 'use e.g. 90s, 15m or 1h30m')
  return ms
}

/** --feature name=true|false, repeatable; the last one of a name wins. */
export function parseFeatures(features: string[]): Record<string, boolean> {
  const out: Record<string, boolean> = {}
  for (const f of features) {
    const m = /^([A-Za-z0-9_-]+)=(true|false)$/.exec(f.trim())
    if (!m) throw new UserError(`--feature "${f}" is not name=true|false`, ExitCode.Usage, 'e.g. --feature agents=true')
    out[m[1]!] = m[2] === 'true'
  }
  return out
}

/** --feature name=true|false -> helm --set features.name=bool */
export function featureSets(features: string[]): string[] {
  return Object.entries(parseFeatures(features)).map(([name, on]) => `features.${name}=${on}`)
}

export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UserError(
      '--registry-password-stdin expects the password on stdin',
      ExitCode.Usage,
      'pipe it: echo "$PASSWORD" | krateo-installer install ...',
    )
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
  if (!text) throw new UserError('no password on stdin', ExitCode.Usage, 'pipe the registry password on stdin')
  return text
}

/** -n must be a DNS-1123 label, as Kubernetes will require; checked before anything is written. */
export function checkNamespace(ns: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) {
    throw new UserError(
      `-n/--namespace "${ns}" is not a valid namespace name`,
      ExitCode.Usage,
      'use lowercase letters, digits and "-", at most 63 characters, starting and ending with a letter or digit',
    )
  }
  return ns
}
