// Where the platform and each component stand, derived from observed objects only. Pure: the cluster is
// read elsewhere (observe.ts), so every rule here is unit-tested without I/O.
import { type Component, type InstallerSpec, dashed, isEnabled, parseComponents } from './components.js'
import { notRunning, specApplied } from './workloads.js'
import { INSTALLER_NAME, MANAGED_BY_LABEL, MANAGED_BY_US } from './ownership.js'
import { type PortalGap, consumerWiring, serviceOf, unwiredAdvice } from './wiring.js'

export type { KObj } from './kobj.js'
import type { KObj } from './kobj.js'

export interface Condition {
  type: string
  status: string
  reason?: string
  message?: string
  lastTransitionTime?: string
}

export interface Observed {
  namespace: string
  /** CRD compositiondefinitions.core.krateo.io exists. */
  cdCrd: boolean
  /** The installer-self-cr ConfigMap exists (a bootstrap release rendered it). */
  bootstrapped: boolean
  /** The installer-self-cr ConfigMap itself (its helm annotations name the bootstrap release). */
  selfCr?: KObj | null
  installer: KObj | null
  /** CompositionDefinitions of the namespace, by name (the installer's own included). */
  cds: Map<string, KObj>
  /** Generated CRDs of composition.krateo.io, by CRD name. */
  crds: Map<string, KObj>
  /** Component compositions, by component name. */
  compositions: Map<string, KObj>
  services: KObj[]
  /** Deployments, StatefulSets, DaemonSets and Jobs (kind set) of the namespaces the releases use; undefined = not read. */
  workloads?: KObj[]
  /** Their pods, for the reason a workload is not available. */
  pods?: KObj[]
  nodeIP?: string
  /** Reads that failed (one kind that cannot be read does not fail the rest). */
  readErrors?: string[]
  now: number
}

export type Stage =
  | 'disabled'
  | 'pending-definition'
  | 'definition-registered'
  | 'crd-served'
  | 'waiting-deps'
  | 'composition-created'
  | 'deploying'
  | 'starting'
  | 'wiring'
  | 'upgrading'
  | 'ready'
  | 'error'
  | 'stuck'
  | 'draining'
  | 'deleting'

export const STAGE_TEXT: Record<Stage, string> = {
  disabled: 'disabled',
  'pending-definition': 'waiting for its CompositionDefinition',
  'definition-registered': 'definition registered',
  'crd-served': 'CRD served, waiting for the installer to render it',
  'waiting-deps': 'waiting for deps',
  'composition-created': 'composition created',
  deploying: 'deploying',
  starting: 'installed, workloads starting',
  wiring: 'running, waiting for its config to be wired',
  upgrading: 'moving to a new version',
  ready: 'Ready',
  error: 'error',
  stuck: 'stuck',
  draining: 'draining (feature off)',
  deleting: 'deleting',
}

export interface ComponentState {
  name: string
  feature: string | null
  enabled: boolean
  version: string
  stage: Stage
  ready: Condition | null
  synced: Condition | null
  waitingFor: string[]
  /** Why it is where it is, in one line. */
  detail: string
  /** Seconds since its Composition was created. */
  ageSeconds: number | null
  /** The installer renders what it waits for at its next reconcile (so a nudge brings it now). */
  awaitsRender: boolean
}

export interface Endpoint {
  component: string
  type: string
  url: string | null
  service: string
  hostnameOnly?: boolean
}

export type Phase =
  'NotInstalled' | 'Bootstrapping' | 'Reconciling' | 'Upgrading' | 'Ready' | 'Degraded' | 'Draining' | 'Stuck'

/** Set on the Installer CR while `upgrade` holds it paused; its value is the target installer version. */
export const UPGRADE_ANNOTATION = 'krateo-installer/upgrade-to'

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

/** The annotation the engine's cdc reads to stop reconciling a Composition; a change of it is a watched event. */
export const PAUSED_ANNOTATION = 'krateo.io/paused'

/** Written next to krateo.io/paused by this CLI (see teardown.ts): "krateo-installer <command> at <time>". */
export const PAUSED_BY_ANNOTATION = 'krateo-installer/paused-by'

export const conditionOf = (obj: KObj | null | undefined, type: string): Condition | null =>
  ((obj?.status?.conditions as Condition[] | undefined) ?? []).find((c) => c.type === type) ?? null

export const isReady = (obj: KObj | null | undefined) => conditionOf(obj, 'Ready')?.status === 'True'

const STUCK_CREATE = 'cannot determine creation result'

/** An object whose controller refuses to continue because a create result was lost (contract sections 1-2). */
export function isStuckCreate(obj: KObj | null | undefined): boolean {
  if (!obj) return false
  const ann = obj.metadata.annotations ?? {}
  const pending = ann['krateo.io/external-create-pending']
  if (!pending) return false
  const settled = [ann['krateo.io/external-create-succeeded'], ann['krateo.io/external-create-failed']].filter(
    Boolean,
  ) as string[]
  const newer = settled.every((s) => Date.parse(pending) > Date.parse(s))
  return newer && (conditionOf(obj, 'Synced')?.message ?? '').includes(STUCK_CREATE)
}

export function crdServes(crd: KObj | undefined, version: string): boolean {
  const versions = (crd?.spec?.versions as { name: string; served: boolean }[] | undefined) ?? []
  return versions.some((v) => v.name === version && v.served)
}

/** helm's and the API server's words for a kind served a moment ago that discovery does not list yet. */
export const DISCOVERY_DELAY = 'There can be a delay between when CustomResourceDefinitions are created'
/** The API server's words for a write that lost an optimistic-concurrency race (409): the writer reads again. */
const WRITE_CONFLICT = 'the object has been modified; please apply your changes to the latest version and try again'
/**
 * API answers that mean "try again shortly": 429 and 503 (a CRD version's storage starting, a kind served a
 * moment ago that discovery does not list yet), and a write conflict (the real cdc meets one whenever the object
 * changed under its status write). The engine retries them; they are a problem once they last.
 */
const PASSING_API_ERROR = new RegExp(
  `HTTP 429|HTTP 503|storage is \\(re\\)initializing|${DISCOVERY_DELAY}|${WRITE_CONFLICT.replace(/[.;]/g, '\\$&')}`,
)
export const PASSING_ERROR_GRACE_MS = 120_000

/** A ReconcileError from a passing API answer, younger than the grace: the engine is still retrying it. */
export function passingError(c: Condition | null, now: number): boolean {
  if (!c || c.status !== 'False' || c.reason !== 'ReconcileError' || !PASSING_API_ERROR.test(c.message ?? ''))
    return false
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : NaN
  return Number.isFinite(since) && now - since < PASSING_ERROR_GRACE_MS
}

function oneLine(c: Condition | null): string {
  if (!c) return ''
  return [c.reason, c.message].filter(Boolean).join(': ')
}

export function componentState(
  c: Component,
  obs: Observed,
  features: Record<string, boolean> | undefined,
  components: Component[] = [c],
): ComponentState {
  const enabled = isEnabled(c, features)
  const cd = obs.cds.get(c.name)
  const comp = obs.compositions.get(c.name)
  const base = { name: c.name, feature: c.feature ?? null, enabled, version: c.version, waitingFor: [] as string[] }
  const ready = conditionOf(comp, 'Ready')
  const synced = conditionOf(comp, 'Synced')
  const ageSeconds = comp?.metadata.creationTimestamp
    ? Math.max(0, Math.round((obs.now - Date.parse(comp.metadata.creationTimestamp)) / 1000))
    : null
  const mk = (stage: Stage, detail: string, extra: Partial<ComponentState> = {}): ComponentState => ({
    ...base,
    stage,
    ready,
    synced,
    detail,
    ageSeconds,
    awaitsRender: stage === 'crd-served' || stage === 'pending-definition',
    ...extra,
  })

  if (comp) {
    if (comp.metadata.deletionTimestamp)
      return mk('deleting', oneLine(ready) || `finalizers: ${(comp.metadata.finalizers ?? []).join(', ') || 'none'}`)
    if (isStuckCreate(comp)) return mk('stuck', synced?.message ?? '')
    if (passingError(synced, obs.now))
      return mk('deploying', `its cdc retries after a passing API error: ${synced!.message}`)
    if (synced?.status === 'False' && synced.reason === 'ReconcileError')
      return mk('error', synced.message ?? 'ReconcileError')
    if (!enabled) return mk('draining', 'its feature is off; removed once no dependent is left')
    // A version change is done only when the cdc reports the release at the pinned chart version.
    const cdVersion = (cd?.spec as { chart?: { version?: string } } | undefined)?.chart?.version
    const releasedAt = comp.status?.helmChartVersion as string | undefined
    if (cdVersion && cdVersion !== c.version)
      return mk('upgrading', `its CompositionDefinition is at ${cdVersion}, moving to ${c.version}`)
    if (releasedAt && releasedAt !== c.version)
      return mk('upgrading', `released at ${releasedAt}, moving to ${c.version}`)
    if (ready?.status === 'True') {
      if (!specApplied(comp)) return mk('deploying', 'its cdc has not applied the latest values yet')
      // The cdc's Ready only says helm returned: the component runs when its workloads are available.
      if (obs.workloads) {
        const lacking = notRunning(comp, obs.workloads, obs.pods ?? [])
        if (lacking.length) return mk('starting', lacking.join('; '))
      }
      if (c.consumer) {
        const wiring = consumerWiring(components, (p) => isEnabled(p, features), comp, obs.services, obs.compositions)
        if (wiring.pending.length) {
          return mk('wiring', wiring.pending.map((g) => g.why).join('; '), {
            awaitsRender: wiring.pending.every((g) => g.renderable),
          })
        }
        // The portal is reachable only once its own load balancer has an address.
        const own = c.expose ? serviceOf(c, obs.services, comp) : undefined
        const ingress =
          (own?.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer?.ingress ?? []
        if ((own?.spec as { type?: string } | undefined)?.type === 'LoadBalancer' && ingress.length === 0)
          return mk('wiring', `waiting for the LoadBalancer IP of its own Service ${own!.metadata.name}`)
      }
      return mk('ready', ready.message ?? '')
    }
    if (!ready) return mk('composition-created', 'waiting for its cdc')
    return mk('deploying', oneLine(ready))
  }
  if (!enabled) return mk('disabled', c.feature ? `feature ${c.feature} is off` : '')
  if (!cd) return mk('pending-definition', 'the installer has not rendered its CompositionDefinition yet')
  if (isStuckCreate(cd)) return mk('stuck', conditionOf(cd, 'Synced')?.message ?? '')
  const cdSynced = conditionOf(cd, 'Synced')
  if (passingError(cdSynced, obs.now))
    return mk('definition-registered', `core-provider retries after a passing API error: ${cdSynced!.message}`)
  if (cdSynced?.status === 'False' && cdSynced.reason === 'ReconcileError')
    return mk('error', cdSynced.message ?? 'ReconcileError')
  const resource = cd.status?.resource as string | undefined
  const crd = resource ? obs.crds.get(`${resource}.composition.krateo.io`) : undefined
  if (!isReady(cd) || !crdServes(crd, dashed(c.version)))
    return mk('definition-registered', oneLine(conditionOf(cd, 'Ready')) || 'core-provider is generating its CRD')
  const waiting = c.deps.filter((d) => !isReady(obs.compositions.get(d)))
  if (waiting.length) return mk('waiting-deps', `waiting for ${waiting.join(', ')}`, { waitingFor: waiting })
  return mk('crd-served', 'the installer renders it at its next reconcile')
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
  const consumer = components.find((c) => c.consumer)
  const installerVersion =
    (obs.cds.get('installer')?.spec as { chart?: { version?: string } } | undefined)?.chart?.version ?? null
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
  const notes: string[] = []
  const consumerEndpoint = eps.find((e) => e.component === consumer?.name)
  let portalUrl = consumerEndpoint?.url ?? null
  let portalGap: PortalGap | null = null
  // Nothing installed (no components): no gap to name.
  if (!consumer)
    portalGap = obs.installer
      ? {
          why: `installer ${installerVersion ?? '?'} names no portal component`,
          hint: 'see krateo-installer status for the endpoints it has',
        }
      : null
  else if (!isEnabled(consumer, spec.features))
    portalGap = {
      why: `${consumer.name} is turned off`,
      hint: `turn it on with: krateo-installer upgrade -n ${obs.namespace} --feature ${consumer.feature}=true`,
    }
  else {
    const wiring = consumerWiring(
      components,
      (p) => isEnabled(p, spec.features),
      obs.compositions.get(consumer.name),
      obs.services,
      obs.compositions,
    )
    if (wiring.never.length) {
      portalGap = unwiredAdvice(consumer.name, wiring.never)
      notes.push(`${portalGap.why}. ${portalGap.hint[0]!.toUpperCase()}${portalGap.hint.slice(1)}`)
      portalUrl = null // the frontend answers there, but it cannot reach its peers: not a portal a user can use
    } else if (!portalUrl) {
      portalGap =
        consumerEndpoint?.type === 'LoadBalancer' || consumerEndpoint?.type === 'NodePort'
          ? {
              why: `${consumer.name} has no address yet (${consumerEndpoint.type})`,
              hint:
                consumerEndpoint.type === 'LoadBalancer'
                  ? 'a LoadBalancer needs a load-balancer controller that gives it an address'
                  : 'NodePort needs a node with an address',
            }
          : {
              why: `${consumer.name} is not exposed${consumerEndpoint ? ` (its Service is ${consumerEndpoint.type})` : ' yet'}`,
              hint: 'install with --exposure LoadBalancer',
            }
    }
    if (consumerEndpoint?.hostnameOnly)
      notes.push(`${consumer.name}'s load balancer has a hostname only: ${consumerEndpoint.url}`)
  }

  let phase: Phase
  // The CompositionDefinition CRD alone is residue (it ships in crds/), not an installation.
  // Someone else's CompositionDefinitions (a team's blueprints) are no platform, labelled like ours or not: only
  // the installer's own definition (named installer, with our label) or installer-self-cr says a bootstrap began.
  if (!obs.installer)
    phase =
      obs.bootstrapped ||
      [...obs.cds.values()].some(
        (cd) => cd.metadata.name === INSTALLER_NAME && cd.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US,
      )
        ? 'Bootstrapping'
        : 'NotInstalled'
  else if (obs.installer.metadata.deletionTimestamp) phase = 'Draining'
  else if (isStuckCreate(obs.installer) || states.some((s) => s.stage === 'stuck')) phase = 'Stuck'
  else if (problems.length) phase = 'Degraded'
  else if (obs.installer.metadata.annotations?.[UPGRADE_ANNOTATION] || states.some((s) => s.stage === 'upgrading'))
    phase = 'Upgrading'
  // A ReconcilePaused condition without the annotation is a pause just taken back that its cdc has not observed yet.
  else if (
    states.some((s) => s.stage === 'deleting' || s.stage === 'draining') ||
    (installerSynced?.reason === 'ReconcilePaused' &&
      obs.installer.metadata.annotations?.[PAUSED_ANNOTATION] === 'true')
  )
    phase = 'Draining'
  else if (readyCount === enabled.length && isReady(obs.installer)) phase = 'Ready'
  else phase = 'Reconciling'
  const ann = obs.installer?.metadata.annotations ?? {}
  const by = ann[PAUSED_ANNOTATION] === 'true' ? ann[PAUSED_BY_ANNOTATION] : undefined
  const pausedBy = by
    ? `paused by ${by}: re-run that command to resume${/ uninstall /.test(by) ? ' the uninstall' : ''}`
    : null
  return {
    phase,
    namespace: obs.namespace,
    installerVersion,
    ready: readyCount,
    total: enabled.length,
    components: states,
    endpoints: eps,
    portalUrl,
    portalGap,
    problems,
    notes,
    pausedBy,
    lock: null,
  }
}

export function phaseText(state: PlatformState): string {
  return state.phase === 'Reconciling' || state.phase === 'Upgrading'
    ? `${state.phase} ${state.ready}/${state.total}`
    : state.phase
}
