// Following the self-reconcile from watches: the namespace's CompositionDefinitions and Services, the
// composition CRDs, the Installer CR and one watch per component kind once its CRD serves. Every change
// re-derives the platform state with the same pure rules as `status`.
import { CoreV1Api, type Watch } from '@kubernetes/client-node'
import type { Cluster } from '../cluster/cluster.js'
import { COMPOSITION_GROUP, CD_GROUP, CD_VERSION, SELF_CR_CONFIGMAP, WORKLOAD_LISTS } from '../cluster/observe.js'
import { workloadNamespaces } from '../platform/workloads.js'
import { type KObj } from '../platform/kobj.js'
import { type Observed, crdServes } from '../platform/objects.js'
import { type InstallerSpec, dashed } from '../platform/components.js'
import { safeComponents } from '../platform/ownership.js'
import { type Lister, WatchedCollection, newWatch } from '../cluster/watch.js'
import { getPath } from '../cluster/cluster.js'

export class PlatformWatch {
  private watch: Watch
  private list: Lister
  private cds: WatchedCollection
  private crds: WatchedCollection
  private services: WatchedCollection
  private selfCR: WatchedCollection
  private installer: WatchedCollection | undefined
  private kinds = new Map<string, WatchedCollection>()
  /** Workload and pod collections per namespace (the platform's, and any a release puts workloads in). */
  private workloadWatches = new Map<string, { kind: string; w: WatchedCollection }[]>()
  private retiring = new Set<WatchedCollection>()
  private stopped = false
  private startedAt = 0
  private listeners: (() => void)[] = []
  private nodeIP: string | undefined
  private pending: NodeJS.Timeout | undefined

  constructor(
    private cluster: Cluster,
    readonly namespace: string,
  ) {
    this.watch = newWatch(cluster.kc)
    this.list = (path) => getPath(cluster, path)
    const changed = () => this.changed()
    this.cds = new WatchedCollection(
      this.watch,
      this.list,
      `/apis/${CD_GROUP}/${CD_VERSION}/namespaces/${namespace}/compositiondefinitions`,
      changed,
    )
    this.crds = new WatchedCollection(
      this.watch,
      this.list,
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      changed,
    )
    this.services = new WatchedCollection(this.watch, this.list, `/api/v1/namespaces/${namespace}/services`, changed)
    this.selfCR = new WatchedCollection(
      this.watch,
      this.list,
      `/api/v1/namespaces/${namespace}/configmaps`,
      changed,
      `metadata.name=${SELF_CR_CONFIGMAP}`,
    )
  }

  start(): this {
    this.startedAt = Date.now()
    for (const w of [this.cds, this.crds, this.services, this.selfCR]) w.start()
    this.watchWorkloads(this.namespace)
    return this
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.pending)
    for (const w of [
      this.cds,
      this.crds,
      this.services,
      this.selfCR,
      this.installer,
      ...this.kinds.values(),
      ...this.retiring,
      ...this.workloadCollections(),
    ])
      w?.stop()
  }

  private workloadCollections(): WatchedCollection[] {
    return [...this.workloadWatches.values()].flat().map((x) => x.w)
  }

  private watchWorkloads(ns: string): void {
    if (this.workloadWatches.has(ns) || this.stopped) return
    this.workloadWatches.set(
      ns,
      WORKLOAD_LISTS.map((l) => ({
        kind: l.kind,
        w: new WatchedCollection(this.watch, this.list, l.path(ns), () => this.changed()).start(),
      })),
    )
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  /** Coalesces bursts of events into one re-derivation. */
  private changed(): void {
    if (this.pending || this.stopped) return
    this.pending = setTimeout(() => {
      this.pending = undefined
      this.ensureWatches()
      for (const l of this.listeners) l()
    }, 100)
  }

  private crdMap(): Map<string, KObj> {
    const out = new Map<string, KObj>()
    for (const crd of this.crds.items.values())
      if ((crd.spec as { group?: string }).group === COMPOSITION_GROUP) out.set(crd.metadata.name, crd)
    return out
  }

  private cdMap(): Map<string, KObj> {
    return new Map([...this.cds.items.values()].map((cd) => [cd.metadata.name, cd]))
  }

  private watchPath(version: string, resource: string): string {
    return `/apis/${COMPOSITION_GROUP}/${version}/namespaces/${this.namespace}/${resource}`
  }

  /** Opens a watch per composition kind as soon as its CRD serves the pinned version (closing stale ones). */
  private ensureWatches(): void {
    if (this.stopped) return
    const crds = this.crdMap()
    const cds = this.cdMap()
    const installerCrd = crds.get(`installers.${COMPOSITION_GROUP}`)
    const installerVersion =
      (cds.get('installer')?.status?.apiVersion as string | undefined)?.split('/')[1] ??
      (installerCrd?.spec?.versions as { name: string; served: boolean }[] | undefined)?.filter((v) => v.served).pop()
        ?.name
    if (installerVersion && crdServes(installerCrd, installerVersion)) {
      const path = this.watchPath(installerVersion, 'installers')
      if (this.installer?.path !== path) {
        this.installer?.stop()
        this.installer = new WatchedCollection(
          this.watch,
          this.list,
          path,
          () => this.changed(),
          'metadata.name=installer',
        ).start()
      }
    }
    const wanted = new Set<string>()
    for (const c of this.components()) {
      const resource = cds.get(c.name)?.status?.resource as string | undefined
      const crd = resource ? crds.get(`${resource}.${COMPOSITION_GROUP}`) : undefined
      if (!resource || !crd) continue
      const version = crdServes(crd, dashed(c.version))
        ? dashed(c.version)
        : (crd.spec?.versions as { name: string; served: boolean }[]).find((v) => v.served)?.name
      if (!version) continue
      const path = this.watchPath(version, resource)
      wanted.add(path)
      if (!this.kinds.has(path))
        this.kinds.set(path, new WatchedCollection(this.watch, this.list, path, () => this.changed()).start())
    }
    for (const [path, w] of this.kinds) {
      if (!wanted.has(path)) {
        // A version change reopens a kind's watch under the new version: the old one keeps answering
        // until the new one has replayed the objects, so components do not flicker out of sight.
        this.kinds.delete(path)
        this.retiring.add(w)
        setTimeout(() => {
          w.stop()
          this.retiring.delete(w)
          this.changed()
        }, 3000).unref()
      }
    }
  }

  private collections(): WatchedCollection[] {
    return [
      this.cds,
      this.crds,
      this.services,
      this.selfCR,
      this.installer,
      ...this.kinds.values(),
      ...this.workloadCollections(),
    ].filter((w): w is WatchedCollection => !!w)
  }

  /** How long the API server has not been reachable from the watches, in ms; 0 while it answers. */
  unreachableFor(now = Date.now()): number {
    const since = this.collections()
      .map((w) => w.unreachableSince)
      .filter((t): t is number => t !== null)
    return since.length ? now - Math.min(...since) : 0
  }

  /** Every open collection has been listed once: a snapshot now shows the cluster, not a half-replayed view. */
  primed(): boolean {
    if (Date.now() - this.startedAt > 15_000) return true // a list that keeps failing must not hide progress for good
    // Open the kinds the CRDs just listed call for now, not after the change debounce: until they have
    // listed too, the view is incomplete.
    this.ensureWatches()
    return this.collections().every((w) => w.synced)
  }

  installerCR(): KObj | null {
    return this.installer?.items.get(`${this.namespace}/installer`) ?? null
  }

  private components() {
    const installer = this.installerCR()
    // From watch events and timers: a malformed runtime edit of spec.components must not throw there.
    return installer ? safeComponents((installer.spec ?? {}) as InstallerSpec) : []
  }

  async ensureNodeIP(): Promise<void> {
    if (this.nodeIP) return
    const nodes = await this.cluster.kc.makeApiClient(CoreV1Api).listNode()
    this.nodeIP = nodes.items[0]?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address
  }

  snapshot(): Observed {
    const compositions = new Map<string, KObj>()
    for (const w of [...this.retiring, ...this.kinds.values()])
      for (const obj of w.items.values()) compositions.set(obj.metadata.name, obj)
    const services = [...this.services.items.values()]
    if (!this.nodeIP && services.some((s) => (s.spec as { type?: string }).type === 'NodePort'))
      void this.ensureNodeIP()
        .then(() => this.changed())
        .catch(() => undefined)
    const cdCrd = [...this.crds.items.keys()].includes(`compositiondefinitions.${CD_GROUP}`)
    for (const ns of workloadNamespaces(compositions.values(), this.namespace)) this.watchWorkloads(ns)
    const workloads: KObj[] = []
    const pods: KObj[] = []
    for (const { kind, w } of [...this.workloadWatches.values()].flat()) {
      for (const obj of w.items.values()) (kind === 'Pod' ? pods : workloads).push({ ...obj, kind })
    }
    // A collection that keeps failing is named, so the view says why it is missing something (a server that
    // cannot be reached at all is said once, by unreachableFor).
    const readErrors = this.collections()
      .filter((w) => !!w.failure && w.failures >= 2 && w.unreachableSince === null)
      .map((w) => `cannot read ${w.path}: ${w.failure}`)
    return {
      namespace: this.namespace,
      cdCrd,
      bootstrapped: this.selfCR.items.size > 0,
      installer: this.installerCR(),
      cds: this.cdMap(),
      crds: this.crdMap(),
      compositions,
      services,
      workloads,
      pods,
      nodeIP: this.nodeIP,
      now: Date.now(),
      ...(readErrors.length ? { readErrors } : {}),
    }
  }
}
