// The operations of the three-stage teardown of contract section 1 (uninstall.ts lists them as steps):
// 1. ordered drain (Installer paused, Compositions deleted consumers first while every provider lives),
// 2. bootstrap teardown (Installer CR and the platform's CompositionDefinitions while core-provider lives,
//    then helm uninstall of the bootstrap release with its hooks skipped), 3. the post-delete sweep.
// Every delete, finalizer removal and pause acts only on what the inventory proved is the platform's.
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node'
import { parseAllDocuments } from 'yaml'
import { type Cluster, apiFailure, getPath, isNotFound, requestPath, statusOf } from '../cluster/cluster.js'
import { ObjectWatch, nap, newWatch } from '../cluster/watch.js'
import type { Watch } from '@kubernetes/client-node'
import { type Inventory, managedPath } from './inventory.js'
import {
  type ManagedRef,
  type WebhookLike,
  INSTALLER_NAME,
  MANAGED_BY_LABEL,
  POLICY_API,
  MANAGED_BY_US,
  bindsOurServiceAccount,
  cdcDeploymentOf,
  generatedCrdOf,
  isCoreProviderWebhook,
  isPlatformPolicy,
  isPlatformWebhook,
  type PolicyLike,
  recordedVerdict,
  restCrdsOf,
  restDefinitionsOf,
} from '../platform/ownership.js'
import { type TeardownRecord, emptyRecord, mergeRecord, uidKey, writeRecord } from '../cluster/teardown-record.js'
import { ExitCode, UserError } from '../platform/errors.js'
import type { Component } from '../platform/components.js'
import {
  type KObj,
  PAUSED_ANNOTATION,
  PAUSED_BY_ANNOTATION,
  STAGE_TEXT,
  conditionOf,
  platformState,
} from '../platform/state.js'
import { COMPOSITION_GROUP, CD_GROUP, CD_VERSION } from '../cluster/observe.js'
import { type Helm, exactReleaseFilter } from '../cluster/helm.js'
import type { StepReport } from '../ui/progress.js'
import type { Interrupt } from './interrupt.js'
import { installerReleasePending, mergePatchCustom, nudge, refOf } from '../cluster/kube-write.js'
import { PlatformWatch } from './follow.js'
import {
  FINALIZES_REST_DEFINITIONS,
  STAND_IN_LABEL,
  STAND_IN_NAMESPACE_LABEL,
  STUCK_AFTER_MS,
  finalizerController,
  lostKinds,
  refusingWebhook,
  standInCrd,
} from '../platform/drain.js'

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

export class Teardown {
  private core: CoreV1Api
  private apps: AppsV1Api
  private custom: CustomObjectsApi
  private crdApi: ApiextensionsV1Api
  private readonly force: boolean
  private readonly command: string
  private readonly confirm: (question: string) => Promise<boolean>
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
    private cluster: Cluster,
    private namespace: string,
    private interrupt: Interrupt,
    private deadline: number,
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

  private inventory: Inventory | undefined

  /** Follows one object by watch until stopped (or dispose); waits read it instead of polling the API. */
  watchObject(collectionPath: string, name: string): ObjectWatch {
    const w = new ObjectWatch(this.watcher, (path) => getPath(this.cluster, path), collectionPath, name)
    this.watches.add(w)
    return w
  }

  private unwatch(w: ObjectWatch): void {
    w.stop()
    this.watches.delete(w)
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
    const w = this.watchObject(collectionPath, name)
    try {
      await this.waitFor(what, async () => (w.current === null ? true : null), report, why, [w])
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

  private check(): void {
    if (this.interrupt.requested) throw this.interrupt.error()
    // A lost run lock stops a long wait too, not only the next step.
    this.guard()
  }

  private async api<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof UserError) throw err
      throw apiFailure(err, this.cluster, doing)
    }
  }

  /**
   * A write to a Composition. With a Gen S engine whose core-provider is down, its fail-closed webhook refuses
   * every such write; say so, and with --force (confirmed) remove this platform's own webhook and retry.
   */
  private async compositionWrite<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      const webhook = refusingWebhook(err)
      if (!webhook) throw apiFailure(err, this.cluster, doing)
      const mwc = await this.ourWebhookRefusing()
      const who = this.inventory?.coreProviders.length
        ? `Deployment ${this.inventory.coreProviders.join(', ')} in ${this.namespace}`
        : `core-provider in ${this.namespace}`
      if (!mwc || !this.force) {
        throw new UserError(
          `cannot ${doing}: core-provider is not running, and its webhook ${mwc?.name ?? webhook} refuses every write to Compositions`,
          ExitCode.Stuck,
          mwc
            ? `start ${who} again (kubectl -n ${this.namespace} get deploy), or re-run with --force --yes to remove this platform's webhook ${mwc.name} first`
            : `start ${who} again; that webhook is not this platform's, so --force leaves it alone`,
        )
      }
      if (
        !(await this.confirm(
          `remove MutatingWebhookConfiguration ${mwc.name} (this platform's core-provider webhook, its core-provider is down) so writes to Compositions work again?`,
        ))
      ) {
        throw new UserError(
          `the webhook ${mwc.name} was kept`,
          ExitCode.Stuck,
          `start ${who} again, then re-run ${this.command}`,
        )
      }
      const admission = this.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
      await this.api(`delete MutatingWebhookConfiguration ${mwc.name}`, () =>
        admission
          .deleteMutatingWebhookConfiguration({ name: mwc.name, body: { preconditions: { uid: mwc.uid } } })
          .catch((e) => {
            if (!isNotFound(e)) throw e
          }),
      )
      this.forced.push(`MutatingWebhookConfiguration/${mwc.name} (core-provider was down)`)
      try {
        return await fn()
      } catch (again) {
        throw apiFailure(again, this.cluster, doing)
      }
    }
  }

  /** Our own core-provider webhook (the recorded object, or proved ours now), when our core-provider cannot answer it. */
  private async ourWebhookRefusing(): Promise<{ name: string; uid: string } | null> {
    const admission = this.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
    for (const name of this.record.webhooks) {
      const mwc = (await admission.readMutatingWebhookConfiguration({ name }).catch(() => null)) as WebhookLike | null
      if (!mwc || !isCoreProviderWebhook(mwc)) continue
      const verdict = recordedVerdict(
        mwc,
        this.recordedUid('MutatingWebhookConfiguration', name),
        this.provedWebhook(mwc),
      )
      if (verdict.act && !(await this.coreProviderRunning())) return { name, uid: verdict.uid }
    }
    return null
  }

  /** The uid an earlier proof recorded for an object. */
  private recordedUid(kind: string, name: string): string | undefined {
    return this.record.uids?.[uidKey(kind, name)]
  }

  /** A core-provider webhook proved this platform's on the live object (cluster-scoped: only admins write it). */
  private provedWebhook(mwc: WebhookLike): boolean {
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
  private async deleteRecorded(
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

  private async coreProviderRunning(): Promise<boolean> {
    for (const name of this.inventory?.coreProviders ?? []) {
      if (await this.deploymentAvailable(name, this.namespace)) return true
    }
    return false
  }

  /** A watch of one Deployment, shared by every wait that asks whether that controller runs. */
  private deploymentWatch(name: string, namespace: string): ObjectWatch {
    const key = `${namespace}/${name}`
    let w = this.deployments.get(key)
    if (!w) {
      w = this.watchObject(`/apis/apps/v1/namespaces/${namespace}/deployments`, name)
      this.deployments.set(key, w)
    }
    return w
  }

  /** Whether the Deployment has an available replica; undefined until its watch has listed. */
  private deploymentRunning(name: string, namespace: string): boolean | undefined {
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

  /** Pauses the Installer so Pass B cannot re-create what is being drained; its cdc sees the pause at once (a watched annotation). */
  async pauseInstaller(installer: KObj, installerCD: KObj | undefined, report: StepReport): Promise<string> {
    const ref = refOf(installer, 'installers')
    if (installer.metadata.annotations?.[PAUSED_ANNOTATION] !== 'true') {
      await this.compositionWrite('pause the Installer CR', () =>
        mergePatchCustom(this.cluster, ref, {
          metadata: {
            annotations: {
              [PAUSED_ANNOTATION]: 'true',
              [PAUSED_BY_ANNOTATION]: `krateo-installer ${this.command} at ${new Date().toISOString()}`,
            },
          },
        }),
      )
      this.pausedByUs = true
    }
    const cdc = cdcDeploymentOf(installerCD)
    const w = this.watchObject(`/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`, ref.name)
    const watches = [w, ...(cdc ? [this.deploymentWatch(cdc, this.namespace)] : [])]
    try {
      return await this.waitFor(
        'the installer cdc to report the pause',
        async () => {
          const fresh = w.current
          if (fresh === undefined) return null
          if (fresh === null || conditionOf(fresh, 'Synced')?.reason === 'ReconcilePaused')
            return 'paused (Synced=False ReconcilePaused)'
          // A cdc that does not run cannot re-create anything either: the pause holds once it starts again.
          if (cdc && this.deploymentRunning(cdc, this.namespace) === false)
            return `paused (its cdc ${cdc} is not running, so nothing can re-create what is drained)`
          return null
        },
        report,
        () => 'waiting for the installer cdc to observe the pause',
        watches,
      )
    } finally {
      this.unwatch(w)
    }
  }

  /**
   * Before the pause: lets the Installer bring back what a version move pruned while its dependents still
   * exist (they need it running to finalize their objects), nudging its cdc through the watched annotation.
   */
  async letInstallerReCreate(
    names: string[],
    report: StepReport,
    reCreated: (name: string, composition: KObj) => void,
  ): Promise<string> {
    const pw = new PlatformWatch(this.cluster, this.namespace).start()
    let lastNudge = 0
    let why = ''
    try {
      return await this.waitFor(
        `the Installer to re-create ${names.join(', ')}`,
        async () => {
          if (!pw.primed()) return null
          const snapshot = pw.snapshot()
          const state = platformState(snapshot)
          const left = state.components.filter((c) => names.includes(c.name) && c.stage !== 'ready')
          if (!left.length) {
            for (const name of names) reCreated(name, snapshot.compositions.get(name)!)
            return `${names.join(', ')} running again`
          }
          why = left.map((c) => `${c.name}: ${STAGE_TEXT[c.stage]}${c.detail ? ` (${c.detail})` : ''}`).join('; ')
          const installer = pw.installerCR()
          if (
            installer &&
            left.some((c) => c.awaitsRender) &&
            Date.now() - lastNudge > 10_000 &&
            !(await installerReleasePending(this.cluster, installer))
          ) {
            lastNudge = Date.now()
            await nudge(this.cluster, installer)
          }
          return null
        },
        report,
        () =>
          `the Installer is re-creating what its dependents need to finalize their objects: ${why || names.join(', ')}`,
        [],
        1000,
      )
    } finally {
      pw.stop()
    }
  }

  /** Takes back a pause this run set (and the annotations named, set with it), when the command gives up before anything was drained. */
  async unpauseIfOurs(installer: KObj | null, alsoRemove: string[] = []): Promise<boolean> {
    if (!installer || !this.pausedByUs || this.drained > 0) return false
    const annotations = Object.fromEntries(
      [PAUSED_ANNOTATION, PAUSED_BY_ANNOTATION, ...alsoRemove].map((a) => [a, null]),
    )
    const done = await mergePatchCustom(this.cluster, refOf(installer, 'installers'), {
      metadata: { annotations },
    }).then(
      () => true,
      () => false,
    )
    if (done) this.pausedByUs = false
    return done
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
      if (Date.now() > this.deadline)
        throw new UserError(
          `timed out waiting for ${what}: ${why()}`,
          ExitCode.Timeout,
          `re-run ${this.command} to continue, or raise --timeout`,
        )
      report.line(why())
      await nap(watches, watches.length ? 1000 : everyMs)
    }
  }

  /**
   * A component whose Composition an earlier run deleted before it was stopped: waits for what its release
   * left finalizing, so the providers that finalize it are not drained first.
   */
  async finishRelease(c: Component, left: ManagedRef[], report: StepReport): Promise<void> {
    report.line(`${c.name}: Composition already gone; ${left.length} of its release's objects still finalizing`)
    await this.waitReleased(c, left, report)
    report.line(`${c.name}: gone`)
  }

  /** What a release's helm uninstall deleted, finalized by controllers still alive now: waited for before their providers go. */
  private async waitReleased(c: Component, objects: ManagedRef[], report: StepReport): Promise<void> {
    for (const m of objects)
      await this.waitReleasedObject(
        c,
        m,
        report,
        `${c.name}: waiting for ${m.resource}/${m.name} (released by helm uninstall) to be finalized`,
      )
  }

  /**
   * One object a platform release listed (status.managed of our Composition: ours by that record). Stuck on a
   * finalizer at the deadline it is named (exit 7); with --force, that finalizer is removed like a Composition's.
   */
  private async waitReleasedObject(c: Component, m: ManagedRef, report: StepReport, waiting: string): Promise<void> {
    const collection = collectionOf(m)
    // Most objects are gone by the time we look: one GET settles those; a watch follows the rest.
    const now = await this.api(`read ${m.resource}/${m.name}`, () => getPath(this.cluster, `${collection}/${m.name}`))
    if (!now) return
    // helm uninstall leaves what its chart marks to keep: waiting for it would only run into the deadline.
    if (now.metadata.annotations?.['helm.sh/resource-policy'] === 'keep' && !now.metadata.deletionTimestamp) {
      report.line(`${m.resource}/${m.name} is kept by its chart (helm.sh/resource-policy: keep): not waited for`)
      return
    }
    const label = `${m.resource}/${m.name} of ${c.name}`
    const outcome = await this.waitGone(label, { collection, name: m.name }, report, {
      orphans: `whatever the controller of its finalizer would have cleaned up for ${m.resource}/${m.name}`,
      progress: (fins) => `${waiting} (finalizers ${fins.join(', ') || 'none'})`,
    })
    if (outcome === 'forced') report.line(`${label}: gone (forced)`)
  }

  /** Deletes one component's Composition and waits until it and every object it managed are gone. */
  async drainComposition(c: Component, obj: KObj, plural: string, report: StepReport): Promise<void> {
    if (c.name === FINALIZES_REST_DEFINITIONS) {
      // Only the RestDefinitions our own releases created: a user's keep their provider busy, not us.
      const ours = [
        ...restDefinitionsOf(this.inventory ? [...this.inventory.compositions.values()] : []),
        ...[...(this.inventory?.finishing.values() ?? [])].flat().filter((m) => m.resource === 'restdefinitions'),
      ]
      for (const m of ours)
        await this.waitReleasedObject(
          c,
          m,
          report,
          `${c.name}: waiting for RestDefinition ${m.name} to be gone while ${c.name} can still finalize it`,
        )
    }
    // Past the deadline nothing new is deleted: the next run starts it with time to wait for it.
    if (!obj.metadata.deletionTimestamp && Date.now() > this.deadline)
      throw new UserError(
        `timed out before draining ${c.name}`,
        ExitCode.Timeout,
        `re-run ${this.command} to continue, or raise --timeout`,
      )
    const managed = (obj.status?.managed as ManagedRef[] | undefined) ?? []
    const [group, version] = obj.apiVersion!.split('/') as [string, string]
    const ref = { group, version, namespace: this.namespace, plural, name: c.name }
    this.drained++
    if (!obj.metadata.deletionTimestamp)
      await this.api(`delete ${c.name}`, () =>
        this.custom.deleteNamespacedCustomObject(ref).catch((err) => {
          if (!isNotFound(err)) throw err
        }),
      )
    report.line(`${c.name}: deleting`)
    const cd = this.inventory?.definitions.find((d) => d.metadata.name === c.name)
    const orphans = managed.map((m) => `${m.resource}/${m.name}`).join(', ') || 'none recorded'
    if (
      (await this.waitGone(`${c.kind}/${c.name}`, targetOf(ref), report, {
        cd,
        orphans: `the objects of its release: ${orphans}`,
      })) === 'forced'
    ) {
      report.line(`${c.name}: gone (forced: the objects of its release may be left behind: ${orphans})`)
      return
    }
    // The release's own objects (the portal's pages, a provider's RestDefinitions) are finalized by
    // controllers that are still alive now; wait for them before their providers go.
    await this.waitReleased(c, managed, report)
    report.line(`${c.name}: gone`)
  }

  /**
   * Waits for one of our objects to disappear. It is stuck when, with no change to it for STUCK_AFTER_MS, the
   * deadline passes or every controller that should clear its finalizers is down: something merely slow (its
   * controller runs) is never stuck before the deadline, and what changed lately or was not being deleted is a
   * timeout, not stuck. Stuck without --force: named, exit 7. With --force (confirmed): only the finalizers of
   * the controllers that are down (all of them at the deadline) are removed, guarded by the object's resourceVersion.
   */
  async waitGone(
    label: string,
    target: { collection: string; name: string },
    report: StepReport,
    how: GoneWait,
  ): Promise<'gone' | 'forced'> {
    let forced = false
    let lastVersion = ''
    let unchangedSince = Date.now()
    let downSince: number | null = null
    let said = ''
    let saidAt = 0
    const w = this.watchObject(target.collection, target.name)
    try {
      for (;;) {
        this.check()
        const obj = w.current
        if (obj === null) return forced ? 'forced' : 'gone'
        const controllers = (obj?.metadata.finalizers ?? []).map((f) =>
          finalizerController(f, how.cd, this.namespace, this.inventory?.coreProviders ?? []),
        )
        const watches = [
          w,
          ...controllers.filter((c) => c.deployment).map((c) => this.deploymentWatch(c.deployment!, c.namespace)),
        ]
        if (obj === undefined) {
          await nap(watches, 1000)
          continue
        }
        if (obj.metadata.resourceVersion !== lastVersion) {
          lastVersion = obj.metadata.resourceVersion ?? ''
          unchangedSince = Date.now()
        }
        const fins = obj.metadata.finalizers ?? []
        const down = controllers.filter(
          (c) => c.deployment && this.deploymentRunning(c.deployment, c.namespace) === false,
        )
        downSince = fins.length && down.length === controllers.length ? (downSince ?? Date.now()) : null
        // The extra detail (a hook Job's pod) costs a request: at most every 5 s.
        if (how.detail && Date.now() - saidAt > 5000) {
          said = await how.detail()
          saidAt = Date.now()
        }
        report.line(how.progress ? how.progress(fins) : `${target.name}: ${terminatingText(obj, fins)}${said}`)
        const pastDeadline = Date.now() > this.deadline
        const still =
          Date.now() - unchangedSince > STUCK_AFTER_MS && !!obj.metadata.deletionTimestamp && fins.length > 0
        if (pastDeadline && !still) {
          throw new UserError(
            `timed out waiting for ${label} to be gone (${obj.metadata.deletionTimestamp ? `it changed in the last ${STUCK_AFTER_MS / 1000}s; finalizers ${fins.join(', ') || 'none'}` : 'it is not being deleted'})`,
            ExitCode.Timeout,
            `re-run ${this.command} to continue, or raise --timeout`,
          )
        }
        const controllerDown = still && downSince !== null && Date.now() - downSince > STUCK_AFTER_MS
        if (still && (pastDeadline || controllerDown)) {
          const targets = pastDeadline ? controllers : down
          const who = targets
            .map((t) => `${t.finalizer} (cleared by ${t.what}${down.includes(t) ? ', which is not running' : ''})`)
            .join(', ')
          if (!this.force) {
            throw new UserError(
              `${label} is stuck Terminating on finalizer ${who}`,
              ExitCode.Stuck,
              `start that controller again, or re-run with --force --yes to remove the finalizer (what may be left behind: ${how.orphans})`,
            )
          }
          if (!(await this.confirm(`remove finalizer ${who} of ${label}? What may be left behind: ${how.orphans}`))) {
            throw new UserError(
              `${label} is stuck Terminating on finalizer ${who}; its finalizer was kept`,
              ExitCode.Stuck,
              'start that controller again, then re-run',
            )
          }
          report.line(`--force: removing finalizers of ${label}: ${who}`)
          const keep = fins.filter((f) => !targets.some((t) => t.finalizer === f))
          const patch = [
            { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
            { op: 'replace', path: '/metadata/finalizers', value: keep },
          ]
          try {
            await this.compositionWrite(`remove the finalizers of ${label}`, () =>
              requestPath(this.cluster, 'PATCH', `${target.collection}/${target.name}`, patch, {
                contentType: 'application/json-patch+json',
              }),
            )
            forced = true
            this.forced.push(
              `${label} (finalizers ${targets.map((t) => t.finalizer).join(', ')}; may be left behind: ${how.orphans})`,
            )
          } catch (err) {
            // It changed under us (its controller came back, say): look again.
            if (!(err instanceof UserError && /HTTP (409|422)/.test(err.message))) throw err
          }
        }
        await nap(watches, 1000)
      }
    } finally {
      this.unwatch(w)
    }
  }

  /** Stage 2: the Installer CR, then the platform's CompositionDefinitions (never another one) and the CRDs they generated. */
  async deleteInstallerAndDefinitions(installer: KObj | null, helm: Helm, report: StepReport): Promise<string> {
    if (installer) {
      const ref = refOf(installer, 'installers')
      await this.standInForLostKinds(installer, helm, report)
      await this.api('delete the Installer CR', () =>
        this.custom.deleteNamespacedCustomObject(ref).catch((err) => {
          if (!isNotFound(err)) throw err
        }),
      )
      // A paused Composition being deleted stays Terminating until the pause goes; that update of a
      // deleting object is handled at once.
      await this.compositionWrite('unpause the Installer CR', () =>
        mergePatchCustom(this.cluster, ref, {
          metadata: { annotations: { [PAUSED_ANNOTATION]: null, [PAUSED_BY_ANNOTATION]: null } },
        }).catch((err) => {
          if (!isNotFound(err)) throw err
        }),
      )
      const installerCD = this.inventory?.definitions.find((d) => d.metadata.name === INSTALLER_NAME)
      if (
        (await this.waitGone('the Installer CR', targetOf(ref), report, {
          cd: installerCD,
          orphans: 'its composition release and the admin-password Secret',
          detail: () => this.teardownHookState(),
        })) === 'forced'
      ) {
        report.line('the Installer CR is gone (forced: its release record may be left behind)')
      }
    }
    const standIns = await this.api('list stand-in CRDs', () =>
      this.crdApi.listCustomResourceDefinition({
        labelSelector: `${STAND_IN_LABEL}=true,${STAND_IN_NAMESPACE_LABEL}=${this.namespace}`,
      }),
    )
    for (const crd of standIns.items) {
      await this.api(`delete the stand-in CRD ${crd.metadata!.name}`, () =>
        this.crdApi.deleteCustomResourceDefinition({ name: crd.metadata!.name! }).catch((err) => {
          if (!isNotFound(err)) throw err
        }),
      )
    }
    const names = new Set(this.record.definitions)
    const cdRef = (name: string) => ({
      group: CD_GROUP,
      version: CD_VERSION,
      namespace: this.namespace,
      plural: 'compositiondefinitions',
      name,
    })
    for (const name of [...names]) {
      const live = (await this.api(`read CompositionDefinition ${name}`, () =>
        this.custom.getNamespacedCustomObject(cdRef(name)).catch((err) => {
          if (isNotFound(err)) return null
          throw err
        }),
      )) as KObj | null
      // The recorded definition, or one the inventory proved ours: a user's definition made since under the
      // same name is not deleted.
      const proved = !!live && !!this.inventory?.definitions.some((d) => d.metadata.uid === live.metadata.uid)
      const deleted = await this.deleteRecorded(
        `CompositionDefinition ${name}`,
        live,
        this.recordedUid('CompositionDefinition', name),
        proved,
        (uid) => this.custom.deleteNamespacedCustomObject({ ...cdRef(name), body: { preconditions: { uid } } }),
        report,
      )
      if (!deleted) names.delete(name)
    }
    // Each definition is waited for on its own, so one whose core-provider is down can be named (and forced).
    await Promise.all(
      [...names].map(async (name) => {
        const cd = this.inventory?.definitions.find((d) => d.metadata.name === name)
        if (
          (await this.waitGone(`CompositionDefinition/${name}`, targetOf(cdRef(name)), report, {
            cd,
            orphans: 'its CRD and cdc bundle (removed next)',
          })) === 'forced'
        ) {
          // core-provider would have removed its CRD: do it, it is ours by the record.
          const crd = cd ? generatedCrdOf(cd) : null
          if (crd)
            await this.api(`delete CRD ${crd}`, () =>
              this.crdApi.deleteCustomResourceDefinition({ name: crd }).catch((err) => {
                if (!isNotFound(err)) throw err
              }),
            )
        }
      }),
    )
    const crdWatches = this.record.crds.map((name) => this.watchObject(CRD_COLLECTION, name))
    const coreProviders = this.inventory?.coreProviders ?? []
    const cpWatches = coreProviders.map((d) => this.deploymentWatch(d, this.namespace))
    try {
      // One line per change; a watch that has not answered yet is not yet a CRD left.
      let left: string[] = []
      let unknown = 0
      let downSince: number | null = null
      let removing = false
      const listed = () =>
        `${left.length} generated CRDs (${left.slice(0, 3).join(', ')}${left.length > 3 ? ', ...' : ''})`
      const cpDown = () =>
        coreProviders.length > 0 && coreProviders.every((d) => this.deploymentRunning(d, this.namespace) === false)
      await this.waitFor(
        'the generated CRDs of the platform to go',
        async () => {
          left = crdWatches.filter((w) => w.current).map((w) => w.name)
          unknown = crdWatches.filter((w) => w.current === undefined).length
          if (!left.length && !unknown) return true
          // The controller that removes them is down: they stay for good. Name it; --force removes them itself.
          downSince = left.length && cpDown() ? (downSince ?? Date.now()) : null
          // One removal at a time: checks run on every watch event, and one may come while a removal (or its
          // question) is under way.
          if (downSince !== null && Date.now() - downSince > STUCK_AFTER_MS && !removing) {
            removing = true
            try {
              await this.removeGeneratedCrds(
                crdWatches.filter((w) => w.current),
                coreProviders,
                report,
              )
            } finally {
              removing = false
            }
          }
          return null
        },
        report,
        () =>
          !left.length
            ? 'looking at the generated CRDs'
            : cpDown()
              ? `${listed()} left; core-provider (Deployment ${coreProviders.join(', ')}), which removes them, is not running`
              : `core-provider is removing ${listed()}`,
        [...crdWatches, ...cpWatches],
      )
    } finally {
      for (const w of crdWatches) this.unwatch(w)
    }
    return `${names.size} CompositionDefinitions and ${this.record.crds.length} generated CRDs removed${this.inventory?.foreignDefinitions.length ? ` (${this.inventory.foreignDefinitions.length} not the platform's, kept)` : ''}`
  }

  /**
   * The platform's generated CRDs, left because core-provider (which removes them once their definitions go) is
   * not running. Without --force: named, exit 7. With --force (confirmed): removed here, each only if it is still
   * a generated composition CRD (group composition.krateo.io) that no CompositionDefinition of this namespace
   * still reports, and guarded by its uid.
   */
  private async removeGeneratedCrds(left: ObjectWatch[], coreProviders: string[], report: StepReport): Promise<void> {
    const names = left.map((w) => w.name)
    const who = `core-provider (Deployment ${coreProviders.join(', ')}), which is not running`
    if (!this.force) {
      throw new UserError(
        `${names.length} generated CRDs of the platform are left: ${names.join(', ')}; they are removed by ${who}`,
        ExitCode.Stuck,
        'start core-provider again, or re-run with --force --yes to remove these CRDs (every object of their kinds goes with them)',
      )
    }
    const cds = (await this.api('list CompositionDefinitions', () =>
      this.custom.listNamespacedCustomObject({
        group: CD_GROUP,
        version: CD_VERSION,
        namespace: this.namespace,
        plural: 'compositiondefinitions',
      }),
    )) as { items: KObj[] }
    const stillReported = new Set(cds.items.map((cd) => generatedCrdOf(cd)).filter((n): n is string => !!n))
    const ours = left.filter((w) => {
      if (!w.current) return false
      if ((w.current.spec as { group?: string } | undefined)?.group !== COMPOSITION_GROUP) return false
      if (stillReported.has(w.name)) return false
      // The CRD that was recorded, not another one made since under its name.
      const recorded = this.recordedUid('CustomResourceDefinition', w.name)
      return !recorded || recorded === w.current.metadata.uid
    })
    for (const w of left.filter((x) => !ours.includes(x)))
      report.line(`CRD ${w.name}: kept (not a generated composition CRD, or a definition still reports it)`)
    if (!ours.length) return
    // The uids as judged here: a watch may see a CRD go (current null) during the question or the loop.
    const targets = ours.map((w) => ({ name: w.name, uid: w.current!.metadata.uid }))
    if (
      !(await this.confirm(
        `remove the generated CRDs ${ours.map((w) => w.name).join(', ')} (core-provider, which would, is not running)?`,
      ))
    ) {
      throw new UserError(
        `${names.length} generated CRDs of the platform are left (${names.join(', ')}); they were kept`,
        ExitCode.Stuck,
        'start core-provider again, then re-run',
      )
    }
    for (const w of targets) {
      report.line(`--force: removing CRD ${w.name} (core-provider is not running)`)
      const removed = await this.api(`delete CRD ${w.name}`, () =>
        this.crdApi
          .deleteCustomResourceDefinition({ name: w.name, body: { preconditions: { uid: w.uid } } })
          .then(() => true)
          .catch((err) => {
            // Gone already, or another CRD of that name now (the uid precondition): neither is ours to remove.
            if (isNotFound(err)) return false
            if (statusOf(err) === 409) {
              report.line(`CRD ${w.name}: kept (replaced since it was judged the platform's)`)
              return false
            }
            throw err
          }),
      )
      if (removed) this.forced.push(`CustomResourceDefinition/${w.name} (core-provider was not running)`)
    }
  }

  /** The composition release's pre-delete Job, when it is what the Installer's removal waits on. */
  private async teardownHookState(): Promise<string> {
    const pods = await this.core
      .listNamespacedPod({ namespace: this.namespace, labelSelector: 'job-name=installer-ordered-teardown' })
      .catch(() => null)
    const pod = pods?.items[0]
    if (!pod) return ''
    const waiting = pod.status?.containerStatuses?.find((s) => s.state?.waiting)?.state?.waiting
    return `; teardown hook Job installer-ordered-teardown: pod ${pod.metadata?.name} ${waiting ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : (pod.status?.phase ?? '')}`
  }

  /**
   * The installer cdc uninstalls its release by building every object of the release's manifest; a kind whose
   * CRD is gone (a CompositionDefinition deleted by hand takes its CRD along) fails that build, and the Installer
   * would stay Terminating for good. A stand-in CRD serving that kind lets helm map it and find nothing to delete.
   */
  private async standInForLostKinds(installer: KObj, helm: Helm, report: StepReport): Promise<void> {
    const release = await this.compositionRelease(installer, helm)
    if (!release) return
    const manifest = parseAllDocuments(await helm.run(['get', 'manifest', release, '-n', this.namespace]))
      .map((d) => d.toJS() as KObj | null)
      .filter((o): o is KObj => !!o?.kind)
    const crds = await this.api('list CRDs', () => this.crdApi.listCustomResourceDefinition())
    for (const { kind, version } of lostKinds(manifest, crds.items)) {
      report.line(
        `the installer's release still lists ${kind} ${COMPOSITION_GROUP}/${version}, whose CRD is gone: a stand-in CRD lets helm uninstall it (removed right after)`,
      )
      const crd = standInCrd(kind, version, this.namespace)
      await this.api(`create the stand-in CRD ${crd.metadata!.name}`, () =>
        this.crdApi.createCustomResourceDefinition({ body: crd }).catch((err) => {
          if (statusOf(err) !== 409) throw err
        }),
      )
      const w = this.watchObject(CRD_COLLECTION, crd.metadata!.name!)
      try {
        await this.waitFor(
          `the stand-in CRD ${crd.metadata!.name} to be served`,
          async () => {
            const conditions = (w.current?.status as V1CustomResourceDefinition['status'] | undefined)?.conditions
            return conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : null
          },
          report,
          () => `waiting for the stand-in CRD ${crd.metadata!.name} to be established`,
          [w],
        )
      } finally {
        this.unwatch(w)
      }
    }
  }

  /** The helm release a cdc made for a Composition: the krateo.io/release-name label, else <name>-<8 chars of its uid> (contract section 3). */
  private async compositionRelease(obj: KObj, helm: Helm): Promise<string | null> {
    const preset = obj.metadata.labels?.['krateo.io/release-name']
    const releases = JSON.parse(
      (await helm.run(['list', '-n', this.namespace, ...helm.allStatuses(), '-o', 'json'])) || '[]',
    ) as { name: string }[]
    const prefix = `${obj.metadata.name}-`
    const found = releases.find((r) =>
      preset
        ? r.name === preset
        : r.name.startsWith(prefix) &&
          r.name.length === prefix.length + 8 &&
          (obj.metadata.uid ?? '').includes(r.name.slice(prefix.length)),
    )
    return found?.name ?? null
  }

  /** helm uninstall of the bootstrap release, whatever its name; hooks skipped (the steps before did their work). */
  async uninstallRelease(helm: Helm): Promise<string> {
    const release = this.record.release
    if (!release) return 'no bootstrap release found'
    const out = await helm.run([
      'list',
      '-n',
      this.namespace,
      '--filter',
      exactReleaseFilter(release),
      ...helm.allStatuses(),
      '-q',
    ])
    if (!out.trim()) return `${release} is not installed`
    await helm.run(['uninstall', release, '-n', this.namespace, '--no-hooks', '--wait'])
    return `${release} uninstalled (hooks skipped)`
  }

  /**
   * Stage 3: what nothing can recreate or finalize any more, and only what the record proves is ours: our
   * core-provider's webhook (once that core-provider is gone), the CRDs generated from our RestDefinitions,
   * our definitions' cdc bundles, the Secret this CLI wrote. Then the record says the sweep is complete.
   */
  async sweep(report: StepReport): Promise<string[]> {
    const removed: string[] = []
    const gone = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn()
        removed.push(what)
      } catch (err) {
        if (!isNotFound(err)) throw apiFailure(err, this.cluster, `delete ${what}`)
      }
    }
    const admission = this.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
    const orNull = (err: unknown) => {
      if (isNotFound(err)) return null
      throw apiFailure(err, this.cluster, 'read what the record names')
    }
    if (await this.coreProviderRunning())
      report.line(`core-provider still runs: its webhook ${this.record.webhooks.join(', ')} is kept`)
    else {
      for (const name of this.record.webhooks) {
        const live = (await admission.readMutatingWebhookConfiguration({ name }).catch(orNull)) as WebhookLike | null
        const label = `MutatingWebhookConfiguration/${name}`
        if (
          live &&
          (await this.deleteRecorded(
            label,
            live,
            this.recordedUid('MutatingWebhookConfiguration', name),
            this.provedWebhook(live),
            (uid) => admission.deleteMutatingWebhookConfiguration({ name, body: { preconditions: { uid } } }),
            report,
          ))
        )
          removed.push(label)
      }
      const instances = new Set(
        this.record.release ? [this.record.release, ...(this.inventory?.coreProviders ?? [])] : [],
      )
      for (const name of this.record.policies ?? []) {
        const live = await getPath<PolicyLike & KObj>(
          this.cluster,
          `${POLICY_API}/mutatingadmissionpolicies/${name}`,
        ).catch(orNull)
        const label = `MutatingAdmissionPolicy/${name}`
        if (!live) continue
        const proved = isPlatformPolicy(live, instances)
        const deleted = await this.deleteRecorded(
          label,
          live,
          this.recordedUid('MutatingAdmissionPolicy', name),
          proved,
          async (uid) => {
            // The binding has the policy's name and no meaning without it.
            await requestPath(this.cluster, 'DELETE', `${POLICY_API}/mutatingadmissionpolicybindings/${name}`).catch(
              orNull,
            )
            await requestPath(this.cluster, 'DELETE', `${POLICY_API}/mutatingadmissionpolicies/${name}`, {
              preconditions: { uid },
            })
          },
          report,
        )
        if (deleted) removed.push(`MutatingAdmissionPolicyBinding/${name}`, label)
      }
    }
    const restCrds: string[] = []
    if (this.record.restCrds.length) {
      // A CRD generated for a kind that a RestDefinition left in the cluster (not ours) still names stays.
      const rds = await this.custom
        .listClusterCustomObject({ group: 'ogen.krateo.io', version: 'v1alpha1', plural: 'restdefinitions' })
        .then((l) => (l as { items: KObj[] }).items)
        .catch((err) => {
          if (isNotFound(err)) return [] as KObj[]
          throw err
        })
      const crds = await this.api('list CRDs', () => this.crdApi.listCustomResourceDefinition())
      const stillNamed = new Set(restCrdsOf(rds as never, crds.items as never))
      for (const name of this.record.restCrds) {
        if (stillNamed.has(name)) {
          report.line(`CRD ${name} is still named by a RestDefinition that is not the platform's: kept`)
          continue
        }
        const live = crds.items.find((c) => c.metadata?.name === name) ?? null
        // Only the CRD that was recorded: nothing on a CRD itself says which RestDefinition made it.
        if (
          live &&
          (await this.deleteRecorded(
            `CustomResourceDefinition/${name}`,
            live,
            this.recordedUid('CustomResourceDefinition', name),
            false,
            (uid) => this.crdApi.deleteCustomResourceDefinition({ name, body: { preconditions: { uid } } }),
            report,
          ))
        ) {
          removed.push(`CustomResourceDefinition/${name}`)
          restCrds.push(name)
        }
      }
    }
    const rbac = this.cluster.kc.makeApiClient(RbacAuthorizationV1Api)
    const ns = this.namespace
    for (const base of this.record.bundles) {
      const before = removed.length
      await gone(`Deployment/${base}-controller`, () =>
        this.apps.deleteNamespacedDeployment({ name: `${base}-controller`, namespace: ns }),
      )
      await gone(`Service/${base}-controller-service`, () =>
        this.core.deleteNamespacedService({ name: `${base}-controller-service`, namespace: ns }),
      )
      await gone(`ServiceAccount/${base}`, () =>
        this.core.deleteNamespacedServiceAccount({ name: base, namespace: ns }),
      )
      for (const name of [base, `${base}-secret`]) {
        await gone(`Role/${name}`, () => rbac.deleteNamespacedRole({ name, namespace: ns }))
        await gone(`RoleBinding/${name}`, () => rbac.deleteNamespacedRoleBinding({ name, namespace: ns }))
      }
      await gone(`ConfigMap/${base}-configmap`, () =>
        this.core.deleteNamespacedConfigMap({ name: `${base}-configmap`, namespace: ns }),
      )
      await gone(`ConfigMap/${base}-jsonschema-configmap`, () =>
        this.core.deleteNamespacedConfigMap({ name: `${base}-jsonschema-configmap`, namespace: ns }),
      )
      // The cluster-wide half carries the same name in every platform: only when it binds our ServiceAccount.
      const binding = await rbac.readClusterRoleBinding({ name: base }).catch((err) => {
        if (isNotFound(err)) return null
        throw err
      })
      if (bindsOurServiceAccount(binding, base, ns)) {
        await gone(`ClusterRoleBinding/${base}`, () => rbac.deleteClusterRoleBinding({ name: base }))
        await gone(`ClusterRole/${base}`, () => rbac.deleteClusterRole({ name: base }))
      } else if (binding)
        report.line(`ClusterRoleBinding ${base} binds another namespace's ServiceAccount: not the platform's, kept`)
      if (removed.length > before) removed.splice(before, removed.length - before, `cdc bundle ${base}`)
    }
    for (const name of this.record.secrets) {
      const secret = await this.core.readNamespacedSecret({ name, namespace: ns }).catch((err) => {
        if (isNotFound(err)) return null
        throw err
      })
      if (secret?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US)
        await gone(`Secret/${name}`, () => this.core.deleteNamespacedSecret({ name, namespace: ns }))
    }
    // A CRD goes only once its instances are cleaned up: wait, so nothing is left Terminating.
    for (const name of restCrds) {
      await this.waitObjectGone(CRD_COLLECTION, name, `CRD ${name} to go`, report, () => `CRD ${name} is Terminating`)
    }
    this.record = mergeRecord(this.record, { completedAt: new Date().toISOString() })
    await this.api('write the teardown record', () => writeRecord(this.cluster, ns, this.record))
    report.line(removed.length ? `removed ${removed.join(', ')}` : 'nothing left to sweep')
    return removed
  }

  async saveRecord(): Promise<void> {
    await this.api('write the teardown record', () => writeRecord(this.cluster, this.namespace, this.record))
  }
}

const CRD_COLLECTION = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'

/** How waitGone treats one object: who clears its finalizers, what forcing may leave behind, what it reports. */
interface GoneWait {
  /** The CompositionDefinition whose cdc clears composition.krateo.io/finalizer. */
  cd?: KObj
  /** What may be left behind when its finalizers are forced. */
  orphans: string
  /** More to say about the wait (a hook Job's pod), asked at most every 5 s. */
  detail?: () => Promise<string>
  /** The progress line, given the finalizers left (default: the object's Terminating state). */
  progress?: (finalizers: string[]) => string
}

const targetOf = (ref: { group: string; version: string; namespace: string; plural: string; name: string }) => ({
  collection: `/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`,
  name: ref.name,
})

function terminatingText(obj: KObj, fins: string[]): string {
  const ready = conditionOf(obj, 'Ready')
  const failing = conditionOf(obj, 'Synced')?.status === 'False' ? conditionOf(obj, 'Synced')?.message : undefined
  return `Terminating (${ready?.reason ?? 'no status'}${ready?.message ? `: ${ready.message}` : ''}${failing ? `; ${failing}` : ''}; finalizers ${fins.join(', ') || 'none'})`
}

/** The collection a managed object lives in (its path without the name). */
function collectionOf(m: ManagedRef): string {
  return managedPath(m).replace(/\/[^/]+$/, '')
}
