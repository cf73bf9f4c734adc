// upgrade: moving a running platform to another installer version, or switching its features, without
// losing runtime edits (contract section 1: components-patch.json, Pass A/B; section 2: version bump).
//
// Why not just re-apply the chart: Pass B emits a Composition only once its CRD serves the pinned version,
// so when a component's version changes in the same render that bumps its CompositionDefinition, the
// installer's helm upgrade prunes that Composition (its workloads go) and re-creates it a resync later.
// Here the Installer is paused, definitions move first (dependencies first, each followed until its
// release runs at the new version), and only then does the Installer CR get the new component list.
import semver from 'semver'
import { type Cluster,checkReachable } from '../cluster/cluster.js'
import { ExitCode,UserError,printable } from '../platform/errors.js'
import type { Helm } from '../cluster/helm.js'
import {
type ChartSource,
chartDefaults,
defaultChartFor,
type RenderedBootstrap,
type UserValues,
checkValuesFiles,
renderBootstrap,
isOfficialChart,
} from '../cluster/chart.js'
import { checkRequiredValues } from '../platform/required-values.js'
import { type Generation,detectGeneration } from '../cluster/engine.js'
import {
type Component,
type InstallerSpec,
blockedByDisabled,
checkFeatureNames,
knownFeatures,
dashed,
layers,
parseComponents,
validateDag,
} from '../platform/components.js'
import { INSTALL_ACCESS,checkAccess } from '../cluster/access.js'
import { CD_GROUP,CD_VERSION,COMPOSITION_GROUP,observe } from '../cluster/observe.js'
import {
type KObj,
type Observed,
UPGRADE_ANNOTATION,
crdServes,
isReady,
PAUSED_ANNOTATION,
} from '../platform/state.js'
import type { Step,StepReport } from '../ui/progress.js'
import type { RunContext } from './operation.js'
import type { Teardown } from './teardown.js'
import { drainWaves } from '../platform/drain.js'
import { getCustom,getCustomWhenServed,mergePatchCustom,nudge } from '../cluster/kube-write.js'
import { type InstallOptions,registryLogin } from './install/preflight.js'
import { helmBootstrap } from './install/bootstrap.js'
import { installerDefinitionSteps } from './install/installer-definition.js'
import { followToReady,healStuck,waitUntil } from './follow-ready.js'
import { releaseStatus } from '../cluster/helm.js'
import { apiCall } from '../cluster/cluster.js'
import { table } from '../ui/output.js'
import { writableBootstrapRelease } from './inventory.js'
import { INSTALLER_NAME,renderedByInstaller } from '../platform/ownership.js'

export interface UpgradeOptions extends InstallOptions {
  // source.chart '' and source.version undefined mean: those of the running installer (resolved in preflight).
  /** --feature name=true|false given on the command line. */
  featureRequests: Record<string, boolean>
  allowDowngrade: boolean
}

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

export interface UpgradePlan {
  /** The bootstrap release, whatever its name. */
  release: string
  from: string | null
  to: string
  direction: Direction
  diff: ComponentDiff
  features: FeaturePlan
  /** The new component list. */
  components: Component[]
  rendered: RenderedBootstrap
  /** The chart, resolved (the running installer's unless given). */
  source: ChartSource
  /** The user's previous values plus the new ones, as passed to helm. */
  values: UserValues
  observed: Observed
  installer: KObj
  /** The engine generation (contract section 0): on Gen N, definitions are not moved ahead of the installer. */
  generation?: Generation
  /** What the plan was judged on, compared again under the lock (planDrift). */
  basis: PlanBasis
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

/** planDrift against the cluster as it is now. */
export async function checkPlanStillHolds(cluster: Cluster, helm: Helm, ns: string, plan: UpgradePlan): Promise<void> {
  const observed = await observe(cluster, ns)
  const release = await releaseStatus(helm, ns, plan.release)
  const drift = planDrift(plan.basis, planBasis(observed.installer, observed.cds, release?.revision))
  if (drift)
    throw new UserError(
      `the platform changed since the plan was made: ${drift}`,
      ExitCode.Interrupted,
      'nothing was changed; run the same upgrade command again to see the plan as it is now',
    )
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

/** Whether definitions must move with the Installer paused (anything but a same-version reconcile). */
export const needsPause = (plan: Pick<UpgradePlan, 'direction' | 'diff'>): boolean =>
  plan.direction !== 'same' || plan.diff.changed.length > 0 || plan.diff.removed.length > 0

/** A CompositionDefinition the installer rendered for a component no longer listed (an earlier run cut short). */
function leftoverComponent(cd: KObj, installer: KObj | null): Component | null {
  if (cd.metadata.name === INSTALLER_NAME || !renderedByInstaller(cd, installer)) return null
  const version = (cd.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? ''
  return { name: cd.metadata.name, kind: String(cd.status?.kind ?? ''), version, deps: [] }
}

/** Read-only: where the platform stands, the new chart rendered with the user's previous values, and the plan. */
export async function upgradePreflight(
  cluster: Cluster,
  helm: Helm,
  opts: UpgradeOptions,
  report: StepReport,
): Promise<UpgradePlan> {
  const ns = opts.namespace
  checkValuesFiles(opts.values)
  report.line(`cluster ${cluster.server} answers (Kubernetes ${await checkReachable(cluster)})`)
  // Before any read that needs rights, so a user without them learns every missing right in one line.
  await checkAccess(cluster, [
    ...INSTALL_ACCESS(ns),
    { verb: 'delete', group: CD_GROUP, resource: 'compositiondefinitions', namespace: ns },
  ])
  report.line('permissions granted')
  report.line(`helm ${(await helm.checkVersion()).text}`)
  const observed = await observe(cluster, ns)
  const installer = observed.installer
  if (!installer)
    throw new UserError(
      `Krateo is not installed in ${ns} (no Installer CR)`,
      ExitCode.NotReady,
      `install it with: krateo-installer install -n ${ns}`,
    )
  // Unless told otherwise: the chart the running installer came from, at the running version.
  const running = (observed.cds.get('installer')?.spec as { chart?: { url?: string; version?: string } } | undefined)
    ?.chart
  const releaseName = await apiCall(cluster, 'find the bootstrap release', () =>
    writableBootstrapRelease(cluster, helm, ns),
  )
  const release = await releaseStatus(helm, ns, releaseName)
  if (!release) {
    throw new UserError(
      `the bootstrap release "${releaseName}" is not in ${ns}, so the values it was installed with are unknown`,
      ExitCode.NotReady,
      `run krateo-installer install -n ${ns} with the values you want (it keeps the running Installer CR's runtime edits)`,
    )
  }
  // The running installer's chart location is a field anyone with edit rights in the namespace can change, and
  // upgrade installs what it points at with the operator's rights: taken unasked only when it is the official one
  // or what the bootstrap release was installed with (its ociRepo value); otherwise named with --chart.
  if (!opts.source.chart && running?.url && !isOfficialChart(running.url)) {
    const all = JSON.parse(
      (await helm.run(['get', 'values', releaseName, '-n', ns, '--all', '-o', 'json'])) || '{}',
    ) as {
      ociRepo?: string
    }
    if (`${all.ociRepo ?? ''}/installer` !== running.url)
      throw new UserError(
        `the running installer came from ${printable(running.url)}, which is neither the official chart location nor the one release ${releaseName} was installed with (${printable(all.ociRepo ?? 'none')})`,
        ExitCode.Usage,
        `nothing was changed; name the chart to upgrade from with --chart`,
      )
  }
  const source: ChartSource = {
    chart: opts.source.chart || running?.url || defaultChartFor(opts.source.version ?? running?.version),
    version: opts.source.version ?? running?.version,
  }
  if (opts.registryUsername) await registryLogin(helm, { ...opts, source })
  // The user's values of the last install or upgrade, then the new ones: helm semantics, later wins. They may hold
  // credentials, so they travel on helm's stdin, never through a file or argv.
  const previous = await helm.run(['get', 'values', releaseName, '-n', ns, '-o', 'yaml'])
  const values: UserValues = { ...opts.values, previous }
  const rendered = await renderBootstrap(helm, source, values, ns)
  report.line(
    `chart ${source.chart} ${rendered.chartVersion} renders with your previous values; values pass its schema`,
  )

  const runningSpec = (installer.spec ?? {}) as InstallerSpec
  const nextSpec = (rendered.selfCR.installer.spec ?? {}) as InstallerSpec
  const current = parseComponents(runningSpec)
  const components = parseComponents(nextSpec)
  validateDag(components)
  // Known from the chart's defaults and its components, not from the render: that already holds the request.
  if (Object.keys(opts.featureRequests).length)
    checkFeatureNames(
      Object.keys(opts.featureRequests),
      knownFeatures(components, await chartDefaults(helm, source)),
      rendered.chartVersion,
    )
  const features = featurePlan(runningSpec.features ?? {}, nextSpec.features ?? {}, opts.featureRequests)
  const blocked = blockedByDisabled(components, features.features)
  if (blocked.length) {
    const b = blocked[0]!
    throw new UserError(
      `component "${b.component}" would be enabled but depends on "${b.dep}", whose feature would be off`,
      ExitCode.Chart,
      `turn that feature on with --feature, or turn off the feature of ${b.component}`,
    )
  }
  checkRequiredValues({ ...nextSpec, features: features.features }, components)
  const leftovers = [...observed.cds.values()]
    .map((cd) => leftoverComponent(cd, observed.installer))
    .filter((c): c is Component => !!c)
  const diff = diffComponents(current, components, leftovers)
  const from =
    (observed.cds.get('installer')?.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? null
  const to = rendered.chartVersion
  const direction = directionOf(from, to)
  const generation = await detectGeneration(cluster)
  const plan: UpgradePlan = {
    release: releaseName,
    from,
    to,
    direction,
    diff,
    features,
    components,
    rendered,
    source,
    values,
    observed,
    installer,
    generation,
    basis: planBasis(installer, observed.cds, release.revision),
  }
  if (direction === 'downgrade' && !opts.allowDowngrade) {
    throw new UserError(
      `installer ${to} is older than the running ${from}; a downgrade would ${consequences(plan)}`,
      ExitCode.Usage,
      'pass --allow-downgrade to do it anyway (newer CRD versions stay served), or --dry-run to see the whole plan',
    )
  }
  if (generation === 'N' && diff.changed.length)
    report.line(
      `engine Gen N: its core-provider prunes versions nothing references, so the installer's render moves ${diff.changed.map((c) => c.name).join(', ')} (each re-created at its new version), not this CLI ahead of it`,
    )
  report.line(
    direction === 'same'
      ? `installer ${to} is already running: only reconciling${features.changes.length ? ' and switching features' : ''}`
      : `${direction} installer ${from} -> ${to}: ${consequences(plan)}`,
  )
  return plan
}

/** One line: what the plan changes. */
export function consequences(plan: Pick<UpgradePlan, 'diff' | 'features'>): string {
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
  else if (plan.generation === 'N' && diff.changed.length)
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

export function removalWaves(removed: Component[]): string[][] {
  return drainWaves(removed, new Set(removed.map((c) => c.name)))
}

/** Components whose existing definition moves to a new version, by DAG layer. */
/**
 * The definitions to move ahead of the Installer, dependencies first, so each component upgrades in place.
 * None on Gen N: its core-provider prunes a served version no definition and no Composition references, so
 * a definition moved ahead would take away the version the installer's release still lists, and helm could
 * then not upgrade that release (its current manifest no longer builds): the Installer would be wedged. There
 * the installer's own render moves them, and a moved component is re-created at its new version.
 */
export function stagedLayers(
  plan: Pick<UpgradePlan, 'components' | 'diff' | 'observed' | 'generation'>,
): Component[][] {
  if (plan.generation === 'N') return []
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
function moved(o: Observed, c: Component, hadComposition: boolean): string | null {
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
/** How long core-provider gets to move that label before this CLI completes the move. */
const RELABEL_GRACE_MS = 20_000

/**
 * Completes core-provider's move of a Composition to its definition's new version. core-provider 0.26.1 moves
 * the version label once, with an update that fails on any concurrent write (the old cdc's status, a nudge) and
 * is never retried: the Composition then belongs to no cdc, and the upgrade waits for ever (seen on the real
 * engine). Once the new version is served and the label has stayed old past the grace, the label is moved here,
 * on that object only (resourceVersion precondition), and said.
 */
export function relabeller(cluster: Cluster, report: StepReport) {
  const staleSince = new Map<string, number>()
  return async (obj: KObj | null | undefined, plural: string, version: string): Promise<void> => {
    if (!obj?.metadata.uid || obj.metadata.labels?.[COMPOSITION_VERSION_LABEL] === version) return
    const since = staleSince.get(obj.metadata.uid) ?? Date.now()
    staleSince.set(obj.metadata.uid, since)
    if (Date.now() - since < RELABEL_GRACE_MS) return
    const ref = {
      group: COMPOSITION_GROUP,
      version,
      namespace: obj.metadata.namespace!,
      plural,
      name: obj.metadata.name,
    }
    try {
      await mergePatchCustom(cluster, ref, {
        metadata: { resourceVersion: obj.metadata.resourceVersion, labels: { [COMPOSITION_VERSION_LABEL]: version } },
      })
      staleSince.delete(obj.metadata.uid)
      report.line(
        `${obj.kind ?? plural} ${obj.metadata.name}: core-provider did not move it to ${version} (its one update lost a write conflict); moved its ${COMPOSITION_VERSION_LABEL} label so the ${version} cdc takes it`,
      )
    } catch {
      // Changed meanwhile (core-provider moved it after all, say): looked at again at the next tick.
    }
  }
}

export function upgradeSteps(
  cluster: Cluster,
  helm: Helm,
  opts: UpgradeOptions,
  plan: UpgradePlan,
  run: RunContext,
  teardown: Teardown,
): Step[] {
  const ns = opts.namespace
  const { interrupt, deadline } = run
  const watch = run.platformWatch
  const installerRef = (version: string) => ({
    group: COMPOSITION_GROUP,
    version,
    namespace: ns,
    plural: 'installers',
    name: 'installer',
  })
  const readInstaller = async () =>
    await apiCall(cluster, 'read the Installer CR', () =>
      getCustom(cluster, installerRef(plan.installer.apiVersion!.split('/')[1]!)),
    )
  /**
   * A failed helm run that left the release where it was (a chart that cannot be pulled, a release another
   * helm holds) changed nothing but our pause: that goes too, so the platform runs on as before. A failed
   * run that wrote a revision keeps the pause (its cdc account's grants may already have moved); re-running resumes.
   */
  const givePauseBack = async (err: unknown, before: { revision: number } | null): Promise<unknown> => {
    if (!(err instanceof UserError)) return err
    const after = await releaseStatus(helm, ns, plan.release).catch(() => undefined)
    if (after === undefined || after?.revision !== before?.revision) return err
    if (!(await teardown.unpauseIfOurs(await readInstaller().catch(() => null), [UPGRADE_ANNOTATION]))) return err
    return new UserError(
      err.message,
      err.exitCode,
      `${err.hint ? `${err.hint}; ` : ''}nothing was changed (the release is still at revision ${after?.revision ?? 'none'}, the Installer is unpaused)`,
    )
  }
  const steps: Step[] = []
  // Paused first: the bootstrap release's upgrade moves the chart's grants to the new version's cdc account
  // (installers-lbip-services), so the old cdc must not render in between.
  if (needsPause(plan)) {
    steps.push({
      title: 'Pause the Installer CR so nothing renders half-upgraded',
      run: async (r) => {
        const installer = await readInstaller()
        if (!installer)
          throw new UserError(
            `the Installer CR ${ns}/installer disappeared`,
            ExitCode.NotReady,
            'see krateo-installer status',
          )
        await apiCall(cluster, 'mark the Installer CR', () =>
          mergePatchCustom(cluster, installerRef(installer.apiVersion!.split('/')[1]!), {
            metadata: { annotations: { [UPGRADE_ANNOTATION]: plan.to } },
          }),
        )
        return await teardown.pauseInstaller(installer, plan.observed.cds.get('installer'), r)
      },
    })
  }
  steps.push({
    title: `Upgrade the bootstrap release "${plan.release}" to ${plan.to} (helm, hooks skipped)`,
    run: async (r) => {
      const current = await releaseStatus(helm, ns, plan.release)
      const newValues = opts.values.files.length + opts.values.sets.length > 0
      if (current?.status === 'deployed' && current.version === plan.to && !newValues)
        return `already at ${plan.to} (revision ${current.revision})`
      try {
        await helmBootstrap(
          helm,
          { ...opts, source: plan.source, values: plan.values },
          plan.release,
          current,
          deadline,
          r,
        )
      } catch (err) {
        throw await givePauseBack(err, current)
      }
      return `revision ${(await releaseStatus(helm, ns, plan.release))?.revision ?? '?'}`
    },
  })
  if (plan.diff.removed.length) {
    steps.push({
      title: `Drain removed components, leaves first (${plan.diff.removed.map((c) => c.name).join(', ')})`,
      run: async (r) => {
        for (const wave of removalWaves(plan.diff.removed)) {
          await Promise.all(
            wave.map(
              async (name) =>
                await drainRemoved(
                  cluster,
                  teardown,
                  ns,
                  plan.diff.removed.find((c) => c.name === name)!,
                  r,
                  plan.installer,
                ),
            ),
          )
        }
        // Their CompositionDefinitions (and so their CRDs) stay until the installer's release no longer lists
        // them: helm cannot upgrade a release whose previous manifest holds a kind without a CRD.
        return `${plan.diff.removed.length} drained; their definitions go with the installer's next render`
      },
    })
  }
  const staged = stagedLayers(plan)
  if (staged.length) {
    const nextSpec = (plan.rendered.selfCR.installer.spec ?? {}) as InstallerSpec & { ociRepo?: string }
    steps.push({
      title: `Move ${staged.flat().length} component definitions to their new versions, dependencies first`,
      run: async (r) => {
        const relabel = relabeller(cluster, r)
        const had = (c: Component) => plan.observed.compositions.has(c.name)
        for (const layer of staged) {
          for (const c of layer) {
            // Pass A's shape (contract section 1): url = <repo or ociRepo>/<chart or name>, version = the pin.
            const chart = { url: `${c.repo ?? nextSpec.ociRepo}/${c.chart ?? c.name}`, version: c.version }
            await apiCall(cluster, `update CompositionDefinition ${c.name}`, () =>
              mergePatchCustom(
                cluster,
                { group: CD_GROUP, version: CD_VERSION, namespace: ns, plural: 'compositiondefinitions', name: c.name },
                { spec: { chart } },
              ),
            )
            r.line(`${c.name}: CompositionDefinition -> ${c.version}`)
          }
          await waitUntil(
            watch(),
            interrupt,
            deadline,
            (o) => layer.every((c) => moved(o, c, had(c)) === null),
            (o) =>
              layer
                .flatMap((c) => {
                  const why = moved(o, c, had(c))
                  return why ? [`${c.name}: ${why}`] : []
                })
                .join('; '),
            r,
            async () => {
              await healStuck(cluster, watch(), r)
              const o = watch().snapshot()
              for (const c of layer) {
                const resource = o.cds.get(c.name)?.status?.resource as string | undefined
                if (resource && crdServes(o.crds.get(`${resource}.${COMPOSITION_GROUP}`), dashed(c.version)))
                  await relabel(o.compositions.get(c.name), resource, dashed(c.version))
              }
            },
          )
          r.line(`${layer.map((c) => `${c.name} ${c.version}`).join(', ')}: running at the new version`)
        }
        return plan.diff.changed.map((c) => `${c.name} ${c.to}`).join(', ')
      },
    })
  }
  steps.push(...installerDefinitionSteps(cluster, plan.rendered, ns, run))
  if (plan.installer.metadata.labels?.[COMPOSITION_VERSION_LABEL] !== dashed(plan.to))
    steps.push({
      title: `Wait for core-provider to move the Installer CR to ${dashed(plan.to)}`,
      run: async (r) => {
        const relabel = relabeller(cluster, r)
        const to = dashed(plan.to)
        await waitUntil(
          watch(),
          interrupt,
          deadline,
          (o) => o.installer?.metadata.labels?.[COMPOSITION_VERSION_LABEL] === to,
          (o) =>
            `the Installer CR is at ${o.installer?.metadata.labels?.[COMPOSITION_VERSION_LABEL] ?? 'no version'}; core-provider moves it to ${to}`,
          r,
          () => relabel(watch().snapshot().installer, 'installers', to),
        )
        return `at ${to}`
      },
    })
  steps.push({
    title: 'Merge the new component list into the Installer CR (spec.features and other runtime edits kept)',
    run: async () => {
      const ref = installerRef(dashed(plan.to))
      const before = await apiCall(cluster, 'read the Installer CR', () => getCustomWhenServed(cluster, ref))
      if (!before)
        throw new UserError(
          `the Installer CR ${ns}/installer disappeared`,
          ExitCode.NotReady,
          'see krateo-installer status',
        )
      const ours = !!before.metadata.annotations?.[UPGRADE_ANNOTATION]
      const body = {
        ...(ours ? { metadata: { annotations: { [PAUSED_ANNOTATION]: null, [UPGRADE_ANNOTATION]: null } } } : {}),
        spec: {
          ...plan.rendered.selfCR.componentsPatch.spec,
          ...(Object.keys(plan.features.patch).length ? { features: plan.features.patch } : {}),
        },
      }
      const after = await apiCall(cluster, 'patch the Installer CR', () => mergePatchCustom(cluster, ref, body))
      const said = [
        `components and componentValues${
          Object.keys(plan.features.patch).length
            ? `, features ${Object.entries(plan.features.patch)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ')}`
            : ''
        }`,
      ]
      if (ours) said.push('unpaused')
      // A spec change is handled at once, and so is the unpause (krateo.io/paused is a watched annotation);
      // with neither, a nudge of that same annotation makes the cdc observe now.
      if (after.metadata.generation === before.metadata.generation && !ours) {
        await apiCall(cluster, "nudge the installer's cdc", () => nudge(cluster, after))
        said.push("installer's cdc nudged to observe it now")
      }
      return said.join('; ')
    },
  })
  if (opts.wait) {
    const want = JSON.stringify(plan.components.map((c) => [c.name, c.version]))
    const applied = (o: Observed) => {
      const spec = (o.installer?.spec ?? {}) as InstallerSpec
      return (
        !o.installer?.metadata.annotations?.[UPGRADE_ANNOTATION] &&
        JSON.stringify(parseComponents(spec).map((c) => [c.name, c.version])) === want &&
        Object.entries(plan.features.patch).every(([k, v]) => spec.features?.[k] === v)
      )
    }
    const removedLeft = (o: Observed) => {
      const left = plan.diff.removed.filter((c) => o.cds.has(c.name)).map((c) => c.name)
      return left.length
        ? `waiting for the installer's release to drop the definitions of removed ${left.join(', ')}`
        : null
    }
    steps.push({
      title: 'Follow the self-reconcile',
      run: async (r) => {
        const res = await followToReady(cluster, watch(), opts, interrupt, r, deadline, applied, removedLeft)
        return `${res.state.ready}/${res.state.total} Ready${res.nudges ? `, ${res.nudges} nudges saved resync waits` : ''}`
      },
    })
  }
  return steps
}

/** Deletes a removed component's Composition, if any, while its cdc runs. */
async function drainRemoved(
  cluster: Cluster,
  teardown: Teardown,
  ns: string,
  c: Component,
  r: StepReport,
  installer: KObj,
): Promise<void> {
  const cd = await apiCall(cluster, `read CompositionDefinition ${c.name}`, () =>
    getCustom(cluster, {
      group: CD_GROUP,
      version: CD_VERSION,
      namespace: ns,
      plural: 'compositiondefinitions',
      name: c.name,
    }),
  )
  if (cd && !renderedByInstaller(cd, installer)) {
    r.line(`${c.name}: its CompositionDefinition is not the platform's (a user's of the same name): kept`)
    return
  }
  const resource = cd?.status?.resource as string | undefined
  const apiVersion = cd?.status?.apiVersion as string | undefined
  const comp =
    resource && apiVersion
      ? await apiCall(cluster, `read ${c.name}`, () =>
          getCustom(cluster, {
            group: COMPOSITION_GROUP,
            version: apiVersion.split('/')[1]!,
            namespace: ns,
            plural: resource,
            name: c.name,
          }),
        )
      : null
  if (comp)
    await teardown.drainComposition({ ...c, kind: c.kind || String(cd?.status?.kind ?? '') }, comp, resource!, r)
  else r.line(`${c.name}: no Composition left`)
}
