// install: preflight (read-only), the bootstrap phase of the umbrella chart done as visible steps (what
// the chart's post-install hook would do, contract section 1), then following the self-reconcile to Ready.
import { setTimeout as sleep } from 'node:timers/promises'
import { CoreV1Api } from '@kubernetes/client-node'
import { type Cluster, apiFailure, checkReachable, isNotFound } from '../cluster/cluster.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { Helm, HelmError, exactReleaseFilter, helmRunsOf } from '../cluster/helm.js'
import {
  BOOTSTRAP_RELEASE,
  type ChartSource,
  type RenderedBootstrap,
  type UserValues,
  chartArgs,
  chartDefaults,
  checkKubernetesFor,
  checkValuesFiles,
  helmChartFailure,
  renderBootstrap,
} from '../cluster/chart.js'
import {
  type Component,
  type InstallerSpec,
  blockedByDisabled,
  checkFeatureNames,
  knownFeatures,
  dashed,
  dependentsOf,
  isEnabled,
  layers,
  parseComponents,
  validateDag,
} from '../platform/components.js'
import { INSTALL_ACCESS, checkAccess } from '../cluster/access.js'
import { observe, COMPOSITION_GROUP } from '../cluster/observe.js'
import {
  type PlatformState,
  type KObj,
  type Observed,
  DISCOVERY_DELAY,
  STAGE_TEXT,
  conditionOf,
  crdServes,
  isReady,
  isStuckCreate,
  platformState,
  phaseText,
  PAUSED_ANNOTATION,
} from '../platform/state.js'
import { PlatformWatch } from './follow.js'
import { detectGeneration } from '../cluster/engine.js'
import { checkRequiredValues } from '../platform/required-values.js'
import { type Step, type StepReport } from '../ui/progress.js'
import {
  createOrPatchSpec,
  createWhenServed,
  getCustom,
  clearNudge,
  installerReleasePending,
  mergePatchCustom,
  nudge,
  refOf,
  removeAnnotation,
} from '../cluster/kube-write.js'
import { renderStatus, table } from '../ui/output.js'
import type { Interrupt } from './interrupt.js'
import type { RunContext } from './operation.js'
import { REGISTRY_SECRET, writableBootstrapRelease } from './inventory.js'
import { MANAGED_BY_LABEL, MANAGED_BY_US } from '../platform/ownership.js'

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
  const release = await wrap(cluster, 'find the bootstrap release', () =>
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

export function bootstrapSteps(
  cluster: Cluster,
  helm: Helm,
  opts: InstallOptions,
  plan: Plan,
  run: RunContext,
): Step[] {
  const { rendered } = plan
  const ns = opts.namespace
  const { deadline } = run
  const steps: Step[] = [
    {
      title: `Install the bootstrap release "${plan.release}" (helm, hooks skipped: the steps below do their work)`,
      run: async (r) => {
        const current = await releaseStatus(helm, ns, plan.release)
        if (current?.status === 'deployed' && current.version === rendered.chartVersion)
          return `already installed (revision ${current.revision})`
        await helmBootstrap(helm, { ...opts, values: plan.values }, plan.release, current, deadline, r)
        return current ? 'upgraded' : 'installed'
      },
    },
  ]
  if (opts.registryUsername) {
    steps.push({
      title: `Store the registry credentials in Secret ${REGISTRY_SECRET}`,
      run: async () => {
        await upsertSecret(cluster, ns, REGISTRY_SECRET, { password: opts.registryPassword ?? '' })
        return 'stored (the password is never printed)'
      },
    })
  }
  steps.push(...installerDefinitionSteps(cluster, rendered, ns, run), {
    title: `Apply the Installer CR (${ns}/installer)`,
    run: async (r) => {
      const installer = rendered.selfCR.installer
      const ref = refOf(installer, 'installers')
      const existing = await wrap(cluster, 'read the Installer CR', () => getCustom(cluster, ref))
      if (!existing) await waitForVersionStamp(cluster, deadline, r)
      // A 404 may also mean the version is listed but not served yet (a moment after the CRD changed): retry.
      if (
        !existing &&
        (await wrap(cluster, 'create the Installer CR', () =>
          createWhenServed(cluster, { ...ref, namespace: ns }, installer),
        )) === 'created'
      )
        return 'created'
      // Only components and componentValues: runtime edits (spec.features, exposure...) survive.
      await wrap(cluster, 'patch the Installer CR', () =>
        mergePatchCustom(cluster, ref, rendered.selfCR.componentsPatch),
      )
      return 'existed: merge-patched components and componentValues only'
    },
  })
  return steps
}

/**
 * A Composition is picked up by its cdc only with the version label that core-provider's webhook (Gen S) or
 * admission policy (Gen N) stamps on CREATE. Gen S core-provider registers its webhook at the first observe after
 * it generated a CRD, which can come after the CRD serves: an Installer CR created in between is never stamped,
 * so never rendered (and core-provider chart 0.35.4's name-length policy refuses it outright, since it has no
 * labels). Seen against the real engine. So the Installer CR is created once the stamp is in place.
 */
async function waitForVersionStamp(cluster: Cluster, deadline: number, r: StepReport): Promise<void> {
  for (let first = true; (await detectGeneration(cluster)) === 'unknown'; first = false) {
    if (Date.now() > deadline)
      throw new UserError(
        'core-provider has not registered the webhook that stamps the composition version',
        ExitCode.Timeout,
        'check the core-provider Deployment and its log; re-run to resume',
      )
    if (first) r.line('waiting for core-provider to register the webhook that stamps the composition version')
    await sleep(1000)
  }
}

/** `helm upgrade --install` of the bootstrap release in bootstrap mode with the chart's hooks skipped. */
export async function helmBootstrap(
  helm: Helm,
  opts: InstallOptions,
  release: string,
  current: ReleaseStatus | null,
  deadline: number,
  r: StepReport,
): Promise<void> {
  const ns = opts.namespace
  if (current?.status.startsWith('pending')) await resumePendingRelease(helm, ns, release, current, deadline, r)
  r.line('helm upgrade --install ... --set bootstrap.coreProvider.enabled=true --no-hooks --wait')
  const remaining = Math.max(30, Math.round((deadline - Date.now()) / 1000))
  try {
    await helm.run(
      [
        'upgrade',
        '--install',
        release,
        ...chartArgs(opts.source, opts.values, helm),
        '-n',
        ns,
        '--create-namespace',
        '--set',
        'bootstrap.coreProvider.enabled=true',
        '--no-hooks',
        '--wait',
        '--timeout',
        `${remaining}s`,
      ],
      { input: opts.values.previous, timeoutMs: (remaining + 60) * 1000 },
    )
  } catch (err) {
    if (err instanceof HelmError && /timed out|context deadline/i.test(err.message)) {
      throw new UserError(
        `the bootstrap release did not become ready in time: ${err.message}`,
        ExitCode.Timeout,
        `check the core-provider Deployment in ${ns}; re-run to resume`,
      )
    }
    throw helmChartFailure(err, opts.source)
  }
}

/**
 * A bootstrap release left pending-install/-upgrade/-rollback by a run that was killed (this run holds the lock
 * now): wait for the helm that run started, if it still works on the release on this machine; then, if the
 * release is still pending, take back what the killed run left (a first revision never installed is uninstalled
 * without hooks, anything later is rolled back), so the helm run that follows starts from a settled release.
 * Only a release of the installer chart is touched.
 */
async function resumePendingRelease(
  helm: Helm,
  ns: string,
  release: string,
  current: ReleaseStatus,
  deadline: number,
  r: StepReport,
): Promise<void> {
  let said = ''
  for (let pids = helmRunsOf(release, ns, helm.target); pids.length > 0; pids = helmRunsOf(release, ns, helm.target)) {
    const line = `waiting for the helm run a killed run left working on release ${release} (pid ${pids.join(', ')}) to end`
    if (line !== said) r.line((said = line))
    if (Date.now() > deadline)
      throw new UserError(
        `release ${release} is still ${current.status}: helm (pid ${pids.join(', ')}) is still working on it`,
        ExitCode.Timeout,
        're-run once that helm run has ended',
      )
    await sleep(1000)
  }
  const now = await releaseStatus(helm, ns, release)
  if (!now?.status.startsWith('pending')) return
  if (now.chart !== 'installer') {
    throw new UserError(
      `release ${release} is ${now.status} and is not of the installer chart (${now.chart})`,
      ExitCode.Stuck,
      `look at it with "helm history ${release} -n ${ns}"`,
    )
  }
  const remaining = Math.max(30, Math.round((deadline - Date.now()) / 1000))
  if (now.status === 'pending-install' && now.revision === 1) {
    r.line(
      `release ${release} was left pending-install by a killed run: removing that first revision (hooks skipped) to install it again`,
    )
    await helm.run(['uninstall', release, '-n', ns, '--no-hooks', '--wait', '--timeout', `${remaining}s`], {
      timeoutMs: (remaining + 60) * 1000,
    })
  } else {
    r.line(
      `release ${release} was left ${now.status} at revision ${now.revision} by a killed run: rolling back to the revision before it (hooks skipped)`,
    )
    await helm.run(['rollback', release, '-n', ns, '--no-hooks', '--wait', '--timeout', `${remaining}s`], {
      timeoutMs: (remaining + 60) * 1000,
    })
  }
}

/** The hook's middle steps: the CompositionDefinition CRD, the installer CompositionDefinition at the chart's version, its CRD served. */
export function installerDefinitionSteps(
  cluster: Cluster,
  rendered: RenderedBootstrap,
  ns: string,
  run: RunContext,
): Step[] {
  const { interrupt, deadline } = run
  const watch = run.platformWatch
  const cdDashed = dashed(rendered.chartVersion)
  return [
    {
      title: 'Wait for CRD compositiondefinitions.core.krateo.io',
      run: async (r) => {
        await waitUntil(
          watch(),
          interrupt,
          deadline,
          (o) => o.cdCrd,
          () => 'the CRD is not there yet',
          r,
        )
        return 'established'
      },
    },
    {
      title: `Apply the installer CompositionDefinition (installer ${rendered.chartVersion})`,
      run: async () =>
        await wrap(cluster, 'apply the installer CompositionDefinition', () =>
          createOrPatchSpec(cluster, rendered.selfCR.compositionDefinition, 'compositiondefinitions'),
        ),
    },
    {
      title: `Wait for CRD installers.${COMPOSITION_GROUP} to serve ${cdDashed}`,
      run: async (r) => {
        await waitUntil(
          watch(),
          interrupt,
          deadline,
          (o) => crdServes(o.crds.get(`installers.${COMPOSITION_GROUP}`), cdDashed),
          (o) => describeCD(o.cds.get('installer')),
          r,
          () => healStuck(cluster, watch(), r),
        )
        return 'served'
      },
    },
  ]
}

export function describeCD(cd: KObj | undefined): string {
  if (!cd) return 'waiting for core-provider to pick up the CompositionDefinition'
  const conds =
    (cd.status?.conditions as { type: string; status: string; reason?: string; message?: string }[] | undefined) ?? []
  return (
    conds
      .map((c) => `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`)
      .join(', ') || 'core-provider has not reported yet'
  )
}

export async function wrap<T>(cluster: Cluster, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof UserError) throw err
    throw apiFailure(err, cluster, doing)
  }
}

/** Writes our Secret; one of the same name that is not ours is never replaced (it is the user's). */
async function upsertSecret(
  cluster: Cluster,
  namespace: string,
  name: string,
  data: Record<string, string>,
): Promise<void> {
  const core = cluster.kc.makeApiClient(CoreV1Api)
  const body = {
    metadata: { name, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US } },
    type: 'Opaque',
    stringData: data,
  }
  await wrap(cluster, `write Secret ${name}`, async () => {
    const existing = await core.readNamespacedSecret({ name, namespace }).catch((err) => {
      if (isNotFound(err)) return null
      throw err
    })
    if (!existing) return void (await core.createNamespacedSecret({ namespace, body }))
    if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) {
      throw new UserError(
        `Secret ${namespace}/${name} exists and was not written by krateo-installer`,
        ExitCode.Usage,
        'rename or remove it: the registry password is stored there',
      )
    }
    await core.replaceNamespacedSecret({
      name,
      namespace,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
    })
  })
}

export interface ReleaseStatus {
  status: string
  chart: string
  version: string
  revision: number
}

export async function releaseStatus(helm: Helm, namespace: string, release: string): Promise<ReleaseStatus | null> {
  let out: string
  try {
    out = await helm.run([
      'list',
      '-n',
      namespace,
      '--filter',
      exactReleaseFilter(release),
      ...helm.allStatuses(),
      '-o',
      'json',
    ])
  } catch (err) {
    throw new UserError(
      `helm cannot list the releases of ${namespace}: ${(err as Error).message}`,
      ExitCode.Helm,
      'check that helm reaches the cluster with the same kubeconfig and context',
    )
  }
  const rel = (JSON.parse(out || '[]') as { status: string; chart: string; revision: string }[])[0]
  if (!rel) return null
  const version = rel.chart.replace(/^.*-(\d+\.\d+\.\d+.*)$/, '$1')
  return {
    status: rel.status,
    chart: rel.chart.slice(0, rel.chart.length - version.length - 1),
    version,
    revision: Number(rel.revision),
  }
}

/** Resolves once ready(observed) holds; reports why not meanwhile; fails at the deadline. */
export async function waitUntil(
  pw: PlatformWatch,
  interrupt: Interrupt,
  deadline: number,
  ready: (o: ReturnType<PlatformWatch['snapshot']>) => boolean,
  why: (o: ReturnType<PlatformWatch['snapshot']>) => string,
  report: StepReport,
  onTick?: () => Promise<unknown>,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let done = false
    // Run from a timer and from watch events: a throw here must end this wait, not the process (no cleanup ran).
    const check = () => {
      try {
        checkNow()
      } catch (err) {
        done = true
        clearInterval(timer)
        reject(err)
      }
    }
    const checkNow = () => {
      if (done || !pw.primed()) return
      const o = pw.snapshot()
      if (ready(o)) {
        done = true
        clearInterval(timer)
        resolve()
        return
      }
      report.line(why(o))
      if (interrupt.requested) {
        done = true
        clearInterval(timer)
        reject(interrupt.error())
      } else if (Date.now() > deadline) {
        done = true
        clearInterval(timer)
        reject(new UserError(`timed out: ${why(o)}`, ExitCode.Timeout, 're-run to resume, or raise --timeout'))
      } else void onTick?.().catch(() => undefined)
    }
    pw.onChange(check)
    const timer = setInterval(check, 1000)
    check()
  })
}

/** Strips a stale external-create-pending annotation only where the controller itself reports it is blocked. */
export async function healStuck(cluster: Cluster, pw: PlatformWatch, report: StepReport): Promise<boolean> {
  const o = pw.snapshot()
  const targets: { obj: KObj; plural: string }[] = []
  if (isStuckCreate(o.installer)) targets.push({ obj: o.installer!, plural: 'installers' })
  for (const cd of o.cds.values()) if (isStuckCreate(cd)) targets.push({ obj: cd, plural: 'compositiondefinitions' })
  for (const comp of o.compositions.values()) {
    if (!isStuckCreate(comp)) continue
    const cd = o.cds.get(comp.metadata.name)
    targets.push({ obj: comp, plural: String(cd?.status?.resource ?? '') })
  }
  for (const { obj, plural } of targets) {
    if (!plural) continue
    await removeAnnotation(cluster, refOf(obj, plural), 'krateo.io/external-create-pending')
    report.line(
      `healed ${obj.kind ?? plural}/${obj.metadata.name}: its controller had lost a create result ("cannot determine creation result"); removed the stale krateo.io/external-create-pending annotation`,
    )
  }
  return targets.length > 0
}

export interface FollowResult {
  state: PlatformState
  nudges: number
  healed: number
}

/**
 * Follows the self-reconcile until every enabled component is Ready and every disabled one is drained.
 * `applied` holds off judging until the watched Installer CR shows the change just written to it (a watch
 * lags a write); `pending` says what else the caller waits for (null when nothing).
 */
/**
 * A stage must hold this long before a nudge (a burst of events settles), and nudges are this far apart: the
 * guard against a second render is the release's pending status, not a wait (every wait here is added to
 * every dependency layer of the install).
 */
const NUDGE_SETTLE_MS = 300
const NUDGE_GAP_MS = 1000
/** helm's words when a kind whose CRD was just established is not in discovery yet (a render to retry). */
const DISCOVERY_LAG = new RegExp(`${DISCOVERY_DELAY}|no matches for kind|ensure CRDs are installed first`, 'i')

export async function followToReady(
  cluster: Cluster,
  pw: PlatformWatch,
  opts: Pick<InstallOptions, 'namespace' | 'accelerate'>,
  interrupt: Interrupt,
  report: StepReport,
  deadline: number,
  applied: (o: Observed) => boolean = () => true,
  pending: (o: Observed) => string | null = () => null,
): Promise<FollowResult> {
  const since = new Map<string, { stage: string; at: number }>()
  let lastNudge = 0
  let nudges = 0
  const nudgedFor = new Set<string>()
  const reported = new Set<string>()
  let retryMs = 2000
  let healed = 0
  let busy = false
  const stageText = (s: PlatformState['components'][number]) =>
    s.stage === 'waiting-deps' ? `waiting for ${s.waitingFor.join(', ')}` : STAGE_TEXT[s.stage]
  return await new Promise<FollowResult>((resolve, reject) => {
    let finished = false
    const finish = (fn: () => void) => {
      if (finished) return
      finished = true
      clearInterval(timer)
      fn()
    }
    const tick = async () => {
      if (finished || busy) return
      busy = true
      try {
        if (!pw.primed()) return
        const o = pw.snapshot()
        const now = Date.now()
        if (!applied(o)) {
          report.line('waiting for the watch to show the patched Installer CR')
          if (now > deadline)
            finish(() =>
              reject(
                new UserError(
                  'timed out waiting to observe the patched Installer CR',
                  ExitCode.Timeout,
                  're-run the same command to resume',
                ),
              ),
            )
          return
        }
        const state = platformState(o)
        // Each problem once, when it appears (a read that fails, a component in error): not only at the deadline.
        for (const p of state.problems)
          if (!reported.has(p)) {
            reported.add(p)
            report.line(`problem: ${p}`)
          }
        for (const c of state.components) {
          const prev = since.get(c.name)
          if (!prev || prev.stage !== c.stage + c.detail) {
            since.set(c.name, { stage: c.stage + c.detail, at: now })
            if (prev || c.stage !== 'disabled')
              report.line(
                `${c.name}: ${stageText(c)}${c.stage !== 'ready' && c.detail && c.stage !== 'waiting-deps' ? ` (${c.detail})` : ''}`,
              )
          }
        }
        report.title(
          `Follow the self-reconcile: ${phaseText(state)}${o.installer ? '' : ' (waiting for the Installer CR)'}`,
        )
        report.block(progressBlock(state, since, now))
        const settled = !state.components.some((c) => c.stage === 'draining' || c.stage === 'deleting')
        if (o.installer && state.total > 0 && state.ready === state.total && settled && isReady(o.installer)) {
          const more = pending(o)
          if (!more) {
            // A nudge leaves krateo.io/paused: "false" behind: take it away, so no trace of ours stays.
            if (nudges && o.installer.metadata.annotations?.[PAUSED_ANNOTATION] === 'false')
              await clearNudge(cluster, o.installer)
            finish(() => resolve({ state, nudges, healed }))
            return
          }
          report.line(more)
        }
        if (await healStuck(cluster, pw, report)) healed++
        if (opts.accelerate && o.installer) {
          // Pass B renders one dependency layer per reconcile of the Installer (every cdc resync, 3 min on Gen S).
          // A change of krateo.io/paused is an event the cdc watches (contract section 3): it observes, and so
          // renders the next layer, now. Never a restart: that would cut a render in flight. At most once per
          // newly unlocked layer, and never while the installer's release is pending (helm in flight).
          // A feature-off drain also moves one layer per render: a draining component whose dependents are gone.
          const components = parseComponents((o.installer.spec ?? {}) as InstallerSpec)
          const drainable = (name: string) => !dependentsOf(name, components).some((d) => o.compositions.has(d.name))
          // The consumer's wiring counts too: a LoadBalancer IP that came after the last render is written at the next.
          const waitingRender = state.components
            .filter(
              (c) =>
                (c.awaitsRender || (c.stage === 'draining' && drainable(c.name))) &&
                now - (since.get(c.name)?.at ?? now) > NUDGE_SETTLE_MS,
            )
            .map((c) => `${c.name}:${c.stage}`)
          // A render that failed because a kind just served is not in the API's discovery yet is retried by the
          // cdc only at its next resync: nudge again, backing off, until a render goes through.
          const synced = conditionOf(o.installer, 'Synced')
          if (
            synced?.status === 'False' &&
            DISCOVERY_LAG.test(synced.message ?? '') &&
            waitingRender.length &&
            now - lastNudge > retryMs
          ) {
            report.line(
              `the installer's last render failed while a new kind was not yet discoverable: nudging again (in ${retryMs / 1000}s)`,
            )
            nudgedFor.clear()
            retryMs = Math.min(30_000, retryMs * 2)
          }
          const fresh = waitingRender.filter((k) => !nudgedFor.has(k))
          if (
            fresh.length &&
            now - lastNudge > NUDGE_GAP_MS &&
            o.installer.metadata.annotations?.[PAUSED_ANNOTATION] !== 'true'
          ) {
            lastNudge = now
            if (await installerReleasePending(cluster, o.installer)) {
              report.line("the installer's release is being rendered (helm pending): no nudge until it settles")
            } else {
              for (const k of waitingRender) nudgedFor.add(k)
              nudges++
              await nudge(cluster, o.installer)
              report.line(
                `nudged the installer's cdc (krateo.io/paused, a watched annotation) so it renders ${fresh.map((k) => k.split(':')[0]).join(', ')} now, not at its next resync`,
              )
            }
          }
        }
        if (interrupt.requested) finish(() => reject(interrupt.error()))
        else if (now > deadline) finish(() => reject(new TimeoutWithState(state)))
      } catch (err) {
        finish(() =>
          reject(
            err instanceof UserError || err instanceof TypeError
              ? err
              : apiFailure(err, cluster, 'follow the installation'),
          ),
        )
      } finally {
        busy = false
      }
    }
    pw.onChange(() => void tick())
    const timer = setInterval(() => void tick(), 1000)
    void tick()
  })
}

function progressBlock(state: PlatformState, since: Map<string, { at: number }>, now: number): string {
  const rows = state.components
    .filter((c) => c.enabled || c.stage !== 'disabled')
    .map((c) => {
      const t = Math.round((now - (since.get(c.name)?.at ?? now)) / 1000)
      const stage = c.stage === 'waiting-deps' ? `waiting for ${c.waitingFor.join(', ')}` : STAGE_TEXT[c.stage]
      return [
        c.stage === 'ready' ? '✔' : c.stage === 'error' || c.stage === 'stuck' ? '✖' : '…',
        c.name,
        stage,
        c.stage === 'ready' ? '' : `${t}s`,
        c.stage === 'ready' || c.stage === 'waiting-deps' ? '' : c.detail.slice(0, 80),
      ]
    })
  const disabled = state.components.filter((c) => !c.enabled && c.stage === 'disabled').map((c) => c.name)
  return table(rows) + (disabled.length ? `\ndisabled: ${disabled.join(', ')}` : '')
}

export class TimeoutWithState extends UserError {
  constructor(readonly state: PlatformState) {
    const notReady = state.components.filter((c) => c.enabled && c.stage !== 'ready')
    super(
      `timed out with ${state.ready}/${state.total} components Ready; not Ready: ${notReady.map((c) => `${c.name} (${c.stage === 'waiting-deps' ? `waiting for ${c.waitingFor.join(', ')}` : c.detail || STAGE_TEXT[c.stage]})`).join('; ')}${state.problems.length ? `; problems: ${state.problems.slice(0, 3).join('; ')}` : ''}`,
      ExitCode.Timeout,
      're-run the same command to keep waiting (it resumes), or see krateo-installer status',
    )
  }
}

export async function currentState(cluster: Cluster, namespace: string): Promise<PlatformState> {
  return platformState(await observe(cluster, namespace))
}

export function summary(state: PlatformState, elapsedMs: number): string {
  return `Krateo is ${state.phase === 'Ready' ? 'Ready' : phaseText(state)} in ${state.namespace} (${state.ready}/${state.total} components, ${(elapsedMs / 1000).toFixed(0)}s)\n\n${renderStatus(state)}`
}
