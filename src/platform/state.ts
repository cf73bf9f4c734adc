// Where the platform stands, derived from observed objects only. Pure: the cluster is read elsewhere
// (observe.ts), so every rule here is unit-tested without I/O. One component's stage: component-state.ts.
import {
  type Observed,
  PAUSED_ANNOTATION,
  PAUSED_BY_ANNOTATION,
  UPGRADE_ANNOTATION,
  conditionOf,
  isReady,
  isStuckCreate,
  oneLine,
  passingError,
} from './objects.js'
import { type ComponentState, LEAVING_STAGES, componentState } from './component-state.js'
import { type Component, type InstallerSpec, isEnabled, parseComponents } from './components.js'
import { INSTALLER_NAME, MANAGED_BY_LABEL, MANAGED_BY_US } from './ownership.js'
import { type PortalGap, consumerWiring, serviceOf, unwiredAdvice } from './wiring.js'

export interface Endpoint {
  component: string
  type: string
  url: string | null
  service: string
  hostnameOnly?: boolean
}

export type Phase =
  'NotInstalled' | 'Bootstrapping' | 'Reconciling' | 'Upgrading' | 'Ready' | 'Degraded' | 'Draining' | 'Stuck'

export interface PlatformState {
  phase: Phase
  namespace: string
  installerVersion: string | null
  ready: number
  total: number
  components: ComponentState[]
  endpoints: Endpoint[]
  portalUrl: string | null
  /** Why there is no portal URL (null when there is one, or nothing is installed). */
  portalGap: PortalGap | null
  /** One line per problem (errors, stuck objects), most important first. */
  problems: string[]
  /** Facts a user should know that are not problems of the engine (a portal the chart does not wire). */
  notes: string[]
  /** Who paused the Installer and what resumes it, when this CLI paused it (null otherwise). */
  pausedBy: string | null
  /** The run holding the krateo-installer lock (filled by status, which reads the Lease). */
  lock: { holder: string; command: string; since: string } | null
  /** The engine generation (filled by status; null when not read). */
  generation?: 'S' | 'N' | 'unknown' | null
}

export function endpoints(components: Component[], obs: Observed): Endpoint[] {
  const out: Endpoint[] = []
  for (const c of components.filter((x) => x.expose)) {
    const svc = serviceOf(c, obs.services, obs.compositions.get(c.name))
    if (!svc) continue
    const spec = svc.spec as { type?: string; ports?: { port: number; nodePort?: number }[] }
    const port = spec.ports?.[0]
    const ingress = (svc.status as { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } } | undefined)
      ?.loadBalancer?.ingress?.[0]
    let url: string | null = null
    if (spec.type === 'LoadBalancer' && ingress && port) url = `http://${ingress.ip ?? ingress.hostname}:${port.port}`
    else if (spec.type === 'NodePort' && port?.nodePort && obs.nodeIP) url = `http://${obs.nodeIP}:${port.nodePort}`
    out.push({
      component: c.name,
      type: spec.type ?? 'ClusterIP',
      url,
      service: svc.metadata.name,
      ...(spec.type === 'LoadBalancer' && ingress && !ingress.ip ? { hostnameOnly: true } : {}),
    })
  }
  return out
}

export function platformState(obs: Observed): PlatformState {
  const spec = (obs.installer?.spec ?? {}) as InstallerSpec
  const components = obs.installer ? parseComponents(spec) : []
  const states = components.map((c) => componentState(c, obs, spec.features, components))
  const enabled = states.filter((s) => s.enabled)
  const readyCount = enabled.filter((s) => s.stage === 'ready').length
  const eps = endpoints(components, obs)
  const installerVersion =
    (obs.cds.get('installer')?.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? null
  const problems = problemsOf(obs, states)
  const portal = portalOf(obs, components, spec.features, eps, installerVersion)
  const ann = obs.installer?.metadata.annotations ?? {}
  const by = ann[PAUSED_ANNOTATION] === 'true' ? ann[PAUSED_BY_ANNOTATION] : undefined
  const pausedBy = by
    ? `paused by ${by}: re-run that command to resume${/ uninstall /.test(by) ? ' the uninstall' : ''}`
    : null
  return {
    phase: phaseOf(obs, states, problems, readyCount === enabled.length),
    namespace: obs.namespace,
    installerVersion,
    ready: readyCount,
    total: enabled.length,
    components: states,
    endpoints: eps,
    ...portal,
    problems,
    pausedBy,
    lock: null,
  }
}

/** One line per problem: a lost create, an Installer that fails to reconcile, components in error, failed reads. */
function problemsOf(obs: Observed, states: ComponentState[]): string[] {
  const problems: string[] = []
  if (isStuckCreate(obs.installer))
    problems.push(`Installer ${obs.namespace}/installer: ${conditionOf(obs.installer, 'Synced')?.message}`)
  const installerSynced = conditionOf(obs.installer, 'Synced')
  // A paused Installer (uninstall's drain) is not a problem.
  if (
    installerSynced?.status === 'False' &&
    installerSynced.reason !== 'ReconcilePaused' &&
    !isStuckCreate(obs.installer) &&
    !passingError(installerSynced, obs.now)
  )
    problems.push(`Installer ${obs.namespace}/installer: ${oneLine(installerSynced)}`)
  for (const s of states) if (s.stage === 'stuck' || s.stage === 'error') problems.push(`${s.name}: ${s.detail}`)
  problems.push(...(obs.readErrors ?? []))
  return problems
}

/** The portal's URL, or why there is none; and what a user should know about it. */
function portalOf(
  obs: Observed,
  components: Component[],
  features: Record<string, boolean> | undefined,
  eps: Endpoint[],
  installerVersion: string | null,
): Pick<PlatformState, 'portalUrl' | 'portalGap' | 'notes'> {
  const consumer = components.find((c) => c.consumer)
  // Nothing installed (no components): no gap to name.
  if (!consumer)
    return {
      portalUrl: null,
      notes: [],
      portalGap: obs.installer
        ? {
            why: `installer ${installerVersion ?? '?'} names no portal component`,
            hint: 'see krateo-installer status for the endpoints it has',
          }
        : null,
    }
  const endpoint = eps.find((e) => e.component === consumer.name)
  // Turned off, its Service may still answer while it drains.
  if (!isEnabled(consumer, features))
    return {
      portalUrl: endpoint?.url ?? null,
      notes: [],
      portalGap: {
        why: `${consumer.name} is turned off`,
        hint: `turn it on with: krateo-installer upgrade -n ${obs.namespace} --feature ${consumer.feature}=true`,
      },
    }
  const notes: string[] = []
  if (endpoint?.hostnameOnly) notes.push(`${consumer.name}'s load balancer has a hostname only: ${endpoint.url}`)
  const wiring = consumerWiring(
    components,
    (p) => isEnabled(p, features),
    obs.compositions.get(consumer.name),
    obs.services,
    obs.compositions,
  )
  if (wiring.never.length) {
    const gap = unwiredAdvice(consumer.name, wiring.never)
    notes.unshift(`${gap.why}. ${gap.hint[0]!.toUpperCase()}${gap.hint.slice(1)}`)
    // The frontend answers there, but it cannot reach its peers: not a portal a user can use.
    return { portalUrl: null, portalGap: gap, notes }
  }
  if (endpoint?.url) return { portalUrl: endpoint.url, portalGap: null, notes }
  return { portalUrl: null, portalGap: unexposedGap(consumer.name, endpoint), notes }
}

function unexposedGap(name: string, endpoint: Endpoint | undefined): PortalGap {
  if (endpoint?.type === 'LoadBalancer' || endpoint?.type === 'NodePort')
    return {
      why: `${name} has no address yet (${endpoint.type})`,
      hint:
        endpoint.type === 'LoadBalancer'
          ? 'a LoadBalancer needs a load-balancer controller that gives it an address'
          : 'NodePort needs a node with an address',
    }
  return {
    why: `${name} is not exposed${endpoint ? ` (its Service is ${endpoint.type})` : ' yet'}`,
    hint: 'install with --exposure LoadBalancer',
  }
}

function phaseOf(obs: Observed, states: ComponentState[], problems: string[], allReady: boolean): Phase {
  // The CompositionDefinition CRD alone is residue (it ships in crds/), not an installation.
  // Someone else's CompositionDefinitions (a team's blueprints) are no platform, labelled like ours or not: only
  // the installer's own definition (named installer, with our label) or installer-self-cr says a bootstrap began.
  if (!obs.installer)
    return obs.bootstrapped ||
      [...obs.cds.values()].some(
        (cd) => cd.metadata.name === INSTALLER_NAME && cd.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US,
      )
      ? 'Bootstrapping'
      : 'NotInstalled'
  if (obs.installer.metadata.deletionTimestamp) return 'Draining'
  if (isStuckCreate(obs.installer) || states.some((s) => s.stage === 'stuck')) return 'Stuck'
  if (problems.length) return 'Degraded'
  if (obs.installer.metadata.annotations?.[UPGRADE_ANNOTATION] || states.some((s) => s.stage === 'upgrading'))
    return 'Upgrading'
  // A ReconcilePaused condition without the annotation is a pause just taken back that its cdc has not observed yet.
  if (
    states.some((s) => LEAVING_STAGES.has(s.stage)) ||
    (conditionOf(obs.installer, 'Synced')?.reason === 'ReconcilePaused' &&
      obs.installer.metadata.annotations?.[PAUSED_ANNOTATION] === 'true')
  )
    return 'Draining'
  if (allReady && isReady(obs.installer)) return 'Ready'
  return 'Reconciling'
}

export function phaseText(state: PlatformState): string {
  return state.phase === 'Reconciling' || state.phase === 'Upgrading'
    ? `${state.phase} ${state.ready}/${state.total}`
    : state.phase
}
