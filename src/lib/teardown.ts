// uninstall: the three-stage teardown of contract section 1, done by the CLI as visible steps:
// 1. ordered drain (Installer paused, Compositions deleted consumers first while every provider lives),
// 2. bootstrap teardown (Installer CR and CompositionDefinitions while core-provider lives, then helm
//    uninstall of the bootstrap release with its hooks skipped), 3. the post-delete sweep.
import { AdmissionregistrationV1Api, ApiextensionsV1Api, AppsV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, PatchStrategy, type V1CustomResourceDefinition, setHeaderOptions } from '@kubernetes/client-node'
import { parseAllDocuments } from 'yaml'
import { type Cluster, apiFailure, getPath, isNotFound, statusOf } from './cluster.js'
import { ExitCode, UserError } from './errors.js'
import { type Component, dependentsOf } from './components.js'
import { type KObj, conditionOf } from './state.js'
import { COMPOSITION_GROUP, CD_GROUP, CD_VERSION } from './observe.js'
import { BOOTSTRAP_RELEASE } from './chart.js'
import type { Helm } from './helm.js'
import type { StepReport } from './progress.js'
import type { Interrupt } from './interrupt.js'
import { mergePatchCustom, refOf, restartDeployment } from './kube-write.js'

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

/** Components whose Composition can go now: none of their dependents' Compositions is left. Pure. */
export function deletableNow(components: Component[], remaining: Set<string>): string[] {
  return [...remaining].filter((name) => !dependentsOf(name, components).some((d) => remaining.has(d.name)))
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

/** Kinds a provider finalizes that must be gone before that provider is deleted (contract section 1). */
export const MUST_DRAIN_BEFORE: Record<string, { group: string; version: string; plural: string }[]> = {
  'oasgen-provider': [{ group: 'ogen.krateo.io', version: 'v1alpha1', plural: 'restdefinitions' }],
}

/** Who should clear a finalizer, for the message that names a stuck object. */
export function finalizerOwner(finalizer: string, component?: string): string {
  if (finalizer === 'composition.krateo.io/finalizer') return `the cdc of ${component ?? 'its kind'} (Deployment <plural>-<version>-controller)`
  if (finalizer === 'finalizer.managedresource.krateo.io') return 'core-provider'
  return `the controller of ${finalizer.split('/')[0]}`
}

/** Label of the CRDs uninstall creates only so helm can uninstall a release listing a kind whose CRD is gone. */
export const STAND_IN_LABEL = 'krateo-installer/stand-in'

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
export function standInCrd(kind: string, version: string): V1CustomResourceDefinition {
  const plural = `${kind.toLowerCase()}standins`
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${COMPOSITION_GROUP}`, labels: { 'app.kubernetes.io/managed-by': 'krateo-installer', [STAND_IN_LABEL]: 'true' } },
    spec: {
      group: COMPOSITION_GROUP, scope: 'Namespaced',
      names: { kind, plural, singular: `${kind.toLowerCase()}standin`, listKind: `${kind}List` },
      versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } } }],
    },
  }
}

export interface ManagedRef { apiVersion: string; resource: string; name: string; namespace?: string }

export class Teardown {
  private core: CoreV1Api
  private apps: AppsV1Api
  private custom: CustomObjectsApi
  private crdApi: ApiextensionsV1Api

  constructor(private cluster: Cluster, private namespace: string, private interrupt: Interrupt, private deadline: number, private force: boolean, private command = 'uninstall') {
    this.core = cluster.kc.makeApiClient(CoreV1Api)
    this.apps = cluster.kc.makeApiClient(AppsV1Api)
    this.custom = cluster.kc.makeApiClient(CustomObjectsApi)
    this.crdApi = cluster.kc.makeApiClient(ApiextensionsV1Api)
  }

  private check(): void {
    if (this.interrupt.requested) throw this.interrupt.error()
  }

  private async api<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof UserError) throw err
      throw apiFailure(err, this.cluster, doing)
    }
  }

  /** Pauses the Installer so Pass B cannot re-create what is being deleted, and makes its cdc see the pause now. */
  async pauseInstaller(installer: KObj, installerCD: KObj | undefined, report: StepReport): Promise<string> {
    const ref = refOf(installer, 'installers')
    if (installer.metadata.annotations?.['krateo.io/paused'] !== 'true') {
      await this.api('pause the Installer CR', () => mergePatchCustom(this.cluster, ref, { metadata: { annotations: { 'krateo.io/paused': 'true' } } }))
    }
    // An annotation-only change waits for the cdc's next resync; a restarted cdc observes at once.
    const version = (installerCD?.status?.apiVersion as string | undefined)?.split('/')[1]
    if (version && installerCD?.status?.resource) {
      await this.api("restart the installer's cdc", () => restartDeployment(this.cluster, this.namespace, `${installerCD.status!.resource}-${version}-controller`))
    }
    return await this.waitFor('the installer cdc to report the pause', async () => {
      const fresh = await this.custom.getNamespacedCustomObject(ref) as KObj
      const synced = conditionOf(fresh, 'Synced')
      return synced?.reason === 'ReconcilePaused' ? 'paused (Synced=False ReconcilePaused)' : null
    }, report, () => 'waiting for the installer cdc to observe the pause')
  }

  async waitFor<T>(what: string, probe: () => Promise<T | null>, report: StepReport, why: () => string, everyMs = 500): Promise<T> {
    for (;;) {
      this.check()
      const value = await this.api(`wait for ${what}`, probe)
      if (value !== null && value !== undefined) return value
      if (Date.now() > this.deadline) throw new UserError(`timed out waiting for ${what}: ${why()}`, ExitCode.Timeout, `re-run ${this.command} to continue, or raise --timeout`)
      report.line(why())
      await new Promise((r) => setTimeout(r, everyMs))
    }
  }

  /** Deletes one component's Composition and waits until it and every object it managed are gone. */
  async drainComposition(c: Component, obj: KObj, plural: string, report: StepReport): Promise<void> {
    for (const kind of MUST_DRAIN_BEFORE[c.name] ?? []) {
      await this.waitFor(`${kind.plural}.${kind.group} to drain before ${c.name}`, async () => {
        try {
          const list = await this.custom.listClusterCustomObject({ group: kind.group, version: kind.version, plural: kind.plural }) as { items: KObj[] }
          return list.items.length === 0 ? true : null
        } catch (err) {
          if (isNotFound(err)) return true
          throw err
        }
      }, report, () => `${c.name}: waiting for ${kind.plural}.${kind.group} to be gone while ${c.name} can still finalize them`)
    }
    const managed = (obj.status?.managed as ManagedRef[] | undefined) ?? []
    const [group, version] = obj.apiVersion!.split('/') as [string, string]
    const ref = { group, version, namespace: this.namespace, plural, name: c.name }
    if (!obj.metadata.deletionTimestamp) await this.api(`delete ${c.name}`, () => this.custom.deleteNamespacedCustomObject(ref).catch((err) => { if (!isNotFound(err)) throw err }))
    report.line(`${c.name}: deleting`)
    if ((await this.waitStuckAware(c, ref, report)) === 'forced') {
      report.line(`${c.name}: gone (forced: the objects of its release may be left behind: ${managed.map((m) => `${m.resource}/${m.name}`).join(', ') || 'none recorded'})`)
      return
    }
    // The release's own objects (the portal's pages, a provider's RestDefinitions) are finalized by
    // controllers that are still alive now; wait for them before their providers go.
    for (const m of managed) {
      await this.waitFor(`${m.resource}/${m.name} of ${c.name} to be gone`, async () => (await this.getManaged(m)) ? null : true, report,
        () => `${c.name}: waiting for ${m.resource}/${m.name} (released by helm uninstall) to be finalized`)
    }
    report.line(`${c.name}: gone`)
  }

  private async getManaged(m: ManagedRef): Promise<KObj | null> {
    const prefix = m.apiVersion.includes('/') ? `/apis/${m.apiVersion}` : `/api/${m.apiVersion}`
    return getPath(this.cluster, `${prefix}${m.namespace ? `/namespaces/${m.namespace}` : ''}/${m.resource}/${m.name}`)
  }

  /** Waits for a composition to disappear; names the finalizer and who should clear it when it does not. */
  private async waitStuckAware(c: Component, ref: { group: string; version: string; namespace: string; plural: string; name: string }, report: StepReport): Promise<'gone' | 'forced'> {
    const started = Date.now()
    let forced = false
    for (;;) {
      this.check()
      let obj: KObj | null
      try {
        obj = await this.custom.getNamespacedCustomObject(ref) as KObj
      } catch (err) {
        if (isNotFound(err)) return forced ? 'forced' : 'gone'
        throw apiFailure(err, this.cluster, `read ${c.name}`)
      }
      const fins = obj.metadata.finalizers ?? []
      const ready = conditionOf(obj, 'Ready')
      const failing = conditionOf(obj, 'Synced')?.status === 'False' ? conditionOf(obj, 'Synced')?.message : undefined
      report.line(`${c.name}: Terminating (${ready?.reason ?? 'no status'}${ready?.message ? `: ${ready.message}` : ''}${failing ? `; ${failing}` : ''}; finalizers ${fins.join(', ') || 'none'})`)
      if (Date.now() > this.deadline || (this.force && Date.now() - started > 15_000)) {
        const who = fins.map((f) => `${f} (cleared by ${finalizerOwner(f, c.name)})`).join(', ')
        if (!this.force) {
          throw new UserError(`${c.kind}/${c.name} is stuck Terminating on finalizer ${who}`, ExitCode.Stuck,
            'start that controller again, or re-run with --force to remove the finalizer (the release it manages may be left behind)')
        }
        report.line(`--force: removing finalizers of ${c.kind}/${c.name}: ${who}`)
        forced = true
        await this.api(`remove the finalizers of ${c.name}`, () => this.custom.patchNamespacedCustomObject({ ...ref, body: { metadata: { finalizers: null } } }, mergePatch))
      }
      await new Promise((r) => setTimeout(r, 500))
    }
  }

  async deleteInstallerAndDefinitions(installer: KObj | null, helm: Helm, report: StepReport): Promise<string> {
    if (installer) {
      const ref = refOf(installer, 'installers')
      await this.standInForLostKinds(installer, helm, report)
      await this.api('delete the Installer CR', () => this.custom.deleteNamespacedCustomObject(ref).catch((err) => { if (!isNotFound(err)) throw err }))
      // A paused Composition being deleted stays Terminating until the pause goes; that update of a
      // deleting object is handled at once.
      await this.api('unpause the Installer CR', () => mergePatchCustom(this.cluster, ref, { metadata: { annotations: { 'krateo.io/paused': null } } }).catch((err) => { if (!isNotFound(err)) throw err }))
      const asComponent: Component = { name: installer.metadata.name, kind: installer.kind ?? 'Installer', version: ref.version, deps: [] }
      if ((await this.waitStuckAware(asComponent, ref, report)) === 'forced') report.line('the Installer CR is gone (forced: its release record may be left behind)')
    }
    const standIns = await this.api('list stand-in CRDs', () => this.crdApi.listCustomResourceDefinition({ labelSelector: `${STAND_IN_LABEL}=true` }))
    for (const crd of standIns.items) {
      await this.api(`delete the stand-in CRD ${crd.metadata!.name}`, () => this.crdApi.deleteCustomResourceDefinition({ name: crd.metadata!.name! }).catch((err) => { if (!isNotFound(err)) throw err }))
    }
    const cds = async () => ((await this.custom.listNamespacedCustomObject({ group: CD_GROUP, version: CD_VERSION, namespace: this.namespace, plural: 'compositiondefinitions' })) as { items: KObj[] }).items
    for (const cd of await this.api('list CompositionDefinitions', cds)) {
      if (!cd.metadata.deletionTimestamp) {
        await this.api(`delete CompositionDefinition ${cd.metadata.name}`, () => this.custom.deleteNamespacedCustomObject({ group: CD_GROUP, version: CD_VERSION, namespace: this.namespace, plural: 'compositiondefinitions', name: cd.metadata.name }).catch((err) => { if (!isNotFound(err)) throw err }))
      }
    }
    await this.waitFor('every CompositionDefinition and generated CRD to go', async () => {
      const left = await cds()
      const crds = (await this.crdApi.listCustomResourceDefinition()).items.filter((c) => c.spec.group === COMPOSITION_GROUP)
      if (left.length === 0 && crds.length === 0) return true
      report.line(`core-provider is removing ${left.length} CompositionDefinitions and ${crds.length} generated CRDs`)
      return null
    }, report, () => 'waiting for core-provider to remove the CompositionDefinitions and their CRDs')
    return 'no CompositionDefinition and no generated CRD left'
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
      .map((d) => d.toJS() as KObj | null).filter((o): o is KObj => !!o?.kind)
    const crds = await this.api('list CRDs', () => this.crdApi.listCustomResourceDefinition())
    for (const { kind, version } of lostKinds(manifest, crds.items)) {
      report.line(`the installer's release still lists ${kind} ${COMPOSITION_GROUP}/${version}, whose CRD is gone: a stand-in CRD lets helm uninstall it (removed right after)`)
      const crd = standInCrd(kind, version)
      await this.api(`create the stand-in CRD ${crd.metadata!.name}`, () => this.crdApi.createCustomResourceDefinition({ body: crd }).catch((err) => { if (statusOf(err) !== 409) throw err }))
      await this.waitFor(`the stand-in CRD ${crd.metadata!.name} to be served`, async () => {
        const live = await this.crdApi.readCustomResourceDefinition({ name: crd.metadata!.name! })
        return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : null
      }, report, () => `waiting for the stand-in CRD ${crd.metadata!.name} to be established`)
    }
  }

  /** The helm release a cdc made for a Composition: the krateo.io/release-name label, else <name>-<8 chars of its uid> (contract section 3). */
  private async compositionRelease(obj: KObj, helm: Helm): Promise<string | null> {
    const preset = obj.metadata.labels?.['krateo.io/release-name']
    const releases = JSON.parse(await helm.run(['list', '-n', this.namespace, ...helm.allStatuses(), '-o', 'json']) || '[]') as { name: string }[]
    const prefix = `${obj.metadata.name}-`
    const found = releases.find((r) => preset ? r.name === preset : r.name.startsWith(prefix) && r.name.length === prefix.length + 8 && (obj.metadata.uid ?? '').includes(r.name.slice(prefix.length)))
    return found?.name ?? null
  }

  async uninstallRelease(helm: Helm): Promise<string> {
    const out = await helm.run(['list', '-n', this.namespace, '--filter', `^${BOOTSTRAP_RELEASE}$`, ...helm.allStatuses(), '-q'])
    if (!out.trim()) return 'not installed'
    await helm.run(['uninstall', BOOTSTRAP_RELEASE, '-n', this.namespace, '--no-hooks', '--wait'])
    return 'uninstalled (hooks skipped)'
  }

  /** What nothing can recreate or finalize any more. */
  async sweep(report: StepReport): Promise<string[]> {
    const removed: string[] = []
    const admission = this.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
    const hooks = await this.api('list webhooks', () => admission.listMutatingWebhookConfiguration())
    for (const h of hooks.items) {
      if ((h.webhooks ?? []).some((w) => w.name === 'core.provider.krateo.io')) {
        await this.api(`delete MutatingWebhookConfiguration ${h.metadata!.name}`, () => admission.deleteMutatingWebhookConfiguration({ name: h.metadata!.name! }))
        removed.push(`MutatingWebhookConfiguration/${h.metadata!.name}`)
      }
    }
    const crds = await this.api('list CRDs', () => this.crdApi.listCustomResourceDefinition())
    for (const crd of crds.items) {
      if (crd.spec.group.endsWith('.hyperdx.krateo.io') || crd.spec.group === 'hyperdx.krateo.io') {
        await this.api(`delete CRD ${crd.metadata!.name}`, () => this.crdApi.deleteCustomResourceDefinition({ name: crd.metadata!.name! }))
        removed.push(`CustomResourceDefinition/${crd.metadata!.name}`)
      }
    }
    // cdc bundles are named after <plural>-v<dashed version> (contract section 2).
    const cms = await this.api('list ConfigMaps', () => this.core.listNamespacedConfigMap({ namespace: this.namespace }).catch((err) => { if (isNotFound(err)) return { items: [] }; throw err }))
    const rbac = this.cluster.kc.makeApiClient(RbacAuthorizationV1Api)
    for (const cm of cms.items) {
      const m = /^(.+-v\d+-\d+-\d+)-configmap$/.exec(cm.metadata!.name!)
      if (!m) continue
      const base = m[1]!
      const ns = this.namespace
      const gone = async (fn: () => Promise<unknown>) => { try { await fn() } catch (err) { if (!isNotFound(err)) throw err } }
      await this.api(`delete the cdc bundle ${base}`, async () => {
        await gone(() => this.apps.deleteNamespacedDeployment({ name: `${base}-controller`, namespace: ns }))
        await gone(() => this.core.deleteNamespacedServiceAccount({ name: base, namespace: ns }))
        await gone(() => rbac.deleteClusterRole({ name: base }))
        await gone(() => rbac.deleteClusterRoleBinding({ name: base }))
        await gone(() => rbac.deleteNamespacedRole({ name: base, namespace: ns }))
        await gone(() => rbac.deleteNamespacedRoleBinding({ name: base, namespace: ns }))
        await gone(() => this.core.deleteNamespacedConfigMap({ name: `${base}-configmap`, namespace: ns }))
        await gone(() => this.core.deleteNamespacedConfigMap({ name: `${base}-jsonschema-configmap`, namespace: ns }))
      })
      removed.push(`cdc bundle ${base}`)
    }
    // A CRD goes only once its instances are cleaned up: wait, so nothing is left Terminating.
    for (const name of removed.filter((r) => r.startsWith('CustomResourceDefinition/')).map((r) => r.split('/')[1]!)) {
      await this.waitFor(`CRD ${name} to go`, async () => (await this.crdApi.readCustomResourceDefinition({ name }).catch((err) => { if (isNotFound(err)) return null; throw err })) ? null : true,
        report, () => `CRD ${name} is Terminating`)
    }
    report.line(removed.length ? `removed ${removed.join(', ')}` : 'nothing left to sweep')
    return removed
  }

  /** What is left on purpose, and the commands that remove it. */
  async residue(): Promise<{ what: string; command: string; dataLoss: boolean }[]> {
    const out: { what: string; command: string; dataLoss: boolean }[] = []
    const ns = await this.core.readNamespace({ name: this.namespace }).catch((err) => { if (isNotFound(err)) return null; throw err })
    if (ns && !ns.metadata?.deletionTimestamp) {
      const pvcs = await this.core.listNamespacedPersistentVolumeClaim({ namespace: this.namespace })
      for (const p of pvcs.items) out.push({ what: `PersistentVolumeClaim ${this.namespace}/${p.metadata!.name} (its data is lost when deleted)`, command: `kubectl delete pvc ${p.metadata!.name} -n ${this.namespace}`, dataLoss: true })
      out.push({ what: `Namespace ${this.namespace}`, command: `kubectl delete namespace ${this.namespace}`, dataLoss: false })
    }
    const crds = await this.crdApi.listCustomResourceDefinition()
    for (const crd of crds.items) {
      if (crd.metadata!.name === `compositiondefinitions.${CD_GROUP}`) out.push({ what: `CustomResourceDefinition ${crd.metadata!.name} (from core-provider's crds/ directory)`, command: `kubectl delete crd ${crd.metadata!.name}`, dataLoss: false })
    }
    return out
  }

  async purge(items: { what: string; command: string }[], report: StepReport): Promise<void> {
    for (const item of items) {
      const [, kind, name, ns] = /^kubectl delete (pvc|namespace|crd) (\S+)(?: -n (\S+))?$/.exec(item.command) ?? []
      if (kind === 'pvc') await this.api(`delete ${item.what}`, () => this.core.deleteNamespacedPersistentVolumeClaim({ name: name!, namespace: ns! }))
      if (kind === 'crd') await this.api(`delete ${item.what}`, () => this.crdApi.deleteCustomResourceDefinition({ name: name! }))
      if (kind === 'namespace') {
        await this.api(`delete ${item.what}`, () => this.core.deleteNamespace({ name: name! }))
        await this.waitFor(`namespace ${name} to go`, async () => (await this.core.readNamespace({ name: name! }).catch((err) => { if (isNotFound(err)) return null; throw err })) ? null : true, report, () => `namespace ${name} is Terminating`)
      }
      report.line(`deleted: ${item.what}`)
    }
  }
}
