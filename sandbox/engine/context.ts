// What every simulated controller shares: the API client, the caches, which controllers are alive
// (a controller works only while its Deployment has an available replica, as a real pod would), the
// engine settings and fault knobs, and the work queue.
import { Informer, Rest, type KObject } from './rest.js'
import { HelmRunner } from './helm.js'
import { WorkQueue } from './queue.js'
import { type GenerationName, type GenerationProfile, generationProfile } from './generation.js'

export const ENGINE_CONFIG = { namespace: 'kube-system', name: 'krateo-sandbox-engine' }

/** Engine settings and fault knobs, read live from ConfigMap kube-system/krateo-sandbox-engine (key config.json). */
export interface EngineSettings {
  /** Which engine generation the controllers behave as (contract section 0); default S. */
  generation: GenerationName
  /** cdc resync and core-provider poll interval; default: the generation's (180 s S, 60 s N). */
  resyncSeconds?: number
  /**
   * Composition plural (e.g. `installers`) -> its cdc's resync, seconds; the others keep resyncSeconds. Each real
   * cdc is its own pod with its own resync (COMPOSITION_CONTROLLER_RESYNC_INTERVAL), so a test can make one render
   * often without every other cdc running helm as often.
   */
  cdcResyncSeconds?: Record<string, number>
  /** N: seconds a cdc stands down on a release left pending-* before rolling it back (real: 5 min). */
  pendingStandDownSeconds: number
  /** N: seconds before observe takes over a create whose result was lost (real: 2 min). */
  lostCreateGraceSeconds?: number
  /** CompositionDefinition names whose chart pull fails (registry unreachable), on create and on delete. */
  chartPullFails: string[]
  /** Seconds before a LoadBalancer Service gets its ingress (cloud load balancers take a while). */
  loadBalancerDelaySeconds: number
  /** Load balancers get a hostname and no IP (as on EKS). */
  loadBalancerHostnameOnly: boolean
  /** Chart hook Jobs (by name, e.g. installer-ordered-teardown) that fail instead of doing their steps. */
  hookFails: string[]
  /** Seconds the chart's teardown hooks sleep between their checks (the scripts' `sleep 5`); default 5. */
  hookPollSeconds?: number
  /** component (release) name -> seconds its new pods take to start (a slow image pull). Pod-level only. */
  readinessDelaySeconds: Record<string, number>
  /** component (release) name -> message: its pods crash-loop with it (the cdc still says Ready). */
  neverReady: Record<string, string>
  /** CompositionDefinition names whose next create loses the race (pending annotation left behind). */
  loseCreateRace: string[]
  /** Composition names whose cdc loses its first create race the same way (the Installer CR included). */
  cdcLoseCreateRace: string[]
  /** composition name -> seconds its deletion takes before helm uninstall runs. */
  slowDeletionSeconds: Record<string, number>
  /** composition name -> seconds a cdc's render takes before helm runs (chart pull, chart-inspector): work in flight. */
  renderSeconds?: Record<string, number>
  /**
   * Kinds chart-inspector misses once (0.2.0's stale REST mapper): the first render whose chart has one fails with
   * helm's "no matches for kind", as when chart-inspector read discovery between that kind's CRD add and the CRD
   * being served; from then it misses the kind until the next CRD add, delete or spec change resets its mapper.
   */
  chartInspectorMisses?: string[]
  /**
   * Seconds the old pod of a rolled-out cdc keeps working beside the new one (no leader election: the
   * Deployment's surge pod starts before the old one is stopped); 0 (default) cuts it at once.
   */
  cdcRolloutOverlapSeconds?: number
}

export const DEFAULT_SETTINGS: EngineSettings = {
  generation: 'S',
  pendingStandDownSeconds: 300,
  chartPullFails: [],
  loadBalancerDelaySeconds: 0,
  loadBalancerHostnameOnly: false,
  hookFails: [],
  readinessDelaySeconds: {},
  neverReady: {},
  loseCreateRace: [],
  cdcLoseCreateRace: [],
  slowDeletionSeconds: {},
}

/** Settings with the generation's defaults filled in. */
export type EffectiveSettings = Omit<EngineSettings, 'lostCreateGraceSeconds'> & {
  resyncSeconds: number
  profile: GenerationProfile
  lostCreateGraceSeconds: number | null
}

export type Log = (message: string) => void

export class EngineContext {
  readonly deployments: Informer
  readonly crds: Informer
  private settingsCM: Informer
  readonly queue: WorkQueue
  /** The kinds chart-inspector's REST mapper misses now (chartInspectorMisses). */
  readonly inspectorMissed = new Set<string>()
  /** chartInspectorMisses already taken, per settings version: each knob setting misses a kind once. */
  private missesTaken = new Set<string>()
  private listeners: ((d: KObject, old?: KObject) => void)[] = []

  constructor(
    readonly rest: Rest,
    readonly helm: HelmRunner,
    readonly log: Log,
  ) {
    // Every real controller is its own pod with its own workers; one shared queue must not be the bottleneck.
    this.queue = new WorkQueue(8, (key, err) => log(`work ${key} failed: ${(err as Error).message}`))
    this.deployments = new Informer(rest, '/apis/apps/v1/deployments', (_ev, d, old) =>
      this.listeners.forEach((l) => l(d, old)),
    )
    // chart-inspector 0.2.0 resets its REST mapper on a CRD add, delete or spec change, never on status changes.
    this.crds = new Informer(rest, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', (ev, crd, old) => {
      if (ev === 'update' && JSON.stringify(crd.spec) === JSON.stringify(old?.spec)) return
      if (this.inspectorMissed.size) {
        log(
          `chart-inspector: ${ev} of CRD ${crd.metadata.name}: its REST mapper reset, it maps ${[...this.inspectorMissed].join(', ')} again`,
        )
        this.inspectorMissed.clear()
      }
    })
    this.settingsCM = new Informer(
      rest,
      `/api/v1/namespaces/${ENGINE_CONFIG.namespace}/configmaps?fieldSelector=metadata.name%3D${ENGINE_CONFIG.name}`,
      () => undefined,
    )
  }

  start(): void {
    this.deployments.start()
    this.crds.start()
    this.settingsCM.start()
  }

  /** Runs fn every intervalSeconds(), re-reading the interval each second so a settings change applies at once. */
  every(intervalSeconds: () => number, fn: () => void): void {
    let last = Date.now()
    setInterval(() => {
      if (Date.now() - last >= intervalSeconds() * 1000) {
        last = Date.now()
        fn()
      }
    }, 1000)
  }

  onDeployment(listener: (d: KObject, old?: KObject) => void): void {
    this.listeners.push(listener)
  }

  settings(): EffectiveSettings {
    const cm = this.settingsCM.items.get(`${ENGINE_CONFIG.namespace}/${ENGINE_CONFIG.name}`) as
      { data?: Record<string, string> } | undefined
    let set: EngineSettings = DEFAULT_SETTINGS
    try {
      set = { ...DEFAULT_SETTINGS, ...(JSON.parse(cm?.data?.['config.json'] ?? '{}') as Partial<EngineSettings>) }
    } catch {
      /* a broken ConfigMap means defaults */
    }
    const profile = generationProfile(set.generation)
    return {
      ...set,
      profile,
      resyncSeconds: set.resyncSeconds ?? profile.resyncSeconds,
      lostCreateGraceSeconds:
        profile.lostCreateGraceSeconds === null ? null : (set.lostCreateGraceSeconds ?? profile.lostCreateGraceSeconds),
    }
  }

  /** Whether chart-inspector cannot map this kind now; the knob's first ask for a kind makes it so. */
  inspectorMisses(kind: string): boolean {
    if (this.inspectorMissed.has(kind)) return true
    if (!(this.settings().chartInspectorMisses ?? []).includes(kind)) return false
    const cm = this.settingsCM.items.get(`${ENGINE_CONFIG.namespace}/${ENGINE_CONFIG.name}`)
    const key = `${cm?.metadata.resourceVersion}/${kind}`
    if (this.missesTaken.has(key)) return false
    this.missesTaken.add(key)
    this.inspectorMissed.add(kind)
    return true
  }

  /** The generation profile the controllers follow now. */
  profile(): GenerationProfile {
    return this.settings().profile
  }

  static available(d: KObject | undefined): boolean {
    if (!d || d.metadata.deletionTimestamp) return false
    const status = d.status as { availableReplicas?: number } | undefined
    return (status?.availableReplicas ?? 0) > 0
  }

  deployment(namespace: string, name: string): KObject | undefined {
    return this.deployments.items.get(`${namespace}/${name}`)
  }

  coreProvider(): KObject | undefined {
    for (const d of this.deployments.items.values()) {
      if (d.metadata.labels?.['app.kubernetes.io/name'] === 'core-provider' && EngineContext.available(d)) return d
    }
    return undefined
  }

  /** A component's workload runs (its release's Deployment is available). */
  componentAlive(namespace: string, release: string): boolean {
    return EngineContext.available(this.deployment(namespace, release))
  }
}
