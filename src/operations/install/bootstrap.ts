// The bootstrap phase of the umbrella chart done as visible steps: what the chart's post-install hook would do
// (contract section 1), helm's own run of the bootstrap release, and a resumed run's wait for a helm still
// working on it.
import { type InstallOptions, type Plan } from './preflight.js'
import { installerDefinitionSteps, upsertSecret } from './installer-definition.js'
import { type ReleaseStatus, releaseStatus } from '../../cluster/helm.js'
import { apiCall } from '../../cluster/cluster.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Cluster } from '../../cluster/cluster.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import { Helm, HelmError, helmRunsOf } from '../../cluster/helm.js'
import { chartArgs, helmChartFailure } from '../../cluster/chart.js'
import { detectGeneration } from '../../cluster/engine.js'
import { traitsOf } from '../../platform/engine.js'
import { type Step, type StepReport } from '../../ui/progress.js'
import { createWhenServed, getCustom, mergePatchCustom, refOf } from '../../cluster/kube-write.js'
import type { RunContext } from '../operation.js'
import { REGISTRY_SECRET } from '../inventory.js'

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
      const existing = await apiCall(cluster, 'read the Installer CR', () => getCustom(cluster, ref))
      if (!existing) await waitForVersionStamp(cluster, deadline, r)
      // A 404 may also mean the version is listed but not served yet (a moment after the CRD changed): retry.
      if (
        !existing &&
        (await apiCall(cluster, 'create the Installer CR', () =>
          createWhenServed(cluster, { ...ref, namespace: ns }, installer),
        )) === 'created'
      )
        return 'created'
      // Only components and componentValues: runtime edits (spec.features, exposure...) survive.
      await apiCall(cluster, 'patch the Installer CR', () =>
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
  for (let first = true; !traitsOf(await detectGeneration(cluster)).versionStamp; first = false) {
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
