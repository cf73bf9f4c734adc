// The two engine generations of contract section 0, as data. The simulated controllers read a profile and
// never test the generation's name, so a third generation is a third profile, not a new branch in each of them.
// Each field names the real source it mirrors (see sandbox/README.md, "Engine generations").

export type GenerationName = 'S' | 'N'

export interface GenerationProfile {
  name: GenerationName
  /** One line for `sandbox facts` and logs. */
  describe: string
  /**
   * cdc resync and core-provider poll, seconds. S: COMPOSITION_CONTROLLER_RESYNC_INTERVAL default 3m
   * (composition-dynamic-controller main.go); N: 60s set by the newer installer chart.
   */
  resyncSeconds: number
  /**
   * Who stamps krateo.io/composition-version on CREATE. S: core-provider's MutatingWebhookConfiguration
   * (failurePolicy Fail: every composition write is refused while core-provider is down). N: a
   * MutatingAdmissionPolicy evaluated inside kube-apiserver (writes work with core-provider down).
   */
  versionStamp: 'webhook' | 'policy'
  /** Writes whose version label the stamp sets: S on CREATE only; N's policy on every write (requestKind.version). */
  stampOn: ('CREATE' | 'UPDATE')[]
  /** S runs helm upgrade on every observe ("Composition is up-to-date"); N only when values or chart changed. */
  upgradeOnEveryObserve: boolean
  /** S: core-provider holds composition.krateo.io/still-exist-compositions-finalizer on a CD while Compositions of it exist. */
  stillExistFinalizer: boolean
  /** N: served CRD versions that no CD and no Composition label references are pruned (served: false). */
  pruneStaleVersions: boolean
  /**
   * A create whose result was lost (pending mark newer than any result). S (unstructured-runtime v0.3.x): blocked
   * until someone removes the mark. N (runtime fork): observe takes over after this grace, seconds.
   */
  lostCreateGraceSeconds: number | null
  /**
   * A helm release left pending-* by a cdc cut short. S: the next observe rolls it back. N: Ready=False
   * PendingHelmOperation and no work for pendingStandDownSeconds, then rollback.
   */
  pendingRelease: 'rollback' | 'stand-down'
  /** Lowest Kubernetes minor the generation runs on (N needs MutatingAdmissionPolicy v1). */
  minKubernetesMinor: number
  /**
   * How core-provider moves each Composition's version label on a version bump. S (0.26.1
   * updateCompositionsVersion): one update of each as listed; a conflict ends the move, any other error (a
   * Composition deleted since the list: 404) fails the observe. N (getters.UpdateCompositionsVersion): each one
   * read again, skipped when gone or already moved, a conflict retried.
   */
  relabel: 'once-as-listed' | 'per-object-retry'
}

export const GENERATIONS: Record<GenerationName, GenerationProfile> = {
  S: {
    name: 'S',
    describe: 'Gen S (seed era: core-provider 0.26.x, cdc 0.20.x)',
    resyncSeconds: 180,
    versionStamp: 'webhook',
    stampOn: ['CREATE'],
    upgradeOnEveryObserve: true,
    stillExistFinalizer: true,
    pruneStaleVersions: false,
    lostCreateGraceSeconds: null,
    pendingRelease: 'rollback',
    minKubernetesMinor: 30,
    relabel: 'once-as-listed',
  },
  N: {
    name: 'N',
    describe: 'Gen N (core-provider 2.x monorepo, cdc 1.x)',
    resyncSeconds: 60,
    versionStamp: 'policy',
    stampOn: ['CREATE', 'UPDATE'],
    upgradeOnEveryObserve: false,
    stillExistFinalizer: false,
    pruneStaleVersions: true,
    lostCreateGraceSeconds: 120,
    pendingRelease: 'stand-down',
    minKubernetesMinor: 36,
    relabel: 'per-object-retry',
  },
}

export function generationProfile(name: string | undefined): GenerationProfile {
  return GENERATIONS[(name ?? 'S').toUpperCase() as GenerationName] ?? GENERATIONS.S
}

export function isGenerationName(name: string): name is GenerationName {
  return name.toUpperCase() in GENERATIONS
}
