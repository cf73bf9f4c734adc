// What of a namespace is the platform's, and what only looks like it: read once at the start of uninstall
// (and by upgrade and status through the same rules in ownership.ts), before anything is deleted.
import { AdmissionregistrationV1Api, AppsV1Api } from '@kubernetes/client-node'
import { type Cluster, getPath, isNotFound, readFailure, statusOf } from '../cluster/cluster.js'
import { BOOTSTRAP_RELEASE } from '../cluster/chart.js'
import { proveBootstrapRelease } from '../cluster/release-proof.js'
import { SELF_CR_CONFIGMAP } from '../cluster/observe.js'
import type { Component } from '../platform/components.js'
import { type Helm, exactReleaseFilter } from '../cluster/helm.js'
import { ExitCode, UserError, printable } from '../platform/errors.js'
import {
  type ConvertingCrdLike,
  type InstanceRef,
  type ManagedRef,
  type StatefulSetClaims,
  foreignInstances,
  type WebhookLike,
  bootstrapReleaseOf,
  bundleBaseOf,
  generatedCrdOf,
  isCoreProviderWebhook,
  isOurCoreProvider,
  isPlatformPolicy,
  isPlatformWebhook,
  MANAGED_BY_LABEL,
  type PolicyLike,
  POLICY_API,
  MANAGED_BY_US,
  partitionDefinitions,
  platformComponents,
  restCrdsOf,
  restDefinitionsOf,
  unreadableWithoutCoreProvider,
} from '../platform/ownership.js'
import { type KObj } from '../platform/kobj.js'
import { type Observed } from '../platform/objects.js'
import { type Stage } from '../platform/component-state.js'
import { platformState } from '../platform/state.js'
import { type TeardownRecord, mergeRecord, emptyRecord, readRecord, uidKey } from '../cluster/teardown-record.js'

export const REGISTRY_SECRET = 'krateo-registry-auth'

export interface ReleaseInfo {
  name: string
  status: string
  chart: string
}

export interface Inventory {
  namespace: string
  /** The bootstrap release: found from helm's annotation on installer-self-cr, the record, or our default name. */
  release: ReleaseInfo | null
  components: Component[]
  installer: KObj | null
  /** The platform's component Compositions, by component name. */
  compositions: Map<string, KObj>
  /** core-provider Deployments of our bootstrap release. */
  coreProviders: string[]
  definitions: KObj[]
  foreignDefinitions: KObj[]
  foreignWebhooks: string[]
  /** A helm release named as the bootstrap release but not proved the platform's: never acted on. */
  keptRelease: string | null
  /** Objects not the platform's that its removal would delete with a CRD it ships: uninstall refuses while there are any. */
  foreignInstances: string[]
  /** Each component's stage as status derives it (what uninstall must wait for before it pauses). */
  stages: Map<string, Stage>
  /** Kinds not the platform's whose reads need its core-provider (conversion webhook): unreadable once it is gone. */
  unreadableAfter: string[]
  /**
   * Components whose Composition is gone while objects their release listed (by the record) are still being
   * finalized: an earlier run was stopped inside their drain. They are drained again (a wait only), in order.
   */
  finishing: Map<string, ManagedRef[]>
  /** What the record holds after this inventory (facts found now merged into an earlier run's). */
  record: TeardownRecord
  /** An earlier uninstall's record was found. */
  hadRecord: boolean
}

export interface InventoryInput {
  obs: Observed
  release: ReleaseInfo | null
  record: TeardownRecord | null
  coreProviders: KObj[]
  webhooks: WebhookLike[]
  /** MutatingAdmissionPolicies of the cluster (none before Kubernetes 1.36). */
  policies?: PolicyLike[]
  restCrds: string[]
  /** uids of objects the impure half found that the pure half has no object of (`Kind/name`: the rest CRDs). */
  uids?: Record<string, string>
  statefulSets: StatefulSetClaims[]
  registrySecret: boolean
  foreignInstances?: string[]
  /** The cluster's CRDs (for kinds that convert through core-provider); none given, none found. */
  crds?: ConvertingCrdLike[]
  /** Recorded objects of components whose Composition is gone, still being deleted (see Inventory.finishing). */
  finishing?: Map<string, ManagedRef[]>
  /** A helm release named as the bootstrap release but not proved the platform's (why), or null. */
  keptRelease?: string | null
}

/** The pure half: from observed objects to what is ours. */
export function platformInventory(input: InventoryInput): Inventory {
  const { obs, release } = input
  const components = platformComponents(obs.installer, obs.selfCr ?? null)
  const names = new Set(components.map((c) => c.name))
  const { ours, foreign } = partitionDefinitions(obs.cds.values(), names, obs.installer)
  const releaseName = release?.name ?? input.record?.release ?? null
  const instances = new Set<string>()
  const coreProviders: string[] = []
  for (const d of input.coreProviders) {
    if (releaseName && isOurCoreProvider(d, releaseName)) {
      coreProviders.push(d.metadata.name)
      instances.add(d.metadata.name)
      const instance = d.metadata.labels?.['app.kubernetes.io/instance']
      if (instance) instances.add(instance)
    }
  }
  if (releaseName) instances.add(releaseName)
  const webhooks = input.webhooks
    .filter((w) => isPlatformWebhook(w, obs.namespace, instances))
    .map((w) => w.metadata!.name!)
  const foreignWebhooks = input.webhooks
    .filter((w) => isCoreProviderWebhook(w) && !webhooks.includes(w.metadata!.name!))
    .map((w) => w.metadata!.name!)
  const found: Partial<TeardownRecord> = {
    release: releaseName,
    definitions: ours.map((cd) => cd.metadata.name),
    crds: ours.map(generatedCrdOf).filter((x): x is string => !!x),
    bundles: ours.map(bundleBaseOf).filter((x): x is string => !!x),
    webhooks,
    policies: (input.policies ?? []).filter((p) => isPlatformPolicy(p, instances)).map((p) => p.metadata!.name!),
    restCrds: input.restCrds,
    statefulSets: input.statefulSets,
    secrets: input.registrySecret ? [REGISTRY_SECRET] : [],
    released: Object.fromEntries(
      [...obs.compositions]
        .filter(([name]) => names.has(name))
        .map(([name, c]) => [name, (c.status?.managed as ManagedRef[] | undefined) ?? []]),
    ),
  }
  const uid = (kind: string, o: { metadata?: { name?: string; uid?: string } }) =>
    o.metadata?.uid ? [[uidKey(kind, o.metadata.name ?? ''), o.metadata.uid] as const] : []
  found.uids = Object.fromEntries([
    ...ours.flatMap((cd) => uid('CompositionDefinition', cd)),
    ...ours.flatMap((cd) => {
      const crd = generatedCrdOf(cd)
      const live = crd ? obs.crds.get(crd) : undefined
      return live ? uid('CustomResourceDefinition', live) : []
    }),
    ...input.webhooks
      .filter((w) => webhooks.includes(w.metadata?.name ?? ''))
      .flatMap((w) => uid('MutatingWebhookConfiguration', w)),
    ...(input.policies ?? [])
      .filter((p) => found.policies!.includes(p.metadata?.name ?? ''))
      .flatMap((p) => uid('MutatingAdmissionPolicy', p)),
    ...Object.entries(input.uids ?? {}),
  ])
  // A platform installed again after an earlier, completed uninstall: this teardown is a new one, and nothing
  // of the earlier one's record (objects long gone, their names perhaps someone else's now) carries over.
  const live = !!obs.installer || ours.length > 0 || !!release
  const base = input.record && !(live && input.record.completedAt) ? input.record : emptyRecord()
  const merged = mergeRecord(base, found)
  return {
    namespace: obs.namespace,
    release,
    components,
    installer: obs.installer,
    compositions: obs.compositions,
    coreProviders,
    definitions: ours,
    foreignDefinitions: foreign,
    foreignWebhooks,
    keptRelease: input.keptRelease ?? null,
    foreignInstances: input.foreignInstances ?? [],
    stages: new Map(platformState(obs).components.map((c) => [c.name, c.stage])),
    unreadableAfter: unreadableWithoutCoreProvider(input.crds ?? [], obs.namespace, new Set(merged.crds)),
    finishing: input.finishing ?? new Map(),
    record: live ? { ...merged, completedAt: undefined } : merged,
    hadRecord: !!input.record,
  }
}

/** Something of the platform is still there to remove (or an earlier uninstall did not finish its sweep). */
export function platformPresent(inv: Inventory): boolean {
  return !!inv.installer || inv.definitions.length > 0 || !!inv.release || (inv.hadRecord && !inv.record.completedAt)
}

/**
 * The bootstrap release of this namespace: named by installer-self-cr's helm annotation, else the record, else
 * ours by default if it is an installer chart; and only when proved the platform's (release-proof.ts). One that
 * is named but not proved comes back as `kept`, with the reason, and is never acted on.
 */
export async function findBootstrapRelease(
  cluster: Cluster,
  helm: Helm,
  namespace: string,
  obs: Observed,
  record: TeardownRecord | null,
): Promise<{ release: ReleaseInfo | null; kept: string | null }> {
  const annotated = bootstrapReleaseOf(obs.selfCr ?? null)
  const named = annotated ?? record?.release ?? null
  const releases = JSON.parse(
    (await helm.run(['list', '-n', namespace, ...helm.allStatuses(), '-o', 'json'])) || '[]',
  ) as ReleaseInfo[]
  const prove = (r: ReleaseInfo) =>
    proveBootstrapRelease(cluster, helm, namespace, r.name, halfInstalled(r) ? r.name : (record?.release ?? null))
  const found = named ? releases.find((r) => r.name === named) : undefined
  let kept: string | null = null
  if (found) {
    const proof = await prove(found)
    if (proof.proved) return { release: found, kept: null }
    const source = annotated ? 'named by the helm annotation on ConfigMap installer-self-cr' : 'named by the record'
    kept = `helm release ${found.name} (${source}): not proved the platform's bootstrap release, ${proof.reason}; not touched`
  }
  // No name, or a name that does not hold: the one release of the installer chart that proves itself, if one does.
  const candidates = releases.filter((r) => r !== found && /^installer-\d/.test(r.chart))
  const proved: ReleaseInfo[] = []
  for (const r of candidates) if ((await prove(r)).proved) proved.push(r)
  return { release: proved.length === 1 ? proved[0]! : null, kept }
}

/**
 * A first install of ours killed inside its helm run (pending, our name, the installer chart) may not have made
 * its ClusterRoles yet: the manifest check alone stands for it (nothing outside the namespace that helm did not
 * install with it), so a re-run can resume it and an uninstall can remove it. Pure.
 */
function halfInstalled(r: ReleaseInfo): boolean {
  return r.name === BOOTSTRAP_RELEASE && r.status.startsWith('pending') && /^installer-\d/.test(r.chart)
}

/** The impure half: reads what the rules need, then applies them. */
export async function readInventory(cluster: Cluster, helm: Helm, obs: Observed): Promise<Inventory> {
  const ns = obs.namespace
  const record = await readRecord(cluster, ns)
  const { release, kept: keptRelease } = await findBootstrapRelease(cluster, helm, ns, obs, record)
  const apps = cluster.kc.makeApiClient(AppsV1Api)
  const admission = cluster.kc.makeApiClient(AdmissionregistrationV1Api)
  const [deployments, webhooks, policies, secret] = await Promise.all([
    apps
      .listNamespacedDeployment({ namespace: ns, labelSelector: 'app.kubernetes.io/name=core-provider' })
      .catch((err) => {
        if (isNotFound(err)) return { items: [] }
        throw err
      }),
    admission.listMutatingWebhookConfiguration(),
    getPath<{ items: PolicyLike[] }>(
      cluster,
      `${POLICY_API}/mutatingadmissionpolicies?labelSelector=app.kubernetes.io%2Fname%3Dcore-provider`,
    ),
    cluster.core.readNamespacedSecret({ name: REGISTRY_SECRET, namespace: ns }).catch((err) => {
      if (isNotFound(err)) return null
      throw err
    }),
  ])
  const compositions = [...obs.compositions.values()]
  const rds = restDefinitionsOf(compositions)
  const rdObjects = (await Promise.all(rds.map((m) => getPath(cluster, managedPath(m))))).filter((x): x is KObj => !!x)
  // Without the right to list CRDs only the check for kinds that convert through core-provider is lost.
  const crds = (
    await cluster.crds.listCustomResourceDefinition().catch((err) => {
      if (statusOf(err) === 403) return { items: [] }
      throw err
    })
  ).items
  const restCrds = rdObjects.length ? restCrdsOf(rdObjects as never, crds as never) : []
  const uids = Object.fromEntries(
    crds
      .filter((c) => restCrds.includes(c.metadata?.name ?? '') && c.metadata?.uid)
      .map((c) => [uidKey('CustomResourceDefinition', c.metadata!.name!), c.metadata!.uid!]),
  )
  const sets = compositions.flatMap((c) =>
    ((c.status?.managed as ManagedRef[] | undefined) ?? []).filter((m) => m.resource === 'statefulsets'),
  )
  const statefulSets = (await Promise.all(sets.map((m) => getPath(cluster, managedPath(m)))))
    .filter((x): x is KObj => !!x)
    .map((s) => ({
      name: s.metadata.name,
      claimTemplates: (
        (s.spec as { volumeClaimTemplates?: { metadata?: { name?: string } }[] } | undefined)?.volumeClaimTemplates ??
        []
      )
        .map((t) => t.metadata?.name ?? '')
        .filter(Boolean),
    }))
  const foreign = await instancesAtRisk(cluster, obs, compositions)
  const finishing = await stillFinalizing(cluster, obs, record)
  return platformInventory({
    keptRelease,
    finishing,
    obs,
    release,
    record,
    foreignInstances: foreign,
    crds: crds as ConvertingCrdLike[],
    coreProviders: deployments.items as unknown as KObj[],
    webhooks: webhooks.items as WebhookLike[],
    policies: policies?.items ?? [],
    restCrds,
    uids,
    statefulSets,
    registrySecret: secret?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US,
  })
}

/** Recorded objects of releases whose Composition is gone that are still being deleted (finalizers pending). */
async function stillFinalizing(
  cluster: Cluster,
  obs: Observed,
  record: TeardownRecord | null,
): Promise<Map<string, ManagedRef[]>> {
  const gone = Object.entries(record?.released ?? {}).filter(([name]) => !obs.compositions.has(name))
  const found = await Promise.all(
    gone.map(async ([name, refs]) => {
      // Only what is being deleted: an object left standing (kept by its chart, or made again by someone) is not a
      // drain to finish; one that cannot be read is not waited for either.
      const objects = await Promise.all(
        refs.map(async (m) => ({ m, o: await getPath(cluster, managedPath(m)).catch(() => null) })),
      )
      return [name, objects.filter(({ o }) => !!o?.metadata.deletionTimestamp).map(({ m }) => m)] as const
    }),
  )
  return new Map(found.filter(([, left]) => left.length))
}

export function managedPath(m: ManagedRef): string {
  const prefix = m.apiVersion.includes('/') ? `/apis/${m.apiVersion}` : `/api/${m.apiVersion}`
  return `${prefix}${m.namespace ? `/namespaces/${m.namespace}` : ''}/${m.resource}/${m.name}`
}

/**
 * Instances of the kinds the platform's removal deletes (CRDs its charts ship, CRDs core-provider generated for
 * its definitions) that are not the platform's own: a user's Composition of a platform kind, a user's
 * RestDefinition. Listed cluster-wide, one list per kind.
 */
async function instancesAtRisk(cluster: Cluster, obs: Observed, compositions: KObj[]): Promise<string[]> {
  const components = platformComponents(obs.installer, obs.selfCr ?? null)
  const names = new Set(components.map((c) => c.name))
  const ours = new Map<string, Set<string>>()
  const note = (plural: string, group: string, ns: string | undefined, name: string) => {
    const key = `${plural}.${group}`
    if (!ours.has(key)) ours.set(key, new Set())
    ours.get(key)!.add(`${ns ?? ''}/${name}`)
  }
  const kinds: { crd: string; shippedBy: string }[] = []
  for (const c of compositions) {
    for (const m of (c.status?.managed as ManagedRef[] | undefined) ?? []) {
      const group = m.apiVersion.includes('/') ? m.apiVersion.split('/')[0]! : ''
      if (m.resource === 'customresourcedefinitions')
        kinds.push({ crd: m.name, shippedBy: `the platform's ${c.metadata.name}` })
      else note(m.resource, group, m.namespace, m.name)
    }
  }
  const { ours: definitions } = partitionDefinitions(obs.cds.values(), names, obs.installer)
  for (const cd of definitions) {
    const crd = generatedCrdOf(cd)
    if (!crd) continue
    kinds.push({ crd, shippedBy: `the platform's CompositionDefinition ${cd.metadata.name}` })
    const [plural, ...group] = crd.split('.')
    // The platform's Composition of each of its kinds carries the definition's name (the Installer too).
    note(plural!, group.join('.'), obs.namespace, cd.metadata.name)
  }
  const lists = await Promise.all(
    kinds.map(async (k) => {
      const crd =
        obs.crds.get(k.crd) ??
        (await getPath<KObj>(cluster, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${k.crd}`))
      const spec = crd?.spec as
        { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] } | undefined
      const version = spec?.versions.find((v) => v.served)?.name
      if (!spec || !version) return { ...k, items: [], ours: new Set<string>() }
      // A list that fails proves nothing is there: its kind counts as at risk (fail closed), with the reason.
      let unlisted: string | undefined
      const list = await getPath<{ items: InstanceRef[] }>(
        cluster,
        `/apis/${spec.group}/${version}/${spec.names.plural}`,
      ).catch((err: unknown) => {
        unlisted = readFailure(err)
        return null
      })
      return { ...k, items: list?.items ?? [], ours: ours.get(k.crd) ?? new Set<string>(), unlisted }
    }),
  )
  return foreignInstances(lists)
}

/**
 * The name of the bootstrap release to install, upgrade or read: whatever helm recorded on installer-self-cr
 * (the chart's docs name it `installer`; any name works), else this CLI's default for a new install.
 */
export async function resolveBootstrapRelease(cluster: Cluster, namespace: string): Promise<string> {
  // Not allowed to read it: the permission preflight names what is missing, in one line, next.
  const cm = await cluster.core.readNamespacedConfigMap({ name: SELF_CR_CONFIGMAP, namespace }).catch((err) => {
    if (isNotFound(err) || statusOf(err) === 403) return null
    throw err
  })
  return bootstrapReleaseOf(cm as unknown as KObj | null) ?? BOOTSTRAP_RELEASE
}

/**
 * The bootstrap release install and upgrade write to (resolveBootstrapRelease), refused when a release of that
 * name exists and is not proved the platform's: `helm upgrade --install` over someone else's release would
 * replace it with the installer chart.
 */
export async function writableBootstrapRelease(cluster: Cluster, helm: Helm, namespace: string): Promise<string> {
  const name = await resolveBootstrapRelease(cluster, namespace)
  const listed = JSON.parse(
    (await helm.run([
      'list',
      '-n',
      namespace,
      '--filter',
      exactReleaseFilter(name),
      ...helm.allStatuses(),
      '-o',
      'json',
    ])) || '[]',
  ) as ReleaseInfo[]
  if (!listed.length) return name
  const record = await readRecord(cluster, namespace)
  const proof = await proveBootstrapRelease(
    cluster,
    helm,
    namespace,
    name,
    halfInstalled(listed[0]!) ? name : (record?.release ?? null),
  )
  if (proof.proved) return name
  throw new UserError(
    `helm release ${printable(name)} in ${namespace} is not proved the platform's bootstrap release: ${printable(proof.reason)}`,
    ExitCode.Stuck,
    `nothing was changed; if it is not Krateo, remove the helm annotation meta.helm.sh/release-name from ConfigMap ${SELF_CR_CONFIGMAP} (or the release) and re-run`,
  )
}
