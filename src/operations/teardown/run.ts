// What every part of a teardown shares: the cluster and namespace, the deadline and Ctrl-C, the watches it
// follows objects with, the record of what is the platform's, and the few primitives every step waits and
// deletes with. The parts (pause, drain, definitions, sweep) are functions over one TeardownRun.
import { ApiextensionsV1Api, AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import type { Watch } from '@kubernetes/client-node'
import { type Cluster, apiCall, apiFailure, getPath, isNotFound, statusOf } from '../../cluster/cluster.js'
import { ObjectWatch, nap, newWatch } from '../../cluster/watch.js'
import { type TeardownRecord, emptyRecord, uidKey, writeRecord } from '../../cluster/teardown-record.js'
import { type WebhookLike, isPlatformWebhook, recordedVerdict } from '../../platform/ownership.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import { customCollection, servedCollection } from '../../platform/objects.js'
import type { StepReport } from '../../ui/progress.js'
import type { Interrupt } from '../interrupt.js'
import type { Inventory } from '../inventory.js'

export interface TeardownOptions {
  force: boolean
  command?: string
  /** What the inventory proved is ours; without it (upgrade) only pause and drain are available. */
  inventory?: Inventory
  /** Throws when this run may no longer act (its lock was lost); called in every wait. */
  guard?: () => void
  /** Asks before an irreversible --force action; resolves false to stop. */
  confirm?: (question: string) => Promise<boolean>
}

export const CRD_COLLECTION = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'

export class TeardownRun {
  readonly core: CoreV1Api
  readonly apps: AppsV1Api
  readonly custom: CustomObjectsApi
  readonly crdApi: ApiextensionsV1Api
  readonly force: boolean
  readonly command: string
  readonly confirm: (question: string) => Promise<boolean>
  readonly inventory: Inventory | undefined
  private readonly guard: () => void
  record: TeardownRecord
  /** What --force removed, with what each forced object's release may have left behind. */
  readonly forced: string[] = []
  /** Set once this run paused the Installer (and nothing was drained yet): a failure then takes the pause back. */
  pausedByUs = false
  drained = 0

  private watcher: Watch
  private deployments = new Map<string, ObjectWatch>()
  private watches = new Set<ObjectWatch>()

  constructor(
    readonly cluster: Cluster,
    readonly namespace: string,
    readonly interrupt: Interrupt,
    readonly deadline: number,
    opts: TeardownOptions,
  ) {
    this.watcher = newWatch(cluster.kc)
    this.core = cluster.kc.makeApiClient(CoreV1Api)
    this.apps = cluster.kc.makeApiClient(AppsV1Api)
    this.custom = cluster.kc.makeApiClient(CustomObjectsApi)
    this.crdApi = cluster.kc.makeApiClient(ApiextensionsV1Api)
    this.force = opts.force
    this.command = opts.command ?? 'uninstall'
    this.confirm = opts.confirm ?? (async () => true)
    this.guard = opts.guard ?? (() => undefined)
    this.inventory = opts.inventory
    this.record = opts.inventory?.record ?? emptyRecord()
  }

  /** Follows one object by watch until stopped (or dispose); waits read it instead of polling the API. */
  watchObject(collectionPath: string, name: string): ObjectWatch {
    const w = new ObjectWatch(this.watcher, (path) => getPath(this.cluster, path), collectionPath, name)
    this.watches.add(w)
    return w
  }

  unwatch(w: ObjectWatch): void {
    w.stop()
    this.watches.delete(w)
  }

  /**
   * The watch to read the object through now. A collection that answers 404 is not an empty one (N13): its
   * CRD says whether the object went with it ('gone') or is served at another version now (a new watch there;
   * the old one is stopped); while neither is known, the same watch (it reads as unknown, so the wait goes on).
   */
  async followServed(w: ObjectWatch): Promise<ObjectWatch | 'gone'> {
    if (!w.collectionMissing) return w
    const c = customCollection(w.collectionPath)
    if (!c) return w
    const crd = await this.api(`read the CRD of ${c.plural}.${c.group}`, () =>
      getPath(this.cluster, `${CRD_COLLECTION}/${c.plural}.${c.group}`),
    )
    const now = servedCollection(w.collectionPath, crd)
    if (now === 'gone') return 'gone'
    if (now === 'unreadable' || now === w.collectionPath) return w
    this.unwatch(w)
    return this.watchObject(now, w.name)
  }

  /** Waits until the watched object is gone; stops the watch after. */
  async waitObjectGone(
    collectionPath: string,
    name: string,
    what: string,
    report: StepReport,
    why: () => string,
  ): Promise<void> {
    // Most objects are gone by the time we look: one GET settles those; a watch follows the rest.
    const now = await this.api(`read ${what}`, () => getPath(this.cluster, `${collectionPath}/${name}`))
    if (!now) return
    let w = this.watchObject(collectionPath, name)
    try {
      const probe = async () => {
        const now = await this.followServed(w)
        if (now === 'gone') return true
        w = now
        return w.current === null ? true : null
      }
      await this.waitFor(what, probe, report, why, [w])
    } finally {
      this.unwatch(w)
    }
  }

  /** Stops every watch this teardown started. */
  dispose(): void {
    for (const w of this.watches) w.stop()
    this.watches.clear()
    this.deployments.clear()
  }

  /** Throws on Ctrl-C and when the run lock was lost: a long wait stops too, not only the next step. */
  check(): void {
    if (this.interrupt.requested) throw this.interrupt.error()
    this.guard()
  }

  /** Runs an API call; a failure becomes one line naming what was being done. */
  api<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    return apiCall(this.cluster, doing, fn)
  }

  timedOut(what: string): UserError {
    return new UserError(what, ExitCode.Timeout, `re-run ${this.command} to continue, or raise --timeout`)
  }

  /**
   * Resolves with probe()'s first non-null value. With watches, probe reads them and is asked again on every
   * change they see (and once a second, for the deadline and Ctrl-C); without, it is polled.
   */
  async waitFor<T>(
    what: string,
    probe: () => Promise<T | null>,
    report: StepReport,
    why: () => string,
    watches: ObjectWatch[] = [],
    everyMs = 500,
  ): Promise<T> {
    for (;;) {
      this.check()
      const value = await this.api(`wait for ${what}`, probe)
      if (value !== null && value !== undefined) return value
      if (Date.now() > this.deadline) throw this.timedOut(`timed out waiting for ${what}: ${why()}`)
      report.line(why())
      await nap(watches, watches.length ? 1000 : everyMs)
    }
  }

  /** The uid an earlier proof recorded for an object. */
  recordedUid(kind: string, name: string): string | undefined {
    return this.record.uids?.[uidKey(kind, name)]
  }

  /** A core-provider webhook proved this platform's on the live object (cluster-scoped: only admins write it). */
  provedWebhook(mwc: WebhookLike): boolean {
    const instances = new Set([
      ...(this.inventory?.coreProviders ?? []),
      ...(this.record.release ? [this.record.release] : []),
    ])
    return isPlatformWebhook(mwc, this.namespace, instances)
  }

  /**
   * Deletes an object an earlier proof named, only as that object: the recorded uid, or proved ours again on the
   * live object now; the delete carries its uid as a precondition. Anything else is named and kept. True when it
   * was deleted (or went by itself).
   */
  async deleteRecorded(
    label: string,
    live: { metadata?: { uid?: string } } | null,
    recordedUid: string | undefined,
    provedNow: boolean,
    del: (uid: string) => Promise<unknown>,
    report: StepReport,
  ): Promise<boolean> {
    const verdict = recordedVerdict(live, recordedUid, provedNow)
    if (!verdict.act) {
      if (!verdict.gone) report.line(`${label}: ${verdict.reason}`)
      return verdict.gone
    }
    try {
      await del(verdict.uid)
      return true
    } catch (err) {
      if (isNotFound(err)) return true
      if (statusOf(err) === 409) {
        report.line(`${label}: replaced while it was being removed: kept`)
        return false
      }
      throw apiFailure(err, this.cluster, `delete ${label}`)
    }
  }

  async coreProviderRunning(): Promise<boolean> {
    for (const name of this.inventory?.coreProviders ?? []) {
      if (await this.deploymentAvailable(name, this.namespace)) return true
    }
    return false
  }

  /** A watch of one Deployment, shared by every wait that asks whether that controller runs. */
  deploymentWatch(name: string, namespace: string): ObjectWatch {
    const key = `${namespace}/${name}`
    let w = this.deployments.get(key)
    if (!w) {
      w = this.watchObject(`/apis/apps/v1/namespaces/${namespace}/deployments`, name)
      this.deployments.set(key, w)
    }
    return w
  }

  /** Whether the Deployment has an available replica; undefined until its watch has listed. */
  deploymentRunning(name: string, namespace: string): boolean | undefined {
    const d = this.deploymentWatch(name, namespace).current
    if (d === undefined) return undefined
    return ((d?.status as { availableReplicas?: number } | undefined)?.availableReplicas ?? 0) > 0
  }

  private async deploymentAvailable(name: string, namespace: string): Promise<boolean> {
    const d = await this.apps.readNamespacedDeployment({ name, namespace }).catch((err) => {
      if (isNotFound(err)) return null
      throw err
    })
    return (d?.status?.availableReplicas ?? 0) > 0
  }

  async saveRecord(): Promise<void> {
    await this.api('write the teardown record', () => writeRecord(this.cluster, this.namespace, this.record))
  }
}
