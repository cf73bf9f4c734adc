// upgrade, before anything changes: the read-only preflight that makes the plan, the plan checked again
// under the lock, and the plan's text (--dry-run).
import type { RunContext } from '../operation.js'
import type { Teardown } from '../teardown.js'
import {
  type PlanBasis,
  type PlanShape,
  consequences,
  diffComponents,
  directionOf,
  featurePlan,
  leftoverComponent,
  planBasis,
  planDrift,
  upgradeFrom,
} from '../../platform/upgrade-plan.js'
import { type Cluster, checkReachable } from '../../cluster/cluster.js'
import { ExitCode, UserError, printable } from '../../platform/errors.js'
import type { Helm } from '../../cluster/helm.js'
import {
  type ChartSource,
  chartDefaults,
  defaultChartFor,
  type RenderedBootstrap,
  type UserValues,
  checkValuesFiles,
  renderBootstrap,
  isOfficialChart,
} from '../../cluster/chart.js'
import { checkRequiredValues } from '../../platform/required-values.js'
import { detectGeneration } from '../../cluster/engine.js'
import {
  type Component,
  type InstallerSpec,
  blockedByDisabled,
  checkFeatureNames,
  knownFeatures,
  parseComponents,
  validateDag,
} from '../../platform/components.js'
import { INSTALL_ACCESS, checkAccess } from '../../cluster/access.js'
import { CD_GROUP, observe } from '../../cluster/observe.js'
import type { KObj } from '../../platform/kobj.js'
import type { Observed } from '../../platform/objects.js'
import type { StepReport } from '../../ui/progress.js'
import { type InstallOptions, registryLogin } from '../install/preflight.js'
import { releaseStatus } from '../../cluster/helm.js'
import { apiCall } from '../../cluster/cluster.js'
import { writableBootstrapRelease } from '../bootstrap-release.js'
import { traitsOf } from '../../platform/engine.js'

export interface UpgradeOptions extends InstallOptions {
  // source.chart '' and source.version undefined mean: those of the running installer (resolved in preflight).
  /** --feature name=true|false given on the command line. */
  featureRequests: Record<string, boolean>
  allowDowngrade: boolean
}

export interface UpgradePlan extends PlanShape {
  /** The bootstrap release, whatever its name. */
  release: string
  from: string | null
  to: string
  rendered: RenderedBootstrap
  /** The chart, resolved (the running installer's unless given). */
  source: ChartSource
  /** The user's previous values plus the new ones, as passed to helm. */
  values: UserValues
  installer: KObj
  /** What the plan was judged on, compared again under the lock (planDrift). */
  basis: PlanBasis
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
  const source = await chartToUpgradeFrom(helm, opts, observed, releaseName)
  if (opts.registryUsername) await registryLogin(helm, { ...opts, source })
  // The user's values of the last install or upgrade, then the new ones: helm semantics, later wins. They may hold
  // credentials, so they travel on helm's stdin, never through a file or argv.
  const previous = await helm.run(['get', 'values', releaseName, '-n', ns, '-o', 'yaml'])
  const values: UserValues = { ...opts.values, previous }
  const rendered = await renderBootstrap(helm, source, values, ns)
  report.line(
    `chart ${source.chart} ${rendered.chartVersion} renders with your previous values; values pass its schema`,
  )
  const shape = await planShape(cluster, helm, opts, observed, installer, rendered, source)
  const plan: UpgradePlan = {
    ...shape,
    release: releaseName,
    rendered,
    source,
    values,
    installer,
    basis: planBasis(installer, observed.cds, release.revision),
  }
  checkDirection(plan, opts, report)
  return plan
}

/**
 * Unless told otherwise: the chart the running installer came from, at the running version. That location is a
 * field anyone with edit rights in the namespace can change, and upgrade installs what it points at with the
 * operator's rights: taken unasked only when it is the official one or what the bootstrap release was installed
 * with (its ociRepo value); otherwise named with --chart.
 */
async function chartToUpgradeFrom(
  helm: Helm,
  opts: UpgradeOptions,
  observed: Observed,
  releaseName: string,
): Promise<ChartSource> {
  const running = (observed.cds.get('installer')?.spec as { chart?: { url?: string; version?: string } } | undefined)
    ?.chart
  if (!opts.source.chart && running?.url && !isOfficialChart(running.url)) {
    const all = JSON.parse(
      (await helm.run(['get', 'values', releaseName, '-n', opts.namespace, '--all', '-o', 'json'])) || '{}',
    ) as { ociRepo?: string }
    if (`${all.ociRepo ?? ''}/installer` !== running.url)
      throw new UserError(
        `the running installer came from ${printable(running.url)}, which is neither the official chart location nor the one release ${releaseName} was installed with (${printable(all.ociRepo ?? 'none')})`,
        ExitCode.Usage,
        `nothing was changed; name the chart to upgrade from with --chart`,
      )
  }
  return {
    chart: opts.source.chart || running?.url || defaultChartFor(opts.source.version ?? running?.version),
    version: opts.source.version ?? running?.version,
  }
}

/** The components and features after the upgrade, checked, and what moves from the running ones. */
async function planShape(
  cluster: Cluster,
  helm: Helm,
  opts: UpgradeOptions,
  observed: Observed,
  installer: KObj,
  rendered: RenderedBootstrap,
  source: ChartSource,
): Promise<PlanShape & { from: string | null; to: string }> {
  const runningSpec = (installer.spec ?? {}) as InstallerSpec
  const nextSpec = (rendered.selfCR.installer.spec ?? {}) as InstallerSpec
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
  const diff = diffComponents(parseComponents(runningSpec), components, leftovers)
  const to = rendered.chartVersion
  const from = upgradeFrom(
    installer,
    (observed.cds.get('installer')?.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? null,
    to,
  )
  const generation = await detectGeneration(cluster)
  return { from, to, direction: directionOf(from, to), diff, features, components, observed, generation }
}

/** A downgrade only when allowed; says which way the plan goes. */
function checkDirection(plan: UpgradePlan, opts: UpgradeOptions, report: StepReport): void {
  const { direction, from, to, diff, features } = plan
  if (direction === 'downgrade' && !opts.allowDowngrade) {
    throw new UserError(
      `installer ${to} is older than the running ${from}; a downgrade would ${consequences(plan)}`,
      ExitCode.Usage,
      'pass --allow-downgrade to do it anyway (newer CRD versions stay served), or --dry-run to see the whole plan',
    )
  }
  if (traitsOf(plan.generation).pruneStaleVersions && diff.changed.length)
    report.line(
      `engine Gen N: its core-provider prunes versions nothing references, so the installer's render moves ${diff.changed.map((c) => c.name).join(', ')} (each re-created at its new version), not this CLI ahead of it`,
    )
  report.line(
    direction === 'same'
      ? `installer ${to} is already running: only reconciling${features.changes.length ? ' and switching features' : ''}`
      : `${direction} installer ${from} -> ${to}: ${consequences(plan)}`,
  )
}

/** What every upgrade step works over: one run, its plan and options. */
export interface UpgradeRun {
  cluster: Cluster
  helm: Helm
  opts: UpgradeOptions
  plan: UpgradePlan
  run: RunContext
  teardown: Teardown
}
