// install, before anything changes: the read-only preflight that makes the plan, the registry login, and the
// plan's text (--dry-run).
import type { PlatformState } from '../../platform/state.js'
import { apiCall } from '../../cluster/cluster.js'
import { type Cluster, checkReachable } from '../../cluster/cluster.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import { Helm } from '../../cluster/helm.js'
import {
  BOOTSTRAP_RELEASE,
  type ChartSource,
  type RenderedBootstrap,
  type UserValues,
  chartDefaults,
  checkKubernetesFor,
  checkValuesFiles,
  renderBootstrap,
} from '../../cluster/chart.js'
import {
  type Component,
  type InstallerSpec,
  blockedByDisabled,
  checkFeatureNames,
  knownFeatures,
  isEnabled,
  layers,
  parseComponents,
  validateDag,
} from '../../platform/components.js'
import { INSTALL_ACCESS, checkAccess } from '../../cluster/access.js'
import { checkRequiredValues } from '../../platform/required-values.js'
import { type StepReport } from '../../ui/progress.js'
import { table } from '../../ui/output.js'
import { writableBootstrapRelease } from '../bootstrap-release.js'

export interface InstallOptions {
  namespace: string
  source: ChartSource
  values: UserValues
  timeoutMs: number
  wait: boolean
  accelerate: boolean
  registryUsername?: string
  registryPassword?: string
  /** --feature name=bool given on the command line (checked against the chart's known features). */
  featureRequests?: Record<string, boolean>
}

export interface Plan {
  /** The bootstrap release: an existing install's, whatever its name, else ours. */
  release: string
  /** The values helm gets: the flags', on top of an adopted release's own. */
  values: UserValues
  rendered: RenderedBootstrap
  components: Component[]
  features: Record<string, boolean>
}

/** Read-only checks; returns the plan. Nothing is changed whatever fails. */
export async function preflight(cluster: Cluster, helm: Helm, opts: InstallOptions, report: StepReport): Promise<Plan> {
  checkValuesFiles(opts.values)
  const server = await checkReachable(cluster)
  report.line(`cluster ${cluster.server} answers (Kubernetes ${server})`)
  // Before any read that needs rights (helm's release secrets, the ClusterRoles that prove a release), so a user
  // without them learns every missing right in one line.
  await checkAccess(cluster, INSTALL_ACCESS(opts.namespace))
  report.line('permissions granted')
  const hv = await helm.checkVersion()
  report.line(`helm ${hv.text}`)
  if (opts.registryUsername) await registryLogin(helm, opts)
  const release = await apiCall(cluster, 'find the bootstrap release', () =>
    writableBootstrapRelease(cluster, helm, opts.namespace),
  )
  let values = opts.values
  if (release !== BOOTSTRAP_RELEASE) {
    // Adopting a platform installed by plain helm install: its values stay, these flags go on top (helm
    // semantics). They may hold credentials, so they travel on helm's stdin only.
    values = {
      ...opts.values,
      previous: await helm.run(['get', 'values', release, '-n', opts.namespace, '-o', 'yaml']),
    }
    report.line(`a platform installed as helm release "${release}" is here: install adopts it, keeping its values`)
  }
  const rendered = await renderBootstrap(helm, opts.source, values, opts.namespace)
  report.line(`chart ${opts.source.chart} ${rendered.chartVersion} renders; values pass its schema`)
  checkKubernetesFor(rendered.manifests, server, rendered.chartVersion)
  const spec = (rendered.selfCR.installer.spec ?? {}) as InstallerSpec
  const components = parseComponents(spec)
  validateDag(components)
  const requested = Object.keys(opts.featureRequests ?? {})
  if (requested.length)
    checkFeatureNames(
      requested,
      knownFeatures(components, await chartDefaults(helm, opts.source)),
      rendered.chartVersion,
    )
  const features = spec.features ?? {}
  const blocked = blockedByDisabled(components, features)
  if (blocked.length) {
    const b = blocked[0]!
    throw new UserError(
      `component "${b.component}" is enabled but depends on "${b.dep}", whose feature is off`,
      ExitCode.Chart,
      `turn that feature on with --feature, or turn off the feature of ${b.component}`,
    )
  }
  checkRequiredValues(spec, components)
  report.line(
    `${components.length} components, ${components.filter((c) => isEnabled(c, features)).length} enabled, DAG valid (${layers(components).length} layers)`,
  )
  return { release, values, rendered, components, features }
}

export async function registryLogin(helm: Helm, opts: InstallOptions): Promise<void> {
  if (!opts.source.chart.startsWith('oci://')) return
  const host = opts.source.chart.slice('oci://'.length).split('/')[0]!
  helm.useOwnRegistryConfig()
  try {
    await helm.run(
      ['registry', 'login', host, '--username', opts.registryUsername!, '--password-stdin', ...helm.loginArgs()],
      { input: opts.registryPassword },
    )
  } catch (err) {
    throw new UserError(
      `registry login to ${host} as ${opts.registryUsername} failed: ${(err as Error).message}`,
      ExitCode.Chart,
      'check the username and the password given on stdin',
    )
  }
}

export function planText(plan: Plan, opts: InstallOptions): string {
  const { rendered, components, features } = plan
  const objects = rendered.manifests
    .filter((m) => m.kind !== 'Job')
    .map((m) => `  ${m.kind}/${m.metadata.name}${m.metadata.namespace ? ` (${m.metadata.namespace})` : ''}`)
  const lines = [
    `Plan: install installer ${rendered.chartVersion} from ${opts.source.chart} into ${opts.namespace}`,
    '',
    `1. helm install ${plan.release} (bootstrap mode, hooks skipped) creates:`,
    ...objects,
    `2. apply CompositionDefinition installer (${(rendered.selfCR.compositionDefinition.spec as { chart: { url: string } }).chart.url}:${rendered.chartVersion})`,
    `3. apply Installer ${opts.namespace}/installer (${rendered.selfCR.installer.apiVersion})`,
    '4. the installer reconciles the components, one dependency layer at a time:',
  ]
  layers(components).forEach((layer, i) => {
    const rows = layer.map((c) => [
      `   layer ${i}`,
      c.name,
      c.version,
      c.feature ?? '-',
      isEnabled(c, features) ? 'enabled' : 'disabled',
      c.deps.length ? `after ${c.deps.join(', ')}` : '',
    ])
    lines.push(table(rows))
  })
  lines.push('', 'Dry run: nothing was changed.')
  return lines.join('\n')
}

/** The plan as data (--dry-run --json). */
export function planDocument(plan: Plan): Record<string, unknown> {
  return {
    result: 'dry-run',
    chartVersion: plan.rendered.chartVersion,
    objects: plan.rendered.manifests.map((m) => ({
      kind: m.kind,
      name: m.metadata.name,
      namespace: m.metadata.namespace ?? null,
    })),
    components: plan.components.map((c) => ({ ...c, enabled: !c.feature || plan.features[c.feature] === true })),
  }
}

/**
 * Judged under the lock, on the platform as it is now (another run may have changed it since the preflight):
 * install neither changes versions nor fights an uninstall that stopped half-way.
 */
export function checkInstallable(now: PlatformState, plan: Plan, namespace: string, bin: string): void {
  if (now.installerVersion && now.phase !== 'NotInstalled' && now.installerVersion !== plan.rendered.chartVersion) {
    // Re-applying another version the way the chart's hook does would prune and re-create every component
    // whose version changes; upgrade moves them in place.
    throw new UserError(
      `installer ${now.installerVersion} is already installed in ${namespace}; install does not change versions`,
      ExitCode.Usage,
      `run: ${bin} upgrade --version ${plan.rendered.chartVersion} (add --dry-run to see what moves)`,
    )
  }
  // A running uninstall is refused by the lock itself (exit 11), with its holder; one that stopped half-way
  // left the Installer paused for it.
  if (now.pausedBy && / uninstall /.test(now.pausedBy)) {
    throw new UserError(
      `an uninstall of the platform in ${namespace} is under way (${now.pausedBy.replace(/: re-run.*$/, '')})`,
      ExitCode.Usage,
      `finish it first with: ${bin} uninstall -n ${namespace}, then install again`,
    )
  }
}
