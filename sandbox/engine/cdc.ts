// Simulated composition-dynamic-controllers (contract section 3): one per cdc bundle Deployment that
// core-provider created, working only while that Deployment is available. Each installs its chart with
// the real helm binary, values = the Composition's spec.
import { createHash } from 'node:crypto'
import { parseAllDocuments } from 'yaml'
import { ApiError, Informer, type KObject } from './rest.js'
import { EngineContext, type EffectiveSettings } from './context.js'
import {
  CREATE_RESULT_LOST,
  type Condition,
  createResultLost,
  ready,
  sameConditions,
  setConditions,
  synced,
} from './conditions.js'
import { pluralFromKind } from './naming.js'
import { readReleaseManifest, readReleaseStatus } from './release-storage.js'
import { CLUSTER_SCOPED, type GeneratedRbac, applyRbac, generatedRbac, removeRbac } from './rbacgen.js'
import {
  ANN_CREATE_FAILED,
  ANN_CREATE_PENDING,
  ANN_CREATE_SUCCEEDED,
  ANN_GRACEFULLY_PAUSED,
  ANN_PAUSED,
  COMPOSITION_FINALIZER,
  COMPOSITION_GROUP,
  LABEL_COMPOSITION_VERSION,
  LABEL_RELEASE_NAME,
} from './naming.js'

interface CompositionStatus {
  conditions?: Condition[]
  digest?: string
  previousDigest?: string
  helmChartUrl?: string
  helmChartVersion?: string
  managed?: unknown[]
}

/**
 * Cdcs that act with their own ServiceAccount's rights (rbacgen's grants plus the bundle's static RBAC plus
 * what the chart's bootstrap release grants), as every real cdc does: the installer's, whose chart reads the
 * cluster (lookups) and runs a hook Job, so that an RBAC gap of the chart shows. The component cdcs still act
 * as admin: their release storage in a Composition's own namespace is not modelled.
 */
const OWN_RIGHTS = new Set(['installers'])

class Cdc {
  readonly informer: Informer
  /** status.managed per Composition uid, from the last helm run. */
  private managed = new Map<string, Record<string, string>[]>()
  private pendingSince = new Map<string, number>()
  /** Aborted when the cdc's pod is stopped: its in-flight helm runs are cut (SIGKILL), as a pod's are. */
  private cut = new AbortController()
  /** Which pod of this cdc is the current one: a rollout starts another beside the old. */
  private pod = 0
  private deletingSince = new Map<string, number>()
  private raceLost = new Set<string>()
  /** What rbacgen last granted, per release (`<namespace>/<release>`), with the inputs it came from. */
  private granted = new Map<string, { key: string; rbac: GeneratedRbac }>()
  /** When this cdc last listed everything again: its own resync clock, as each real cdc pod has. */
  lastResync = Date.now()

  constructor(
    private ctx: EngineContext,
    readonly ns: string,
    readonly deploymentName: string,
    readonly version: string,
    readonly plural: string,
  ) {
    const path = `/apis/${COMPOSITION_GROUP}/${version}/${plural}?labelSelector=${encodeURIComponent(`${LABEL_COMPOSITION_VERSION}=${version}`)}`
    this.informer = new Informer(ctx.rest, path, (ev, obj, old) => {
      if (ev === 'delete') return
      // Deletion is handled at once, and any update of an object being deleted too (so removing a pause from
      // a deleting object takes effect). Watched annotations (contract section 3; unstructured-runtime
      // builder/options.go): any change of krateo.io/paused observes at once, removing
      // external-create-pending creates at once. Other annotation-only and status-only changes wait.
      const ann = (o: typeof obj) => o.metadata.annotations ?? {}
      const watched =
        !!old &&
        (ann(old)[ANN_PAUSED] !== ann(obj)[ANN_PAUSED] ||
          (ANN_CREATE_PENDING in ann(old) && !(ANN_CREATE_PENDING in ann(obj))))
      if (
        ev === 'update' &&
        old &&
        !obj.metadata.deletionTimestamp &&
        old.metadata.generation === obj.metadata.generation &&
        !watched
      )
        return
      this.enqueue(obj)
    })
  }

  get alive(): boolean {
    return EngineContext.available(this.ctx.deployment(this.ns, this.deploymentName))
  }

  objectPath(obj: { metadata: { namespace?: string; name: string } }): string {
    return `/apis/${COMPOSITION_GROUP}/${this.version}/namespaces/${obj.metadata.namespace}/${this.plural}/${obj.metadata.name}`
  }

  /**
   * A rollout: the new pod observes everything at once; the old one's work in flight goes on for the overlap
   * (its own queue keys, so both may work on one Composition together), then it is stopped.
   */
  rollout(overlapMs: number): void {
    const old = this.cut
    this.cut = new AbortController()
    this.pod++
    if (overlapMs > 0) setTimeout(() => old.abort(), overlapMs)
    else old.abort()
  }

  enqueue(obj: KObject, afterMs = 0): void {
    const key = `cdc/${this.plural}/${obj.metadata.namespace}/${obj.metadata.name}#${this.pod}`
    const signal = this.cut.signal
    const work = () =>
      signal.aborted ? Promise.resolve() : this.reconcile(obj.metadata.namespace!, obj.metadata.name, signal)
    if (afterMs) this.ctx.queue.addAfter(key, afterMs, work)
    else this.ctx.queue.add(key, work)
  }

  enqueueAll(): void {
    for (const obj of this.informer.items.values()) this.enqueue(obj)
  }

  private async setStatus(obj: KObject, patch: CompositionStatus, ...conds: Condition[]): Promise<void> {
    const current = (obj.status ?? {}) as CompositionStatus
    const conditions = setConditions(current.conditions, ...conds)
    const changed =
      !sameConditions(current.conditions, conditions) ||
      Object.entries(patch).some(
        ([k, v]) => JSON.stringify((current as Record<string, unknown>)[k]) !== JSON.stringify(v),
      )
    if (!changed) return
    await this.ctx.rest.mergePatch(`${this.objectPath(obj)}/status`, { status: { ...patch, conditions } })
  }

  /** The cdc's ServiceAccount: its bundle's base name. */
  private get serviceAccount(): string {
    return this.deploymentName.replace(/-controller$/, '')
  }

  /** The helm user of this cdc: its ServiceAccount, or admin. */
  private get helmUser(): string | undefined {
    return OWN_RIGHTS.has(this.plural) ? `system:serviceaccount:${this.ns}:${this.serviceAccount}` : undefined
  }

  /**
   * rbacgen before every helm run: what chart-inspector finds in the chart rendered with these values (asked
   * again only when the inputs change), applied by the cdc to its own ServiceAccount.
   */
  private async grantOwnRights(
    release: string,
    ns: string,
    url: string,
    version: string,
    values: unknown,
  ): Promise<void> {
    if (!this.helmUser) return
    const key = createHash('sha256')
      .update(JSON.stringify([url, version, values]))
      .digest('hex')
    const id = `${ns}/${release}`
    try {
      const known = this.granted.get(id)
      const rbac =
        known?.key === key
          ? known.rbac
          : generatedRbac(await this.ctx.helm.template(release, ns, url, version, values), ns)
      await applyRbac(
        this.ctx.rest.asServiceAccount(this.ns, this.serviceAccount),
        release,
        { name: this.serviceAccount, namespace: this.ns },
        rbac,
      )
      this.granted.set(id, { key, rbac })
    } catch (err) {
      throw new Error(`generating RBAC using chart-inspector: ${(err as Error).message}`)
    }
  }

  /**
   * Every real cdc asks chart-inspector for the chart's objects before a helm run; chart-inspector fails (HTTP 500,
   * helm's "no matches for kind") on a kind its REST mapper misses (the chartInspectorMisses knob). The chart is
   * rendered only while chart-inspector misses something, so the common path costs nothing.
   */
  private async inspectChart(
    release: string,
    ns: string,
    url: string,
    version: string,
    values: unknown,
  ): Promise<void> {
    if (!this.ctx.inspectorMissed.size && !(this.ctx.settings().chartInspectorMisses ?? []).length) return
    const manifest = await this.ctx.helm.template(release, ns, url, version, values)
    for (const doc of parseAllDocuments(manifest)) {
      const o = doc.toJS() as KObject | null
      if (!o?.kind || !o.apiVersion || !this.ctx.inspectorMisses(o.kind)) continue
      const message = `unable to build kubernetes objects from release manifest: resource mapping not found for name: "${o.metadata.name}" namespace: "" from "": no matches for kind "${o.kind}" in version "${o.apiVersion}"\nensure CRDs are installed first`
      throw new Error(
        `generating RBAC using chart-inspector: getting resources from chart-inspector: unexpected status code: 500 - response body: ${JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code: 500 })}`,
      )
    }
  }

  private releaseName(obj: KObject): string {
    return obj.metadata.labels?.[LABEL_RELEASE_NAME] ?? `${obj.metadata.name}-${obj.metadata.uid!.slice(0, 8)}`
  }

  /** One observe, by the pod whose stop aborts `signal`. */
  async reconcile(ns: string, name: string, signal: AbortSignal): Promise<void> {
    if (process.env.KRATEO_ENGINE_DEBUG)
      this.ctx.log(`cdc ${this.plural}.${this.version}: reconcile ${ns}/${name} (alive=${this.alive})`)
    if (!this.alive) return
    const obj = await this.ctx.rest.getOrNull(this.objectPath({ metadata: { namespace: ns, name } }))
    if (!obj) return
    const ann = obj.metadata.annotations ?? {}
    // The pause check comes before deletion handling.
    if (ann[ANN_PAUSED] === 'true') return this.setStatus(obj, {}, synced('False', 'ReconcilePaused'))
    if (obj.metadata.deletionTimestamp) return this.remove(obj)
    if (ann[ANN_GRACEFULLY_PAUSED] === 'true')
      return this.setStatus(obj, {}, ready('True', 'ReconcileGracefullyPaused'))

    const settings = this.ctx.settings()
    const release = this.releaseName(obj)
    // The cdc writes its release name on every observe (and the finalizer before its first create).
    let current = obj
    if (
      !obj.metadata.finalizers?.includes(COMPOSITION_FINALIZER) ||
      obj.metadata.labels?.[LABEL_RELEASE_NAME] !== release
    ) {
      current = await this.ctx.rest.mergePatch(this.objectPath(obj), {
        metadata: {
          labels: { [LABEL_RELEASE_NAME]: release },
          finalizers: [...new Set([...(obj.metadata.finalizers ?? []), COMPOSITION_FINALIZER])],
        },
      })
    }
    const cm = await this.ctx.rest.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${this.ns}/configmaps/${this.deploymentName.replace(/-controller$/, '')}-configmap`,
    )
    const url = cm.data.URL!
    const chartVersion = cm.data.VERSION!
    const status = (current.status ?? {}) as CompositionStatus
    const digest = createHash('sha256')
      .update(JSON.stringify([current.spec ?? {}, url, chartVersion]))
      .digest('hex')
      .slice(0, 16)
    let message = 'Composition is up-to-date'
    try {
      const info = await this.ctx.helm.chartForCdc(url, chartVersion)
      let releaseStatus = await readReleaseStatus(this.ctx.rest, release, ns)
      if (releaseStatus?.startsWith('pending-')) {
        if (!(await this.settlePending(current, release, releaseStatus, settings))) return
        releaseStatus = await readReleaseStatus(this.ctx.rest, release, ns)
      }
      const firstInstall = releaseStatus === null
      const changed = status.digest !== digest
      // Gen S upgrades on every observe; Gen N only when something changed (contract section 3).
      if (
        firstInstall ||
        releaseStatus !== 'deployed' ||
        changed ||
        info.readsCluster ||
        settings.profile.upgradeOnEveryObserve ||
        !this.managed.has(current.metadata.uid!)
      ) {
        if (firstInstall && !(await this.markCreate(current))) return
        try {
          this.ctx.log(
            `cdc ${this.plural}.${this.version}: helm upgrade --install ${ns}/${release} (${url}:${chartVersion})`,
          )
          await renderTime(settings.renderSeconds?.[name] ?? 0, signal)
          await this.inspectChart(release, ns, url, chartVersion, current.spec ?? {})
          await this.grantOwnRights(release, ns, url, chartVersion, current.spec ?? {})
          await this.ctx.helm.upgradeInstall(release, ns, url, chartVersion, current.spec ?? {}, signal, this.helmUser)
        } catch (err) {
          if (signal.aborted) return // the process "died": nothing is recorded
          const msg = (err as Error).message
          this.ctx.log(`cdc ${this.plural}.${this.version}: helm failed for ${ns}/${release}: ${msg.split('\n')[0]}`)
          if (firstInstall) {
            await this.annotate(current, ANN_CREATE_FAILED)
            await this.setStatus(
              current,
              {},
              ready('False', 'Creating'),
              synced('False', 'ReconcileError', `create failed: ${msg}`),
            )
          } else
            await this.setStatus(
              current,
              {},
              ready('False', 'Unavailable'),
              synced('False', 'ReconcileError', `observe failed: ${msg}`),
            )
          this.enqueue(current, cdcResyncSeconds(settings, this.plural) * 1000)
          return
        }
        if (firstInstall) {
          current = await this.annotate(current, ANN_CREATE_SUCCEEDED)
          message = 'Composition created'
        } else if (changed) message = 'Composition values updated'
        this.managed.set(current.metadata.uid!, await this.managedObjects(release, ns))
      }
    } catch (err) {
      if (err instanceof ApiError) throw err
      await this.setStatus(
        current,
        {},
        ready('False', 'Unavailable'),
        synced('False', 'ReconcileError', `observe failed: ${(err as Error).message}`),
      )
      return
    }
    // Ready as soon as helm returned (helm Wait: false): it says nothing about pods (contract section 3).
    const base = {
      helmChartUrl: url,
      helmChartVersion: chartVersion,
      digest,
      ...(status.digest && status.digest !== digest ? { previousDigest: status.digest } : {}),
      managed: this.managed.get(current.metadata.uid!),
    }
    await this.setStatus(current, base, ready('True', 'Available', message), synced('True', 'ReconcileSuccess'))
  }

  /** The objects of a release, as status.managed lists them. */
  private async managedObjects(release: string, ns: string): Promise<Record<string, string>[]> {
    const manifest = (await readReleaseManifest(this.ctx.rest, release, ns)) ?? ''
    const docs = parseAllDocuments(manifest)
      .map((d) => d.toJS() as KObject | null)
      .filter((d): d is KObject => !!d && !!d.kind)
    return docs.map((d) => ({
      apiVersion: d.apiVersion!,
      resource: pluralFromKind(d.kind!),
      name: d.metadata.name,
      ...(CLUSTER_SCOPED.has(d.kind!) ? {} : { namespace: d.metadata.namespace ?? ns }),
    }))
  }

  /**
   * A release left pending-* by a cdc cut short (contract section 0). S rolls it back on the next observe; N
   * reports PendingHelmOperation and does nothing for the stand-down time first. True when work may go on.
   */
  private async settlePending(
    obj: KObject,
    release: string,
    releaseStatus: string,
    settings: EffectiveSettings,
  ): Promise<boolean> {
    const uid = obj.metadata.uid!
    if (settings.profile.pendingRelease === 'stand-down') {
      const since = this.pendingSince.get(uid) ?? Date.now()
      this.pendingSince.set(uid, since)
      const left = settings.pendingStandDownSeconds * 1000 - (Date.now() - since)
      if (left > 0) {
        await this.setStatus(
          obj,
          {},
          ready(
            'False',
            'PendingHelmOperation',
            `helm release ${release} is ${releaseStatus}; waiting before rolling it back`,
          ),
        )
        this.enqueue(obj, Math.min(left, cdcResyncSeconds(settings, this.plural) * 1000))
        return false
      }
    }
    this.pendingSince.delete(uid)
    this.ctx.log(
      `cdc ${this.plural}.${this.version}: release ${obj.metadata.namespace}/${release} is ${releaseStatus}: rolling back`,
    )
    await this.ctx.helm.rollbackPending(release, obj.metadata.namespace!, releaseStatus)
    return true
  }

  private async annotate(obj: KObject, key: string): Promise<KObject> {
    return this.ctx.rest.mergePatch(this.objectPath(obj), {
      metadata: { annotations: { [key]: new Date().toISOString() } },
    })
  }

  /**
   * The external-create protocol of the runtime the real cdc is built on: a pending mark before the create,
   * its result after. A pending mark newer than any result means a create whose outcome was lost: the cdc
   * refuses to go on until someone removes the mark. False when the create must not go ahead.
   */
  private async markCreate(obj: KObject): Promise<boolean> {
    if (createResultLost(obj.metadata.annotations, this.ctx.settings().lostCreateGraceSeconds)) {
      await this.setStatus(obj, {}, synced('False', 'ReconcileError', CREATE_RESULT_LOST))
      return false
    }
    await this.annotate(obj, ANN_CREATE_PENDING)
    if (this.ctx.settings().cdcLoseCreateRace.includes(obj.metadata.name) && !this.raceLost.has(obj.metadata.uid!)) {
      // The process "dies" between the pending mark and the result: nothing records the outcome.
      this.raceLost.add(obj.metadata.uid!)
      this.ctx.log(
        `cdc ${this.plural}.${this.version}: lost the create race for ${obj.metadata.namespace}/${obj.metadata.name} (fault knob)`,
      )
      this.enqueue(obj, 500)
      return false
    }
    return true
  }

  private async remove(obj: KObject): Promise<void> {
    if (!obj.metadata.finalizers?.includes(COMPOSITION_FINALIZER)) return
    await this.setStatus(obj, {}, ready('False', 'Deleting'))
    const slow = (this.ctx.settings().slowDeletionSeconds[obj.metadata.name] ?? 0) * 1000
    const since = this.deletingSince.get(obj.metadata.uid!) ?? Date.now()
    this.deletingSince.set(obj.metadata.uid!, since)
    if (Date.now() - since < slow) {
      this.enqueue(obj, Math.min(1000, slow))
      return
    }
    try {
      this.ctx.log(
        `cdc ${this.plural}.${this.version}: helm uninstall ${obj.metadata.namespace}/${this.releaseName(obj)}`,
      )
      const release = this.releaseName(obj)
      await this.ctx.helm.uninstall(release, obj.metadata.namespace!, this.helmUser)
      const id = `${obj.metadata.namespace}/${release}`
      const granted = this.granted.get(id)
      if (this.helmUser) {
        await removeRbac(
          this.ctx.rest.asServiceAccount(this.ns, this.serviceAccount),
          release,
          this.ns,
          granted?.rbac ?? { cluster: [], namespaced: { [obj.metadata.namespace!]: [] } },
        )
        this.granted.delete(id)
      }
    } catch (err) {
      await this.setStatus(obj, {}, synced('False', 'ReconcileError', `delete failed: ${(err as Error).message}`))
      this.enqueue(obj, 2000)
      return
    }
    const fresh = await this.ctx.rest.get(this.objectPath(obj))
    const finalizers = (fresh.metadata.finalizers ?? []).filter((f) => f !== COMPOSITION_FINALIZER)
    await this.ctx.rest.mergePatch(this.objectPath(obj), {
      metadata: { finalizers, resourceVersion: fresh.metadata.resourceVersion },
    })
    this.managed.delete(obj.metadata.uid!)
    this.deletingSince.delete(obj.metadata.uid!)
  }
}

/** Waits the render time a knob gives, unless the pod is stopped first. */
function renderTime(seconds: number, signal: AbortSignal): Promise<void> {
  if (seconds <= 0) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      reject(new Error('the cdc pod was stopped'))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', done)
      resolve()
    }, seconds * 1000)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The resync of the cdc of a composition plural: its own when a test set one, the engine's otherwise. */
function cdcResyncSeconds(settings: EffectiveSettings, plural: string): number {
  return settings.cdcResyncSeconds?.[plural] ?? settings.resyncSeconds
}

/** Starts and stops a simulated cdc per bundle Deployment. */
export class CdcManager {
  private cdcs = new Map<string, Cdc>()

  constructor(private ctx: EngineContext) {
    ctx.onDeployment((d, old) => {
      const cdc = this.cdcs.get(`${d.metadata.namespace}/${d.metadata.name}`)
      // A rollout (new template) stops the old pod, after the overlap: its helm work in flight is cut where it stands.
      if (cdc && old && old.metadata.generation !== d.metadata.generation)
        cdc.rollout((this.ctx.settings().cdcRolloutOverlapSeconds ?? 0) * 1000)
      // A (re)started cdc lists everything and observes it at once.
      if (
        cdc &&
        EngineContext.available(d) &&
        (!EngineContext.available(old) || old?.metadata.generation !== d.metadata.generation)
      )
        cdc.enqueueAll()
    })
  }

  start(): void {
    // One sync at a time: two overlapping ones would both start a cdc for a new bundle, and the one left out
    // of the map would run on forever.
    const tick = () => {
      void this.sync()
        .catch((err) => this.ctx.log(`cdc sync: ${(err as Error).message}`))
        .finally(() => setTimeout(tick, 500))
    }
    tick()
    // Each cdc resyncs on its own clock; the interval is read again every second so a settings change applies at once.
    setInterval(() => {
      const settings = this.ctx.settings()
      for (const cdc of this.cdcs.values()) {
        if (Date.now() - cdc.lastResync < cdcResyncSeconds(settings, cdc.plural) * 1000) continue
        cdc.lastResync = Date.now()
        if (cdc.alive) cdc.enqueueAll()
      }
    }, 1000)
  }

  /** A cdc runs, its first list done, for every cdc Deployment there is. */
  get settled(): boolean {
    if (!this.ctx.deployments.hasSynced) return false
    return [...this.ctx.deployments.items.values()].every(
      (d) =>
        d.metadata.labels?.['app.kubernetes.io/component'] !== 'composition-dynamic-controller' ||
        !!d.metadata.deletionTimestamp ||
        !!this.cdcs.get(`${d.metadata.namespace}/${d.metadata.name}`)?.informer.hasSynced,
    )
  }

  private async sync(): Promise<void> {
    const seen = new Set<string>()
    for (const d of this.ctx.deployments.items.values()) {
      if (
        d.metadata.labels?.['app.kubernetes.io/component'] !== 'composition-dynamic-controller' ||
        d.metadata.deletionTimestamp
      )
        continue
      const key = `${d.metadata.namespace}/${d.metadata.name}`
      seen.add(key)
      if (this.cdcs.has(key)) continue
      const cm = await this.ctx.rest.getOrNull<{ data: Record<string, string> }>(
        `/api/v1/namespaces/${d.metadata.namespace}/configmaps/${d.metadata.name.replace(/-controller$/, '')}-configmap`,
      )
      if (!cm) continue
      const cdc = new Cdc(
        this.ctx,
        d.metadata.namespace!,
        d.metadata.name,
        cm.data.COMPOSITION_CONTROLLER_VERSION!,
        cm.data.COMPOSITION_CONTROLLER_RESOURCE!,
      )
      this.cdcs.set(key, cdc)
      cdc.informer.start()
      this.ctx.log(`cdc for ${cdc.plural}.${cdc.version} started`)
    }
    for (const [key, cdc] of this.cdcs) {
      if (!seen.has(key)) {
        cdc.informer.stop()
        this.cdcs.delete(key)
        this.ctx.log(`cdc for ${cdc.plural}.${cdc.version} removed`)
      }
    }
  }
}
