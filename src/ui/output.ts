// Rendering for people and machines: aligned tables with colour on a terminal, one stable JSON/YAML
// document (schemaVersion 1, see docs/status-json.md) for CI, and timestamped progress lines when not on a TTY.
import chalk from 'chalk'
import { stringify } from 'yaml'
import { type PlatformState, phaseText } from '../platform/state.js'
import { type ComponentState, STAGE_TEXT } from '../platform/component-state.js'
import { printable } from '../platform/errors.js'

export const STATUS_SCHEMA_VERSION = 1

export function adminPasswordCommand(namespace: string): string {
  return `kubectl get secret admin-password -n ${namespace} -o jsonpath='{.data.password}' | base64 -d`
}

export function statusDocument(state: PlatformState): Record<string, unknown> {
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    phase: state.phase,
    namespace: state.namespace,
    installerVersion: state.installerVersion,
    engineGeneration: state.generation ?? null,
    ready: state.ready,
    total: state.total,
    components: state.components.map((c) => ({
      name: c.name,
      feature: c.feature,
      enabled: c.enabled,
      version: c.version,
      stage: c.stage,
      ready: c.ready
        ? { status: c.ready.status, reason: c.ready.reason ?? null, message: c.ready.message ?? null }
        : null,
      synced: c.synced
        ? { status: c.synced.status, reason: c.synced.reason ?? null, message: c.synced.message ?? null }
        : null,
      waitingFor: c.waitingFor,
      detail: c.detail,
      ageSeconds: c.ageSeconds,
    })),
    endpoints: state.endpoints,
    portalUrl: state.portalUrl,
    portalGap: state.portalGap,
    adminPasswordCommand: state.phase === 'NotInstalled' ? null : adminPasswordCommand(state.namespace),
    problems: state.problems,
    notes: state.notes,
    pausedBy: state.pausedBy,
    lock: state.lock,
  }
}

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 })
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return ''
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => stripAnsi(r[i] ?? '').length)))
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - stripAnsi(cell).length)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '')

export function stageColour(c: ComponentState): string {
  const text = c.stage === 'waiting-deps' ? printable(`waiting for ${c.waitingFor.join(', ')}`) : STAGE_TEXT[c.stage]
  switch (c.stage) {
    case 'ready':
      return chalk.green(text)
    case 'error':
    case 'stuck':
      return chalk.red(text)
    case 'disabled':
      return chalk.dim(text)
    case 'deleting':
    case 'draining':
    case 'retiring':
      return chalk.yellow(text)
    default:
      return chalk.cyan(text)
  }
}

const age = (s: number | null) =>
  s === null ? '-' : s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`
const cond = (c: ComponentState['ready']) => (c ? `${c.status}${c.reason ? ` ${c.reason}` : ''}` : '-')

/** The status as a table for people; every string from the cluster escaped for the terminal (printable). */
export function renderStatus(state: PlatformState): string {
  const p = printable
  const phase = phaseText(state)
  const colour =
    state.phase === 'Ready'
      ? chalk.green
      : state.phase === 'Degraded' || state.phase === 'Stuck'
        ? chalk.red
        : chalk.yellow
  const about = [
    state.installerVersion ? `installer ${state.installerVersion}` : '',
    state.generation && state.generation !== 'unknown' ? `engine Gen ${state.generation}` : '',
  ]
    .filter(Boolean)
    .join(', ')
  const lines = [`Krateo platform in ${state.namespace}: ${colour(phase)}${about ? ` (${about})` : ''}`]
  if (state.components.length) {
    lines.push('')
    const rows = [['COMPONENT', 'FEATURE', 'VERSION', 'STAGE', 'READY', 'SYNCED', 'AGE', 'DETAIL']]
    for (const c of state.components) {
      rows.push([
        p(c.name),
        p(c.feature ?? '-'),
        p(c.version),
        stageColour(c),
        p(cond(c.ready)),
        p(cond(c.synced)),
        age(c.ageSeconds),
        c.stage === 'ready' ? '' : p(c.detail),
      ])
    }
    lines.push(table(rows))
  }
  if (state.endpoints.length) {
    lines.push('', 'Endpoints:')
    for (const e of state.endpoints)
      lines.push(
        p(
          `  ${e.component.padEnd(20)} ${e.url ?? `(${e.type}: no address yet)`}${e.hostnameOnly ? ' (load balancer hostname)' : ''}`,
        ),
      )
  }
  if (state.portalUrl) lines.push('', `Portal: ${p(state.portalUrl)}`)
  // A gap the notes already explain at length is not said twice.
  else if (state.portalGap && !state.notes.some((n) => n.startsWith(state.portalGap!.why)))
    lines.push('', `Portal: none yet: ${p(state.portalGap.why)}`)
  if (state.phase !== 'NotInstalled' && state.phase !== 'Bootstrapping')
    lines.push(`Admin password: ${adminPasswordCommand(state.namespace)}`)
  if (state.problems.length) lines.push('', chalk.red('Problems:'), ...state.problems.map((x) => `  ${p(x)}`))
  if (state.notes.length) lines.push('', chalk.yellow('Notes:'), ...state.notes.map((n) => `  ${p(n)}`))
  if (state.pausedBy) lines.push('', `Installer ${chalk.yellow(p(state.pausedBy))}`)
  if (state.lock)
    lines.push(
      '',
      p(
        `In progress: ${state.lock.command} by ${state.lock.holder}, since ${state.lock.since} (holds the krateo-installer lock)`,
      ),
    )
  if (state.phase === 'NotInstalled') lines.push('', 'Nothing installed here. Install with: krateo-installer install')
  return lines.join('\n')
}

/** A progress line for logs and CI: a UTC timestamp, then the message. */
export function stamp(message: string): string {
  return `${new Date().toISOString().slice(11, 19)} ${message}`
}
