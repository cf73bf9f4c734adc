// The upgrade plan as text (--dry-run, and before the question).
import type { UpgradeOptions, UpgradePlan } from './plan.js'
import { needsPause, removalWaves, stagedLayers } from '../../platform/upgrade-plan.js'
import { dashed } from '../../platform/components.js'
import { table } from '../../ui/output.js'
import { traitsOf } from '../../platform/engine.js'

export function upgradePlanText(plan: UpgradePlan, opts: UpgradeOptions): string {
  const { diff, features } = plan
  const rows: string[][] = [
    ...diff.changed.map((c) => [c.name, `${c.from} -> ${c.to}`]),
    ...diff.added.map((c) => [c.name, `added (${c.version})`]),
    ...diff.removed.map((c) => [c.name, 'removed (drained leaves first)']),
  ]
  const kept = Object.entries(features.features)
    .filter(([n]) => !(n in features.patch))
    .map(([n, on]) => `${n}=${on}`)
  const lines = [
    `Plan: ${plan.direction === 'same' ? 'reconcile' : plan.direction} installer ${plan.from ?? '?'} -> ${plan.to} in ${opts.namespace} (${plan.source.chart})`,
    '',
    rows.length
      ? `Components (${diff.unchanged.length} unchanged):\n${table(rows.map((r) => ['  ' + r[0], r[1]!]))}`
      : `Components: none changes (${diff.unchanged.length} unchanged)`,
    `Features: ${features.changes.length ? features.changes.map((f) => `${f.name} ${f.from ?? 'unset'} -> ${f.to}`).join(', ') : 'no change'}${kept.length ? `; kept as running: ${kept.join(', ')}` : ''}`,
    'Kept: spec.features and every other runtime edit of the Installer CR; only components and componentValues are merged.',
    '',
    'Steps:',
    ...(needsPause(plan) ? ['  pause the Installer CR so nothing renders half-upgraded'] : []),
    `  helm upgrade ${plan.release} (bootstrap mode, hooks skipped; your previous values kept, new -f/--set on top)`,
  ]
  if (diff.removed.length)
    lines.push(
      `  drain removed components, leaves first: ${removalWaves(diff.removed)
        .map((w) => w.join(', '))
        .join(' | ')}`,
    )
  const staged = stagedLayers(plan)
  if (staged.length)
    lines.push(
      `  move definitions, dependencies first: ${staged.map((l) => l.map((c) => c.name).join(', ')).join(' | ')}`,
    )
  else if (traitsOf(plan.generation).pruneStaleVersions && diff.changed.length)
    lines.push(
      `  (Gen N: core-provider prunes versions nothing references, so the installer's render moves ${diff.changed.map((c) => c.name).join(', ')}; each is re-created at its new version)`,
    )
  lines.push(
    `  apply CompositionDefinition installer ${plan.to}, wait for its CRD to serve ${dashed(plan.to)}`,
    `  merge-patch components and componentValues${Object.keys(features.patch).length ? ' and the changed features' : ''} onto the Installer CR${needsPause(plan) ? ', unpausing it' : ''}`,
    '  follow every component until Ready (and feature-off ones until drained, leaves first)',
    '',
    'Dry run: nothing was changed.',
  )
  return lines.join('\n')
}
