// The upgrade plan's rules, pure: what moves between two component lists, the features after the upgrade,
// the direction, whether the Installer must pause, which definitions move ahead of it (and in which layers),
// when a moved definition runs at its new version, and what a plan rests on (checked again under the lock).
import semver from 'semver'
import { type Component, dashed, layers } from './components.js'
import { type KObj } from './kobj.js'
import { type Observed, UPGRADE_ANNOTATION, UPGRADE_FROM_ANNOTATION, crdServes, isReady } from './objects.js'
import { drainWaves } from './drain.js'
import { COMPOSITION_GROUP, INSTALLER_NAME, renderedByInstaller } from './ownership.js'
import { type Generation, traitsOf } from './engine.js'

export interface VersionChange {
  name: string
  from: string
  to: string
}
export interface FeatureChange {
  name: string
  from: boolean | null
  to: boolean
}

export interface ComponentDiff {
  added: Component[]
  /** In the running list (or left over as a definition) but not in the new one. */
  removed: Component[]
  changed: VersionChange[]
  unchanged: string[]
}

export interface FeaturePlan {
  /** The features after the upgrade. */
  features: Record<string, boolean>
  /** What is merged into spec.features: requested changes, and flags the new chart adds (its defaults). */
  patch: Record<string, boolean>
  changes: FeatureChange[]
}

export type Direction = 'upgrade' | 'same' | 'downgrade'

/** What the rules here read of an upgrade plan (operations/upgrade/plan.ts holds the whole plan). */
export interface PlanShape {
  direction: Direction
  diff: ComponentDiff
  features: FeaturePlan
  /** The new component list. */
  components: Component[]
  observed: Observed
  /** The engine generation (contract section 0): on Gen N, definitions are not moved ahead of the installer. */
  generation?: Generation
}

/** The facts an upgrade plan rests on: the running version, the Installer CR and its spec, the bootstrap release. */
export interface PlanBasis {
  from: string | null
  installerUid: string | undefined
  spec: string
  releaseRevision: number | undefined
}

export function planBasis(
  installer: KObj | null,
  cds: Observed['cds'],
  releaseRevision: number | undefined,
): PlanBasis {
  return {
    from: (cds.get('installer')?.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? null,
    installerUid: installer?.metadata.uid,
    spec: JSON.stringify(installer?.spec ?? null),
    releaseRevision,
  }
}

/**
 * What moved between the plan (read before the lock and the question) and now (under the lock): then nothing is
 * done, since the plan shown, its downgrade check included, no longer describes the platform (review N5). Pure.
 */
export function planDrift(planned: PlanBasis, now: PlanBasis): string | null {
  if (planned.installerUid !== now.installerUid) return 'the Installer CR was replaced or removed'
  if (planned.from !== now.from)
    return `the running installer is now ${now.from ?? 'unknown'}, not ${planned.from ?? 'unknown'}`
  if (planned.releaseRevision !== now.releaseRevision)
    return `the bootstrap release moved to revision ${now.releaseRevision ?? 'none'} (was ${planned.releaseRevision ?? 'none'})`
  if (planned.spec !== now.spec) return "the Installer CR's spec was edited"
  return null
}

/** Compares versions by semver (1.10.0 > 1.9.0, 1.0.0-rc.1 < 1.0.0, a leading v ignored); text order for what is not semver. Pure. */
export function compareVersions(a: string, b: string): number {
  const pa = semver.parse(a.trim().replace(/^v/, ''))
  const pb = semver.parse(b.trim().replace(/^v/, ''))
  if (pa && pb) return semver.compare(pa, pb)
  return Math.sign(a.localeCompare(b))
}

/** What moves between two component lists. Pure. */
export function diffComponents(current: Component[], next: Component[], leftovers: Component[] = []): ComponentDiff {
  const now = new Map(current.map((c) => [c.name, c]))
  const nextNames = new Set(next.map((c) => c.name))
  const out: ComponentDiff = { added: [], removed: [], changed: [], unchanged: [] }
  for (const c of next) {
    const before = now.get(c.name)
    if (!before) out.added.push(c)
    else if (before.version !== c.version) out.changed.push({ name: c.name, from: before.version, to: c.version })
    else out.unchanged.push(c.name)
  }
  out.removed = [
    ...current.filter((c) => !nextNames.has(c.name)),
    ...leftovers.filter((c) => !nextNames.has(c.name) && !now.has(c.name)),
  ]
  return out
}

/** The features after the upgrade: runtime values kept, requested ones applied, new flags at the chart's default. Pure. */
export function featurePlan(
  running: Record<string, boolean>,
  chartDefaults: Record<string, boolean>,
  requested: Record<string, boolean>,
): FeaturePlan {
  const patch: Record<string, boolean> = {}
  const changes: FeatureChange[] = []
  for (const [name, on] of Object.entries(chartDefaults)) {
    if (!(name in running) && !(name in requested)) {
      patch[name] = on
      changes.push({ name, from: null, to: on })
    }
  }
  for (const [name, on] of Object.entries(requested)) {
    if (running[name] === on) continue
    patch[name] = on
    changes.push({ name, from: name in running ? running[name]! : null, to: on })
  }
  return { features: { ...running, ...patch }, patch, changes }
}

export const directionOf = (from: string | null, to: string): Direction =>
  from === null
    ? 'upgrade'
    : compareVersions(to, from) > 0
      ? 'upgrade'
      : compareVersions(to, from) < 0
        ? 'downgrade'
        : 'same'

/**
 * The version an upgrade to `to` starts from: the installer's definition's, unless an earlier run towards the
 * same `to` was cut short after moving that definition; then the version that run recorded when it paused.
 */
export function upgradeFrom(installer: KObj | null, installerChartVersion: string | null, to: string): string | null {
  const ann = installer?.metadata.annotations ?? {}
  const recorded = ann[UPGRADE_FROM_ANNOTATION]
  return ann[UPGRADE_ANNOTATION] === to && recorded && semver.valid(recorded) ? recorded : installerChartVersion
}

/** Whether definitions must move with the Installer paused (anything but a same-version reconcile). */
export const needsPause = (plan: Pick<PlanShape, 'direction' | 'diff'>): boolean =>
  plan.direction !== 'same' || plan.diff.changed.length > 0 || plan.diff.removed.length > 0

/** A CompositionDefinition the installer rendered for a component no longer listed (an earlier run cut short). */
export function leftoverComponent(cd: KObj, installer: KObj | null): Component | null {
  if (cd.metadata.name === INSTALLER_NAME || !renderedByInstaller(cd, installer)) return null
  const version = (cd.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? ''
  return { name: cd.metadata.name, kind: String(cd.status?.kind ?? ''), version, deps: [] }
}

/** One line: what the plan changes. */
export function consequences(plan: Pick<PlanShape, 'diff' | 'features'>): string {
  const { diff, features } = plan
  const parts = [
    ...(diff.changed.length ? [`move ${diff.changed.map((c) => `${c.name} ${c.from} -> ${c.to}`).join(', ')}`] : []),
    ...(diff.added.length ? [`add ${diff.added.map((c) => c.name).join(', ')}`] : []),
    ...(diff.removed.length ? [`remove ${diff.removed.map((c) => c.name).join(', ')}`] : []),
    ...(features.changes.length
      ? [`switch ${features.changes.map((f) => `${f.name} ${f.to ? 'on' : 'off'}`).join(', ')}`]
      : []),
  ]
  return parts.length ? parts.join('; ') : 'change no component'
}

export function removalWaves(removed: Component[]): string[][] {
  return drainWaves(removed, new Set(removed.map((c) => c.name)))
}

/**
 * The definitions to move ahead of the Installer, dependencies first, so each component upgrades in place.
 * None on Gen N: its core-provider prunes a served version no definition and no Composition references, so
 * a definition moved ahead would take away the version the installer's release still lists, and helm could
 * then not upgrade that release (its current manifest no longer builds): the Installer would be wedged. There
 * the installer's own render moves them, and a moved component is re-created at its new version.
 */
export function stagedLayers(plan: Pick<PlanShape, 'components' | 'diff' | 'observed' | 'generation'>): Component[][] {
  if (traitsOf(plan.generation).pruneStaleVersions) return []
  const changed = new Set(plan.diff.changed.map((c) => c.name))
  // Only a definition the installer rendered: a user's blueprint of the same name is never re-pointed.
  const ours = (name: string) => {
    const cd = plan.observed.cds.get(name)
    return !!cd && renderedByInstaller(cd, plan.observed.installer)
  }
  return layers(plan.components)
    .map((l) => l.filter((c) => changed.has(c.name) && ours(c.name)))
    .filter((l) => l.length)
}

/** A component's definition has moved: its CRD serves the new version and its release runs at it. */
export function moved(o: Observed, c: Component, hadComposition: boolean): string | null {
  const cd = o.cds.get(c.name)
  const resource = cd?.status?.resource as string | undefined
  if (!cd || (cd.spec as { chart?: { version?: string } }).chart?.version !== c.version)
    return 'its CompositionDefinition is not updated yet'
  if (!resource || !crdServes(o.crds.get(`${resource}.${COMPOSITION_GROUP}`), dashed(c.version)))
    return `core-provider is adding ${dashed(c.version)} to its CRD`
  const comp = o.compositions.get(c.name)
  if (!comp) return hadComposition ? 'its Composition is not observed yet' : null
  if (comp.metadata.labels?.[COMPOSITION_VERSION_LABEL] !== dashed(c.version))
    return `core-provider has not moved its Composition to ${dashed(c.version)} yet`
  const at = comp.status?.helmChartVersion as string | undefined
  if (at !== c.version) return `its cdc has the release at ${at ?? 'an unknown version'}`
  return isReady(comp) ? null : 'its release is not Ready at the new version yet'
}

/** The label core-provider moves to a definition's new version on each of its Compositions: a cdc sees only its own. */
export const COMPOSITION_VERSION_LABEL = 'krateo.io/composition-version'
