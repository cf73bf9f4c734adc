// Where one component stands, derived from observed objects only (pure).
import type { KObj } from './kobj.js'
import {
  type Condition,
  type Observed,
  conditionOf,
  crdServes,
  isReady,
  isStuckCreate,
  oneLine,
  passingError,
} from './objects.js'
import { type Component, dashed, isEnabled } from './components.js'
import { isPlatformDefinition } from './ownership.js'
import { notRunning, specApplied } from './workloads.js'
import { consumerWiring, serviceOf } from './wiring.js'

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
  | 'retiring'
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
  retiring: "drained, its definition goes at the installer's next render",
  deleting: 'deleting',
}

/** Stages of a component on its way out: while any is, the platform is not settled (follow waits, phase Draining). */
export const LEAVING_STAGES: ReadonlySet<Stage> = new Set<Stage>(['draining', 'retiring', 'deleting'])

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

type Make = (stage: Stage, detail: string, extra?: Partial<ComponentState>) => ComponentState

/** A component whose Composition exists, with what judging it needs. */
interface WithComposition {
  c: Component
  comp: KObj
  obs: Observed
  features: Record<string, boolean> | undefined
  /** Every component (the portal's peers). */
  components: Component[]
  mk: Make
}

export function componentState(
  c: Component,
  obs: Observed,
  features: Record<string, boolean> | undefined,
  components: Component[] = [c],
): ComponentState {
  const enabled = isEnabled(c, features)
  const comp = obs.compositions.get(c.name)
  const base = { name: c.name, feature: c.feature ?? null, enabled, version: c.version, waitingFor: [] as string[] }
  const ready = conditionOf(comp, 'Ready')
  const synced = conditionOf(comp, 'Synced')
  const ageSeconds = comp?.metadata.creationTimestamp
    ? Math.max(0, Math.round((obs.now - Date.parse(comp.metadata.creationTimestamp)) / 1000))
    : null
  const mk: Make = (stage, detail, extra = {}) => ({
    ...base,
    stage,
    ready,
    synced,
    detail,
    ageSeconds,
    awaitsRender: stage === 'crd-served' || stage === 'pending-definition',
    ...extra,
  })
  if (comp) return compositionStage({ c, comp, obs, features, components, mk })
  if (!enabled) return retiredStage(c, obs, components, mk)
  return definitionStage(c, obs, mk)
}

/**
 * A disabled component without a Composition. The installer chart keeps a switched-off component's definition while
 * its Composition exists (its render looks it up), so the definition goes only at the render after the drain: until
 * then it is retiring, and a nudge brings that render now. A definition of the same name that is not the
 * platform's (a team's own) leaves the component disabled.
 */
function retiredStage(c: Component, obs: Observed, components: Component[], mk: Make): ComponentState {
  const cd = obs.cds.get(c.name)
  const names = new Set(components.map((x) => x.name))
  if (!cd || !isPlatformDefinition(cd, names, obs.installer))
    return mk('disabled', c.feature ? `feature ${c.feature} is off` : '')
  if (cd.metadata.deletionTimestamp)
    return mk(
      'deleting',
      `its CompositionDefinition is being deleted (${oneLine(conditionOf(cd, 'Ready')) || 'core-provider removes its CRD and cdc'})`,
    )
  return mk('retiring', 'its feature is off and its Composition gone', { awaitsRender: true })
}

/** A component whose Composition exists: deleting, failing, draining, moving, or how far from running. */
function compositionStage(at: WithComposition): ComponentState {
  const { c, comp, obs, features, mk } = at
  const ready = conditionOf(comp, 'Ready')
  const synced = conditionOf(comp, 'Synced')
  if (comp.metadata.deletionTimestamp)
    return mk('deleting', oneLine(ready) || `finalizers: ${(comp.metadata.finalizers ?? []).join(', ') || 'none'}`)
  if (isStuckCreate(comp)) return mk('stuck', synced?.message ?? '')
  if (passingError(synced, obs.now))
    return mk('deploying', `its cdc retries after a passing API error: ${synced!.message}`)
  if (synced?.status === 'False' && synced.reason === 'ReconcileError')
    return mk('error', synced.message ?? 'ReconcileError')
  if (!isEnabled(c, features)) return mk('draining', 'its feature is off; removed once no dependent is left')
  // A version change is done only when the cdc reports the release at the pinned chart version.
  const cdVersion = (obs.cds.get(c.name)?.spec as { chart?: { version?: string } } | undefined)?.chart?.version
  const releasedAt = comp.status?.helmChartVersion as string | undefined
  if (cdVersion && cdVersion !== c.version)
    return mk('upgrading', `its CompositionDefinition is at ${cdVersion}, moving to ${c.version}`)
  if (releasedAt && releasedAt !== c.version)
    return mk('upgrading', `released at ${releasedAt}, moving to ${c.version}`)
  if (ready?.status === 'True') return runningStage(at)
  if (!ready) return mk('composition-created', 'waiting for its cdc')
  return mk('deploying', oneLine(ready))
}

/**
 * The cdc's Ready only says helm returned: the component runs when its workloads are available and, for the
 * portal, when its peers are wired into it and its own load balancer has an address.
 */
function runningStage(at: WithComposition): ComponentState {
  const { c, comp, obs, features, components, mk } = at
  if (!specApplied(comp)) return mk('deploying', 'its cdc has not applied the latest values yet')
  if (obs.workloads) {
    const lacking = notRunning(comp, obs.workloads, obs.pods ?? [])
    if (lacking.length) return mk('starting', lacking.join('; '))
  }
  if (c.consumer) {
    const wiring = consumerWiring(components, (p) => isEnabled(p, features), comp, obs.services, obs.compositions)
    if (wiring.pending.length)
      return mk('wiring', wiring.pending.map((g) => g.why).join('; '), {
        awaitsRender: wiring.pending.every((g) => g.renderable),
      })
    const own = c.expose ? serviceOf(c, obs.services, comp) : undefined
    const ingress = (own?.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer?.ingress ?? []
    if ((own?.spec as { type?: string } | undefined)?.type === 'LoadBalancer' && ingress.length === 0)
      return mk('wiring', `waiting for the LoadBalancer IP of its own Service ${own!.metadata.name}`)
  }
  return mk('ready', conditionOf(comp, 'Ready')?.message ?? '')
}

/** A component without a Composition: how far its definition and CRD are, and whether its deps run. */
function definitionStage(c: Component, obs: Observed, mk: Make): ComponentState {
  const cd = obs.cds.get(c.name)
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
