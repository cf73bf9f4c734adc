// Whether a component runs, beyond what its cdc says. The cdc's Ready=True only means helm returned
// (contract section 3); a component runs when every workload its release lists in status.managed is
// available (Deployments, StatefulSets, DaemonSets rolled out and available, Jobs complete). When one is not,
// its pods say why in words a user acts on: image pull, crash loop with the container's last message,
// unschedulable. Pure: observe.ts and follow.ts collect the objects.
import type { KObj } from './kobj.js'

/** status.managed entry as the cdc writes it. */
export interface ManagedRef {
  apiVersion?: string
  resource?: string
  name?: string
  namespace?: string
}

export const WORKLOAD_RESOURCES = ['deployments', 'statefulsets', 'daemonsets', 'jobs'] as const
export const KIND_OF: Record<(typeof WORKLOAD_RESOURCES)[number], string> = {
  deployments: 'Deployment',
  statefulsets: 'StatefulSet',
  daemonsets: 'DaemonSet',
  jobs: 'Job',
}

/** The workloads a Composition's release lists, as "Kind namespace/name" keys. */
export function managedWorkloads(composition: KObj | undefined): { kind: string; namespace: string; name: string }[] {
  const managed = (composition?.status?.managed as ManagedRef[] | undefined) ?? []
  return managed
    .filter((m) => m.resource && m.resource in KIND_OF && m.name && m.namespace)
    .map((m) => ({ kind: KIND_OF[m.resource as keyof typeof KIND_OF], namespace: m.namespace!, name: m.name! }))
}

/** The namespaces whose workloads and pods must be read to judge the compositions. */
export function workloadNamespaces(compositions: Iterable<KObj>, platformNamespace: string): string[] {
  const out = new Set([platformNamespace])
  for (const c of compositions) for (const w of managedWorkloads(c)) out.add(w.namespace)
  return [...out]
}

interface WorkloadStatus {
  replicas?: number
  readyReplicas?: number
  availableReplicas?: number
  updatedReplicas?: number
  observedGeneration?: number
  desiredNumberScheduled?: number
  numberAvailable?: number
  updatedNumberScheduled?: number
  currentRevision?: string
  updateRevision?: string
  succeeded?: number
  failed?: number
  conditions?: { type: string; status: string; message?: string }[]
}

/** Null when the workload is available (rolled out to its current spec), else what it still lacks. */
export function workloadShortfall(kind: string, obj: KObj): string | null {
  const s = (obj.status ?? {}) as WorkloadStatus
  const spec = (obj.spec ?? {}) as { replicas?: number; completions?: number }
  if (kind === 'Job') {
    if ((s.conditions ?? []).some((c) => c.type === 'Failed' && c.status === 'True'))
      return `failed${(s.conditions ?? []).find((c) => c.type === 'Failed')?.message ? `: ${(s.conditions ?? []).find((c) => c.type === 'Failed')!.message}` : ''}`
    return (s.succeeded ?? 0) >= (spec.completions ?? 1) ? null : 'not complete'
  }
  // A new spec not yet seen by its controller is not rolled out, whatever the counts say.
  if ((s.observedGeneration ?? 0) < (obj.metadata.generation ?? 0)) return 'rollout not started'
  if (kind === 'DaemonSet') {
    const want = s.desiredNumberScheduled ?? 0
    if (want === 0) return 'no node runs it yet'
    if ((s.updatedNumberScheduled ?? 0) < want) return `${s.updatedNumberScheduled ?? 0}/${want} updated`
    return (s.numberAvailable ?? 0) >= want ? null : `${s.numberAvailable ?? 0}/${want} available`
  }
  const want = spec.replicas ?? 1
  if (want === 0) return null
  // As `kubectl rollout status`: every replica updated, no old one left, and the updated ones available
  // (during a surge the old pod keeps availableReplicas up while the new one has not started).
  if ((s.updatedReplicas ?? 0) < want) return `${s.updatedReplicas ?? 0}/${want} updated`
  if (kind === 'StatefulSet') {
    if (s.currentRevision && s.updateRevision && s.currentRevision !== s.updateRevision) return 'rolling out'
    return (s.readyReplicas ?? 0) >= want ? null : `${s.readyReplicas ?? 0}/${want} ready`
  }
  if ((s.replicas ?? 0) > (s.updatedReplicas ?? 0))
    return `${(s.replicas ?? 0) - (s.updatedReplicas ?? 0)} old replica(s) not replaced yet`
  return (s.availableReplicas ?? 0) >= want ? null : `${s.availableReplicas ?? 0}/${want} available`
}

interface PodStatus {
  phase?: string
  conditions?: { type: string; status: string; reason?: string; message?: string }[]
  containerStatuses?: {
    name: string
    ready?: boolean
    restartCount?: number
    state?: { waiting?: { reason?: string; message?: string } }
    lastState?: { terminated?: { reason?: string; message?: string; exitCode?: number } }
  }[]
}

/** Why a pod is not ready, in one phrase; null when it is ready or finished. */
export function podTrouble(pod: KObj): string | null {
  const s = (pod.status ?? {}) as PodStatus
  if (s.phase === 'Succeeded') return null
  if ((s.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')) return null
  const unschedulable = (s.conditions ?? []).find((c) => c.type === 'PodScheduled' && c.status === 'False')
  if (unschedulable) return `unschedulable${unschedulable.message ? `: ${unschedulable.message}` : ''}`
  for (const c of s.containerStatuses ?? []) {
    const waiting = c.state?.waiting
    if (!waiting?.reason) continue
    if (waiting.reason === 'CrashLoopBackOff') {
      const last = c.lastState?.terminated
      const why = last?.message || last?.reason || (last?.exitCode !== undefined ? `exit code ${last.exitCode}` : '')
      return `container ${c.name} is crash-looping (${c.restartCount ?? 0} restarts)${why ? `: ${why}` : ''}`
    }
    if (/ImagePull|ErrImage/.test(waiting.reason))
      return `container ${c.name} cannot pull its image (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''})`
    if (waiting.reason === 'ContainerCreating') return `container ${c.name} is starting (pulling its image)`
    return `container ${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`
  }
  if (s.phase === 'Failed') return 'failed'
  return s.phase === 'Pending' || !s.phase ? 'pending' : 'not ready'
}

/** The pods of a workload: owned by it, or by one of its ReplicaSets (named <deployment>-<hash>). */
function podsOf(kind: string, name: string, namespace: string, pods: KObj[]): KObj[] {
  return pods.filter(
    (p) =>
      p.metadata.namespace === namespace &&
      ((p.metadata as { ownerReferences?: { kind: string; name: string }[] }).ownerReferences ?? []).some(
        (o) =>
          (o.kind === kind && o.name === name) ||
          (kind === 'Deployment' &&
            o.kind === 'ReplicaSet' &&
            o.name.startsWith(`${name}-`) &&
            !o.name.slice(name.length + 1).includes('-')),
      ),
  )
}

/**
 * What keeps a Ready composition from running: one line per workload that is not available (with its pods'
 * trouble), [] when everything runs. A workload listed but not seen yet counts as not running.
 */
export function notRunning(composition: KObj | undefined, workloads: KObj[], pods: KObj[]): string[] {
  const out: string[] = []
  for (const w of managedWorkloads(composition)) {
    const obj = workloads.find(
      (o) => o.kind === w.kind && o.metadata.name === w.name && o.metadata.namespace === w.namespace,
    )
    if (!obj) {
      out.push(`${w.kind} ${w.name} not found`)
      continue
    }
    const short = workloadShortfall(w.kind, obj)
    if (!short) continue
    const troubles = [
      ...new Set(
        podsOf(w.kind, w.name, w.namespace, pods)
          .map(podTrouble)
          .filter((t): t is string => !!t),
      ),
    ]
    out.push(`${w.kind} ${w.name}: ${short}${troubles.length ? `; ${troubles.slice(0, 2).join('; ')}` : ''}`)
  }
  return out
}

interface ManagedFieldsEntry {
  operation?: string
  subresource?: string
  time?: string
  fieldsV1?: { 'f:spec'?: unknown }
}

/**
 * Whether the cdc has reported since the Composition's values last changed: the API server's managedFields
 * time the last spec write and the last status write. A consumer whose config was just wired, or a component
 * whose values just moved, is not running its new values until its cdc has run helm with them (and reported).
 * True when the object carries no managedFields to tell.
 */
export function specApplied(composition: KObj | undefined): boolean {
  const fields = (composition?.metadata as { managedFields?: ManagedFieldsEntry[] } | undefined)?.managedFields ?? []
  const latest = (entries: ManagedFieldsEntry[]) => Math.max(0, ...entries.map((e) => Date.parse(e.time ?? '') || 0))
  const spec = latest(fields.filter((e) => !e.subresource && e.fieldsV1?.['f:spec'] !== undefined))
  const status = latest(fields.filter((e) => e.subresource === 'status'))
  return spec === 0 || status === 0 || status >= spec
}
