// The objects the platform model reads, as observed: their shapes, the annotations this CLI and the engine
// set on them, and the few facts read off one object (a condition, Ready, a lost create, a served version, an
// API error the engine is still retrying).

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

/** Set on the Installer CR while `upgrade` holds it paused; its value is the target installer version. */
export const UPGRADE_ANNOTATION = 'krateo-installer/upgrade-to'

/**
 * Written with UPGRADE_ANNOTATION: the installer version the upgrade started from. The installer's own
 * definition moves mid-upgrade, so a resumed run reads where it came from here, not from that definition.
 */
export const UPGRADE_FROM_ANNOTATION = 'krateo-installer/upgrade-from'

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

/** A custom collection's path: `/apis/<group>/<version>[/namespaces/<ns>]/<plural>`; undefined for core kinds. */
export function customCollection(path: string): { group: string; version: string; plural: string } | undefined {
  const m = /^\/apis\/([^/]+\.[^/]+)\/([^/]+)\/(?:namespaces\/[^/]+\/)?([^/]+)$/.exec(path)
  return m ? { group: m[1]!, version: m[2]!, plural: m[3]! } : undefined
}

/**
 * Where an object of a collection that answered 404 is read now, from its CRD (`<plural>.<group>`, null when
 * that is gone): 'gone' when the CRD is (its objects went with it), the same path at a served version (the
 * storage version first) when its version is no longer served, 'unreadable' when none is. Pure.
 */
export function servedCollection(path: string, crd: KObj | null): string | 'gone' | 'unreadable' {
  const c = customCollection(path)
  if (!c) return 'unreadable'
  if (!crd) return 'gone'
  const versions = (crd.spec?.versions as { name: string; served: boolean; storage?: boolean }[] | undefined) ?? []
  const served = versions.filter((v) => v.served)
  const pick = served.find((v) => v.name === c.version) ?? served.find((v) => v.storage) ?? served[0]
  if (!pick) return 'unreadable'
  return path.replace(`/apis/${c.group}/${c.version}/`, `/apis/${c.group}/${pick.name}/`)
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

export function oneLine(c: Condition | null): string {
  if (!c) return ''
  return [c.reason, c.message].filter(Boolean).join(': ')
}
