// The rules of the ordered drain and of what holds an object back, pure (operations/teardown.ts acts on them):
// which Compositions may go now (consumers first), in which waves, what a lost kind's stand-in CRD looks like,
// and who clears a finalizer.
import type { V1CustomResourceDefinition } from '@kubernetes/client-node'
import { type Component, dependentsOf } from './components.js'
import { COMPOSITION_GROUP } from './ownership.js'
import { cdcDeploymentOf } from './bundle.js'
import type { KObj } from './kobj.js'

/** Components whose Composition can go now: none of their dependents' Compositions is left. Pure. */
export function deletableNow(components: Component[], remaining: Set<string>): string[] {
  return [...remaining].filter((name) => !dependedOn(name, components, remaining))
}

/**
 * Whether a component in `present` depends on name, directly or through components not present: with authn
 * missing (pruned, not yet re-created), the portal still holds objects of the kinds authn-crd ships.
 */
function dependedOn(name: string, components: Component[], present: Set<string>, seen = new Set<string>()): boolean {
  return dependentsOf(name, components).some((d) => {
    if (seen.has(d.name)) return false
    seen.add(d.name)
    return present.has(d.name) || dependedOn(d.name, components, present, seen)
  })
}

/** Stages of a component the Installer is bringing (back): its definition or CRD on the way, or a render due. */
const COMING: ReadonlySet<string> = new Set([
  'pending-definition',
  'definition-registered',
  'crd-served',
  'waiting-deps',
])

/**
 * Components without a Composition that the Installer is about to re-create (a version move pruned them)
 * while a dependent of theirs still exists: that dependent's objects need them running to be finalized, so
 * uninstall lets the Installer bring them back before it pauses it. Pure.
 */
export function awaitingReCreation(
  components: Component[],
  stages: Map<string, string>,
  existing: Set<string>,
): string[] {
  return components
    .filter(
      (c) => !existing.has(c.name) && COMING.has(stages.get(c.name) ?? '') && dependedOn(c.name, components, existing),
    )
    .map((c) => c.name)
}

/** The drain order as waves, for --dry-run. Pure. */
export function drainWaves(components: Component[], existing: Set<string>): string[][] {
  const remaining = new Set(existing)
  const waves: string[][] = []
  while (remaining.size) {
    const wave = deletableNow(components, remaining)
    if (!wave.length) break
    waves.push(wave)
    for (const n of wave) remaining.delete(n)
  }
  return waves
}

/** Components whose release's RestDefinitions (finalized by that provider) must be gone before it is deleted. */
export const FINALIZES_REST_DEFINITIONS = 'oasgen-provider'

/** Label of the CRDs uninstall creates only so helm can uninstall a release listing a kind whose CRD is gone. */
export const STAND_IN_LABEL = 'krateo-installer/stand-in'
/** The namespace whose uninstall made a stand-in: another platform's uninstall never removes it. */
export const STAND_IN_NAMESPACE_LABEL = 'krateo-installer/namespace'

/**
 * Kinds of the composition group a release manifest lists whose CRD is gone altogether. Pure. (A kind whose
 * CRD lives on but no longer serves that version is not one: a stand-in of the same kind would conflict with it.)
 */
export function lostKinds(manifest: KObj[], crds: V1CustomResourceDefinition[]): { kind: string; version: string }[] {
  const known = new Set(crds.filter((c) => c.spec.group === COMPOSITION_GROUP).map((c) => c.spec.names.kind))
  const out = new Map<string, { kind: string; version: string }>()
  for (const o of manifest) {
    const [group, version] = (o.apiVersion ?? '').split('/')
    if (group !== COMPOSITION_GROUP || !version || !o.kind || known.has(o.kind)) continue
    out.set(`${o.kind}/${version}`, { kind: o.kind, version })
  }
  return [...out.values()]
}

/** A CRD that gives helm nothing but a REST mapping for a lost kind; its own plural, so it never takes the real one's name. Pure. */
export function standInCrd(kind: string, version: string, namespace: string): V1CustomResourceDefinition {
  const plural = `${kind.toLowerCase()}standins`
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${COMPOSITION_GROUP}`,
      labels: {
        'app.kubernetes.io/managed-by': 'krateo-installer',
        [STAND_IN_LABEL]: 'true',
        [STAND_IN_NAMESPACE_LABEL]: namespace,
      },
    },
    spec: {
      group: COMPOSITION_GROUP,
      scope: 'Namespaced',
      names: { kind, plural, singular: `${kind.toLowerCase()}standin`, listKind: `${kind}List` },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  }
}

/** How long a finalizer's controller must be down, with no change to the object, before it counts as stuck. */
export const STUCK_AFTER_MS = 20_000

/** The webhook named in an API refusal ("failed calling webhook ..."), if that is why a write failed. */
export function refusingWebhook(err: unknown): string | null {
  const text = `${(err as { body?: unknown })?.body ?? ''} ${(err as Error)?.message ?? ''}`
  return /failed calling webhook \\?"([^"\\]+)\\?"/.exec(text)?.[1] ?? null
}

/** A controller that clears a finalizer, as a Deployment we can look at. */
export interface FinalizerController {
  finalizer: string
  deployment: string | null
  namespace: string
  what: string
}

/** The finalizer a Composition's cdc clears once its helm release is uninstalled. */
export const COMPOSITION_FINALIZER = 'composition.krateo.io/finalizer'

/** Who clears a finalizer of one of our objects: the cdc of its definition (real Deployment name), or our core-provider. Pure. */
export function finalizerController(
  finalizer: string,
  cd: KObj | undefined,
  namespace: string,
  coreProviders: string[],
): FinalizerController {
  if (finalizer === COMPOSITION_FINALIZER) {
    const deployment = cdcDeploymentOf(cd)
    return {
      finalizer,
      deployment,
      namespace,
      what: deployment ? `the cdc Deployment ${deployment}` : 'the cdc of its kind',
    }
  }
  if (
    finalizer === 'finalizer.managedresource.krateo.io' ||
    finalizer === 'composition.krateo.io/still-exist-compositions-finalizer'
  ) {
    const deployment = coreProviders[0] ?? null
    return {
      finalizer,
      deployment,
      namespace,
      what: deployment ? `core-provider (Deployment ${deployment})` : 'core-provider',
    }
  }
  return { finalizer, deployment: null, namespace, what: `the controller of ${finalizer.split('/')[0]}` }
}

/** One look at an object a teardown waits to see gone, as its wait measured it. */
export interface GoneLook {
  /** Time since its resourceVersion last changed. */
  unchangedForMs: number
  /** Time since every controller that clears its finalizers was seen not running; null while one runs. */
  allDownForMs: number | null
  /** It carries a deletionTimestamp. */
  deleting: boolean
  finalizers: string[]
  controllers: FinalizerController[]
  /** The controllers among them seen not running. */
  down: FinalizerController[]
  pastDeadline: boolean
}

export type GoneVerdict =
  | { verdict: 'wait' }
  | { verdict: 'timeout' }
  /**
   * targets: the finalizers --force may remove (only those of controllers down; at the deadline, all but
   * Kubernetes' own); kept: Kubernetes' own, which --force never removes.
   */
  | { verdict: 'stuck'; targets: FinalizerController[]; who: string; kept: string[] }

/**
 * Kubernetes' own finalizers (a claim still mounted, a foreground deletion, a CRD's instances being removed): they
 * guard data or other objects, and their controllers always run, so forcing them is never the cure (review N12).
 */
export function isKubernetesFinalizer(finalizer: string): boolean {
  return (
    finalizer === 'foregroundDeletion' ||
    finalizer === 'orphan' ||
    /^([a-z0-9-]+\.)*(kubernetes\.io|k8s\.io)(\/|$)/.test(finalizer)
  )
}

/**
 * Whether a wait for an object to go goes on, times out or finds it stuck. Stuck means unchanged for
 * STUCK_AFTER_MS while being deleted with finalizers left, and either past the deadline or with every controller
 * that clears them down for that long: something merely slow (its controller runs) is never stuck before the
 * deadline, and what changed lately or is not being deleted is a timeout, not stuck.
 */
export function goneVerdict(look: GoneLook): GoneVerdict {
  const still = look.unchangedForMs > STUCK_AFTER_MS && look.deleting && look.finalizers.length > 0
  if (look.pastDeadline && !still) return { verdict: 'timeout' }
  const controllersDown = look.allDownForMs !== null && look.allDownForMs > STUCK_AFTER_MS
  if (!still || !(look.pastDeadline || controllersDown)) return { verdict: 'wait' }
  const targets = (look.pastDeadline ? look.controllers : look.down).filter((t) => !isKubernetesFinalizer(t.finalizer))
  const who = targets
    .map((t) => `${t.finalizer} (cleared by ${t.what}${look.down.includes(t) ? ', which is not running' : ''})`)
    .join(', ')
  return { verdict: 'stuck', targets, who, kept: look.finalizers.filter(isKubernetesFinalizer) }
}

/** Whether every controller that clears an object's finalizers is down (a finalizer of an unknown controller never is). */
export function allControllersDown(
  finalizers: string[],
  controllers: FinalizerController[],
  down: FinalizerController[],
) {
  return finalizers.length > 0 && down.length === controllers.length
}
