// The one rule of what is the platform's own, shared by install, upgrade, uninstall and status. Users keep
// their own CompositionDefinitions, Compositions, CRDs, webhooks and apps beside the platform, and this CLI
// runs with cluster-admin rights: an object is ours only when a label, an owner or a name derived from our
// own release proves it. Everything else that looks related is listed as "not ours, kept" (foreign.ts). Pure functions.
import { parse } from 'yaml'
import { type Component, type InstallerSpec, parseComponents } from './components.js'
import type { KObj } from './kobj.js'
import { type Observed, crdServes, isStuckCreate } from './objects.js'

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
/** The value the installer chart (and this CLI) sets on the CompositionDefinitions it renders. */
export const MANAGED_BY_US = 'krateo-installer'
/** helm's own record of which release an object belongs to (helm 3.2+ and 4 set it on every object they create). */
export const HELM_RELEASE_ANNOTATION = 'meta.helm.sh/release-name'
export const HELM_NAMESPACE_ANNOTATION = 'meta.helm.sh/release-namespace'
export const INSTALLER_NAME = 'installer'
export const COMPOSITION_GROUP = 'composition.krateo.io'
export const CORE_PROVIDER_WEBHOOK = 'core.provider.krateo.io'

/** The bootstrap release that rendered this installer-self-cr ConfigMap, from helm's annotation; null when unknown. */
export function bootstrapReleaseOf(selfCr: KObj | null | undefined): string | null {
  const ann = selfCr?.metadata.annotations ?? {}
  return ann[HELM_RELEASE_ANNOTATION] ?? null
}

/**
 * The platform's component list: the live Installer CR's, else the one the bootstrap release rendered into the
 * installer-self-cr ConfigMap (the Installer may be gone half-way through an uninstall). Empty when neither says.
 */
export function platformComponents(installer: KObj | null, selfCr: KObj | null): Component[] {
  if (installer?.spec) return safeComponents(installer.spec as InstallerSpec)
  const text = (selfCr as (KObj & { data?: Record<string, string> }) | null)?.data?.['installer.yaml']
  if (!text) return []
  try {
    return safeComponents(((parse(text) as KObj | null)?.spec ?? {}) as InstallerSpec)
  } catch {
    return []
  }
}

/** The components of a spec, a malformed entry (a runtime edit gone wrong) left out rather than thrown on. */
export function safeComponents(spec: InstallerSpec): Component[] {
  try {
    return parseComponents(spec)
  } catch {
    // A malformed entry must not widen what counts as ours: keep only well-formed ones.
    return (spec.components ?? [])
      .filter((c) => c.name && c.kind && c.version)
      .map((c) => ({ ...c, name: c.name!, kind: c.kind!, version: String(c.version), deps: c.deps ?? [] }))
  }
}

/**
 * Whether a helm release name is the installer cdc's release of this Installer CR: the cdc's
 * krateo.io/release-name label when it wrote one, else `installer-` and 8 characters from the CR's uid.
 */
export function isInstallerRelease(release: string | undefined, installer: KObj | null): boolean {
  if (!release || !installer) return false
  const preset = installer.metadata.labels?.['krateo.io/release-name']
  if (preset) return release === preset
  const prefix = `${installer.metadata.name}-`
  return release.startsWith(prefix) && release.length === prefix.length + 8
}

/**
 * A CompositionDefinition is the platform's when its name is the installer's own or one of the platform's
 * components AND it proves where it came from: the installer chart's label (the installer CD, which this CLI or
 * the chart's hook applies), or helm's record that the installer cdc's release rendered it (helm replaces the
 * chart's managed-by label with "Helm" on what it renders). A user's blueprint has neither.
 */
export function isPlatformDefinition(
  cd: KObj,
  componentNames: ReadonlySet<string>,
  installer: KObj | null = null,
): boolean {
  if (cd.metadata.name !== INSTALLER_NAME && !componentNames.has(cd.metadata.name)) return false
  return renderedByInstaller(cd, installer)
}

/** The object carries the installer chart's label, or helm's record that the installer cdc's release rendered it. */
export function renderedByInstaller(obj: KObj, installer: KObj | null): boolean {
  if (obj.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US) return true
  const ann = obj.metadata.annotations ?? {}
  return (
    ann[HELM_NAMESPACE_ANNOTATION] === obj.metadata.namespace &&
    isInstallerRelease(ann[HELM_RELEASE_ANNOTATION], installer)
  )
}

/**
 * The objects whose controller lost a create result and which are the platform's to heal: the Installer, the
 * definitions the installer rendered and their Compositions. A user's definition blocked the same way is theirs to
 * fix (review N19). Each with its plural; a Composition's is what its definition reported. Pure.
 */
export function healableStuckCreates(o: Observed): { obj: KObj; plural: string }[] {
  const names = new Set(safeComponents((o.installer?.spec ?? {}) as InstallerSpec).map((c) => c.name))
  const ours = (cd: KObj | undefined): cd is KObj => !!cd && isPlatformDefinition(cd, names, o.installer)
  const out: { obj: KObj; plural: string }[] = []
  if (isStuckCreate(o.installer)) out.push({ obj: o.installer!, plural: 'installers' })
  for (const cd of o.cds.values())
    if (ours(cd) && isStuckCreate(cd)) out.push({ obj: cd, plural: 'compositiondefinitions' })
  for (const c of platformCompositions(o)) if (isStuckCreate(c.obj)) out.push(c)
  return out
}

/** The component Compositions whose definition is the platform's, each with the plural its definition reported. */
function platformCompositions(o: Observed): { obj: KObj; plural: string }[] {
  const names = new Set(safeComponents((o.installer?.spec ?? {}) as InstallerSpec).map((c) => c.name))
  const out: { obj: KObj; plural: string }[] = []
  for (const comp of o.compositions.values()) {
    const cd = o.cds.get(comp.metadata.name)
    if (cd && isPlatformDefinition(cd, names, o.installer) && cd.status?.resource)
      out.push({ obj: comp, plural: String(cd.status.resource) })
  }
  return out
}

/** A kind chart-inspector could not map when it rendered a component's chart. */
export interface MissedKind {
  obj: KObj
  plural: string
  group: string
  version: string
  kind: string
}

// helm's words when the API server's discovery (as chart-inspector last read it) lacks a kind the chart renders;
// inside chart-inspector's JSON answer the quotes come escaped.
const NO_MATCH =
  /chart-inspector[\s\S]*no matches for kind \\?"([^"\\]+)\\?" in version \\?"(?:([^"\\/]+)\/)?([^"\\]+)\\?"/

/**
 * The platform's Compositions whose cdc failed because chart-inspector did not know a kind of their chart
 * (chart-inspector 0.2.0 reads discovery again only on a CRD add, delete or spec change, so a read between a
 * CRD's add and the moment it is served leaves the kind out until the next CRD event). Pure.
 */
export function chartInspectorMisses(o: Observed): MissedKind[] {
  const out: MissedKind[] = []
  for (const c of platformCompositions(o)) {
    const conditions = (c.obj.status?.conditions as { message?: string }[] | undefined) ?? []
    for (const cond of conditions) {
      const m = NO_MATCH.exec(cond.message ?? '')
      if (m) {
        out.push({ ...c, kind: m[1]!, group: m[2] ?? '', version: m[3]! })
        break
      }
    }
  }
  return out
}

/** Whether this CRD defines the kind in that group and serves that version, established (the API server serves it). */
export function crdServesKind(crd: KObj, group: string, kind: string, version: string): boolean {
  const spec = (crd.spec ?? {}) as { group?: string; names?: { kind?: string } }
  const established = ((crd.status?.conditions as { type: string; status: string }[] | undefined) ?? []).some(
    (c) => c.type === 'Established' && c.status === 'True',
  )
  return spec.group === group && spec.names?.kind === kind && established && crdServes(crd, version)
}

export function partitionDefinitions(
  cds: Iterable<KObj>,
  componentNames: ReadonlySet<string>,
  installer: KObj | null = null,
): { ours: KObj[]; foreign: KObj[] } {
  const ours: KObj[] = []
  const foreign: KObj[] = []
  for (const cd of cds) (isPlatformDefinition(cd, componentNames, installer) ? ours : foreign).push(cd)
  return { ours, foreign }
}

/** The CRD core-provider generated for a CompositionDefinition, from what it reported (null until it has). */
export function generatedCrdOf(cd: KObj): string | null {
  const resource = cd.status?.resource as string | undefined
  return resource ? `${resource}.${COMPOSITION_GROUP}` : null
}

export interface WebhookLike {
  metadata?: { name?: string; uid?: string; annotations?: Record<string, string>; labels?: Record<string, string> }
  webhooks?: { name: string; clientConfig?: { service?: { namespace?: string; name?: string }; url?: string } }[]
}

export function isCoreProviderWebhook(mwc: WebhookLike): boolean {
  return (mwc.webhooks ?? []).some((w) => w.name === CORE_PROVIDER_WEBHOOK)
}

/**
 * The webhook of this platform's core-provider: a core-provider webhook that calls a Service in our namespace,
 * or, called by URL, is named after (or annotated with) the core-provider instance of our bootstrap release.
 * Another platform's webhook, calling a Service in another namespace, never matches, whatever its name.
 */
export function isPlatformWebhook(mwc: WebhookLike, namespace: string, ourInstances: ReadonlySet<string>): boolean {
  if (!isCoreProviderWebhook(mwc)) return false
  // Where it calls a Service, that Service's namespace decides: only cluster admins write the configuration, while
  // the instance names below come from Deployments a namespace user can make (review N14).
  const services = (mwc.webhooks ?? [])
    .filter((w) => w.name === CORE_PROVIDER_WEBHOOK)
    .map((w) => w.clientConfig?.service?.namespace)
  if (services.some((ns) => ns !== undefined)) return services.every((ns) => ns === namespace)
  // A webhook called by URL (the simulator's) says nothing of a namespace: its name or helm's record must.
  const ann = mwc.metadata?.annotations ?? {}
  if (ann[HELM_NAMESPACE_ANNOTATION] === namespace && ourInstances.has(ann[HELM_RELEASE_ANNOTATION] ?? '')) return true
  return ourInstances.has(mwc.metadata?.name ?? '')
}

export const POLICY_API = '/apis/admissionregistration.k8s.io/v1'

export interface PolicyLike {
  metadata?: { name?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  spec?: { matchConstraints?: { resourceRules?: { apiGroups?: string[] }[] } }
}

/**
 * Gen N's version stamp: a MutatingAdmissionPolicy of core-provider for composition.krateo.io, ours when its
 * core-provider instance (label or helm release annotation) is one of our bootstrap release's.
 */
export function isPlatformPolicy(p: PolicyLike, ourInstances: ReadonlySet<string>): boolean {
  const labels = p.metadata?.labels ?? {}
  if (labels['app.kubernetes.io/name'] !== 'core-provider') return false
  if (
    !(p.spec?.matchConstraints?.resourceRules ?? []).some((r) => (r.apiGroups ?? []).includes('composition.krateo.io'))
  )
    return false
  return (
    ourInstances.has(labels['app.kubernetes.io/instance'] ?? '') ||
    ourInstances.has(p.metadata?.annotations?.[HELM_RELEASE_ANNOTATION] ?? '')
  )
}

/** A Deployment of core-provider that belongs to our bootstrap release (helm's annotation, or its instance label). */
export function isOurCoreProvider(d: KObj, release: string): boolean {
  if (d.metadata.labels?.['app.kubernetes.io/name'] !== 'core-provider') return false
  const ann = d.metadata.annotations ?? {}
  return ann[HELM_RELEASE_ANNOTATION] === release || d.metadata.labels?.['app.kubernetes.io/instance'] === release
}

export interface ManagedRef {
  apiVersion: string
  resource: string
  name: string
  namespace?: string
}

/** RestDefinitions the platform's own releases created: those its Compositions list in status.managed. */
export function restDefinitionsOf(compositions: Iterable<KObj>): ManagedRef[] {
  const out: ManagedRef[] = []
  for (const c of compositions) {
    for (const m of (c.status?.managed as ManagedRef[] | undefined) ?? []) {
      if (m.resource === 'restdefinitions' && m.apiVersion?.startsWith('ogen.krateo.io/')) out.push(m)
    }
  }
  return out
}

export interface CrdLike {
  metadata?: { name?: string; uid?: string }
  spec: { group: string; names: { kind: string } }
}
export interface RestDefinitionLike {
  spec?: { resourceGroup?: string; resource?: { kind?: string } }
}

/** The CRDs oasgen-provider generated from these RestDefinitions: same group and kind. */
export function restCrdsOf(rds: RestDefinitionLike[], crds: CrdLike[]): string[] {
  const wanted = new Set(rds.map((r) => `${r.spec?.resourceGroup}/${r.spec?.resource?.kind}`))
  return crds.filter((c) => wanted.has(`${c.spec.group}/${c.spec.names.kind}`)).map((c) => c.metadata!.name!)
}

/** What to do with an object an earlier proof (the record) names, judged on the live object at the write. */
export type RecordedVerdict = { act: true; uid: string } | { act: false; gone: boolean; reason: string }

/**
 * A recorded object is acted on only as itself: the live object of that name must be the one whose uid was
 * recorded, or be proved the platform's again now (`provedNow`). Anything else (made again since by someone
 * else, or recorded without a uid and not provable) is kept and named. Pure.
 */
export function recordedVerdict(
  live: { metadata?: { uid?: string } } | null | undefined,
  recordedUid: string | undefined,
  provedNow: boolean,
): RecordedVerdict {
  const uid = live?.metadata?.uid
  if (!live || !uid) return { act: false, gone: true, reason: 'gone' }
  if (recordedUid && uid === recordedUid) return { act: true, uid }
  if (provedNow) return { act: true, uid }
  return {
    act: false,
    gone: false,
    reason: recordedUid
      ? "made again since it was recorded, and not proved the platform's now: kept"
      : "not proved the platform's on the object itself: kept",
  }
}
