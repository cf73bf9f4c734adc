// check: the same verifications install's preflight makes (--pre), or those of a running platform, each as
// one ✔/✖ line with a hint, like `linkerd check`. Every check runs even when an earlier one failed, except
// those that need what failed (named as skipped).
import { AppsV1Api } from '@kubernetes/client-node'
import { type Cluster, checkReachable } from '../cluster/cluster.js'
import { UserError } from '../platform/errors.js'
import type { Helm } from '../cluster/helm.js'
import { type ChartSource, type UserValues, renderBootstrap } from '../cluster/chart.js'
import { type InstallerSpec, parseComponents, validateDag } from '../platform/components.js'
import { INSTALL_ACCESS, checkAccess } from '../cluster/access.js'
import { detectGeneration } from '../cluster/engine.js'
import { observe } from '../cluster/observe.js'
import { type KObj } from '../platform/kobj.js'
import { type PlatformState, platformState, phaseText } from '../platform/state.js'
import type { Observed } from '../platform/objects.js'
import { readLock } from '../cluster/lock.js'
import { bootstrapReleaseOf, isOurCoreProvider } from '../platform/ownership.js'

export interface CheckResult {
  name: string
  ok: boolean
  detail: string
  hint?: string
  skipped?: boolean
}

type Check = { name: string; run: () => Promise<string> }

/** Runs checks in order; one that throws fails with its message (and a UserError's hint), the rest still run. */
export async function runChecks(checks: Check[], needs: Record<string, string> = {}): Promise<CheckResult[]> {
  const out: CheckResult[] = []
  for (const c of checks) {
    const need = needs[c.name]
    if (need && !out.find((r) => r.name === need)?.ok) {
      out.push({ name: c.name, ok: false, skipped: true, detail: `skipped: needs "${need}"` })
      continue
    }
    try {
      out.push({ name: c.name, ok: true, detail: await c.run() })
    } catch (err) {
      out.push({
        name: c.name,
        ok: false,
        detail: (err as Error).message.split('\n')[0] ?? '',
        hint: err instanceof UserError ? err.hint : undefined,
      })
    }
  }
  return out
}

export function renderChecks(results: CheckResult[]): string {
  return results
    .map((r) => `${r.ok ? '✔' : r.skipped ? '-' : '✖'} ${r.name}: ${r.detail}${r.hint ? `\n    hint: ${r.hint}` : ''}`)
    .join('\n')
}

export function preInstallChecks(
  cluster: Cluster,
  helm: Helm,
  namespace: string,
  source: ChartSource,
  values: UserValues,
): { checks: Check[]; needs: Record<string, string> } {
  let spec: InstallerSpec | undefined
  return {
    checks: [
      {
        name: 'cluster reachable',
        run: async () => `${cluster.server} answers (Kubernetes ${await checkReachable(cluster)})`,
      },
      { name: 'helm supported', run: async () => `helm ${(await helm.checkVersion()).text}` },
      {
        name: 'chart renders and values pass its schema',
        run: async () => {
          const r = await renderBootstrap(helm, source, values, namespace)
          spec = r.selfCR.installer.spec as InstallerSpec
          return `${source.chart} ${r.chartVersion}`
        },
      },
      {
        name: 'component DAG valid',
        run: async () => {
          const cs = parseComponents(spec ?? {})
          validateDag(cs)
          return `${cs.length} components`
        },
      },
      {
        name: 'permissions',
        run: async () => {
          await checkAccess(cluster, INSTALL_ACCESS(namespace))
          return 'every write install makes is allowed'
        },
      },
    ],
    needs: {
      'helm supported': 'cluster reachable',
      'chart renders and values pass its schema': 'helm supported',
      'component DAG valid': 'chart renders and values pass its schema',
      permissions: 'cluster reachable',
    },
  }
}

export function platformChecks(
  cluster: Cluster,
  namespace: string,
): { checks: Check[]; needs: Record<string, string> } {
  let obs: Awaited<ReturnType<typeof observe>> | undefined
  const state = () => platformState(obs!)
  return {
    checks: [
      {
        name: 'cluster reachable',
        run: async () => `${cluster.server} answers (Kubernetes ${await checkReachable(cluster)})`,
      },
      {
        name: 'platform installed',
        run: async () => {
          obs = await observe(cluster, namespace)
          return state().phase === 'NotInstalled'
            ? failCheck(`nothing installed in ${namespace}`, 'install with: krateo-installer install')
            : `installer ${state().installerVersion ?? '?'}`
        },
      },
      {
        name: 'engine running',
        run: () => engineRunning(cluster, namespace, obs!),
      },
      {
        name: 'every component Ready',
        run: async () => everyComponentReady(state()),
      },
      {
        name: 'endpoints',
        run: async () => endpointsAnswer(state()),
      },
      // The chart wires the portal to LoadBalancer IPs only: with NodePort the gap says so and what to do.
      {
        name: 'portal',
        run: async () => portalOpen(state()),
      },
      {
        name: 'nothing left Terminating',
        run: async () => nothingTerminating(obs!),
      },
      {
        name: 'no run in progress',
        run: () => lockFree(cluster, namespace),
      },
    ],
    needs: {
      'platform installed': 'cluster reachable',
      'engine running': 'platform installed',
      'every component Ready': 'platform installed',
      endpoints: 'platform installed',
      portal: 'platform installed',
      'nothing left Terminating': 'platform installed',
      'no run in progress': 'cluster reachable',
    },
  }
}

const failCheck = (message: string, hint: string): never => {
  throw new UserError(message, 10, hint)
}

function endpointsAnswer(s: PlatformState): string {
  const missing = s.endpoints.filter((e) => !e.url)
  return missing.length
    ? failCheck(
        `no address yet for ${missing.map((e) => `${e.component} (${e.type})`).join(', ')}`,
        'a LoadBalancer needs a load-balancer controller; NodePort needs a reachable node',
      )
    : s.endpoints.map((e) => `${e.component} ${e.url}`).join(', ') || 'none exposed'
}

function portalOpen(s: PlatformState): string {
  return (
    s.portalUrl ??
    failCheck(s.portalGap?.why ?? 'no portal URL', s.portalGap?.hint ?? 'krateo-installer status shows why')
  )
}

async function lockFree(cluster: Cluster, namespace: string): Promise<string> {
  const l = await readLock(cluster, namespace)
  return l
    ? failCheck(`${l.command} by ${l.holder} holds the lock since ${l.since}`, 'wait for it to finish')
    : 'the lock is free'
}

async function engineRunning(cluster: Cluster, namespace: string, obs: Observed): Promise<string> {
  const release = bootstrapReleaseOf(obs.selfCr ?? null) ?? 'krateo'
  const deps = (
    await cluster.kc
      .makeApiClient(AppsV1Api)
      .listNamespacedDeployment({ namespace, labelSelector: 'app.kubernetes.io/name=core-provider' })
  ).items
  const ours = deps.find((d) => isOurCoreProvider(d as unknown as KObj, release))
  if (!ours)
    return failCheck(
      `no core-provider Deployment of release ${release} in ${namespace}`,
      're-run krateo-installer install to restore the bootstrap release',
    )
  if (!(ours.status?.availableReplicas ?? 0))
    return failCheck(
      `core-provider Deployment ${ours.metadata?.name} has no available replica`,
      `kubectl -n ${namespace} describe deploy ${ours.metadata?.name}`,
    )
  return `core-provider ${ours.metadata?.name} available; engine generation ${await detectGeneration(cluster)}`
}

function everyComponentReady(s: PlatformState): string {
  if (s.ready === s.total && s.phase === 'Ready') return `${s.ready}/${s.total} Ready`
  const waiting = s.components
    .filter((c) => c.enabled && c.stage !== 'ready')
    .map((c) => `${c.name} ${c.stage}`)
    .join(', ')
  return failCheck(
    `${phaseText(s)}: ${waiting || s.problems[0] || ''}`,
    'krateo-installer status shows why each one waits',
  )
}

function nothingTerminating(obs: Observed): string {
  const stuck = [obs.installer, ...obs.compositions.values(), ...obs.cds.values()].filter(
    (o): o is KObj => !!o?.metadata.deletionTimestamp,
  )
  if (!stuck.length) return 'none'
  return failCheck(
    `Terminating: ${stuck.map((o) => `${o.kind ?? 'CompositionDefinition'}/${o.metadata.name} (finalizers ${(o.metadata.finalizers ?? []).join(', ') || 'none'})`).join(', ')}`,
    'krateo-installer uninstall names who should clear them',
  )
}
