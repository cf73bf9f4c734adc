// What of a namespace is the platform's, and what only looks like it: read once at the start of uninstall
// (and by upgrade and status through the same rules in ownership.ts), before anything is deleted.
import { instancesAtRisk, readBundleUids, readRestCrds, readStatefulSets, stillFinalizing } from './inventory-reads.js'
import { type ReleaseInfo, findBootstrapRelease } from './bootstrap-release.js'
import { AdmissionregistrationV1Api, AppsV1Api } from '@kubernetes/client-node'
import { type Cluster, getPath, isNotFound } from '../cluster/cluster.js'
import type { Component } from '../platform/components.js'
import { type Helm } from '../cluster/helm.js'
import { type ConvertingCrdLike, type StatefulSetClaims, unreadableWithoutCoreProvider } from '../platform/foreign.js'
import {
  type ManagedRef,
  type WebhookLike,
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
} from '../platform/ownership.js'
import { bundleBaseOf } from '../platform/bundle.js'
import { type KObj } from '../platform/kobj.js'
import { type Observed } from '../platform/objects.js'
import { type Stage } from '../platform/component-state.js'
import { platformState } from '../platform/state.js'
import { type TeardownRecord, mergeRecord, emptyRecord, readRecord, uidKey } from '../cluster/teardown-record.js'

export const REGISTRY_SECRET = 'krateo-registry-auth'

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
  /** uids of our definitions' cdc bundle objects as found now (`Kind/name`); the record's first ones win. */
  bundleUids?: Record<string, string>
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
  const { coreProviders, instances } = ourCoreProviders(input.coreProviders, releaseName)
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
  // A platform installed again after an earlier, completed uninstall: this teardown is a new one, and nothing
  // of the earlier one's record (objects long gone, their names perhaps someone else's now) carries over.
  const live = !!obs.installer || ours.length > 0 || !!release
  const base = input.record && !(live && input.record.completedAt) ? input.record : emptyRecord()
  found.uids = foundUids(input, base, ours, webhooks, found.policies!)
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

/** The core-provider Deployments of our bootstrap release, and every name our instance goes by. */
function ourCoreProviders(deployments: KObj[], releaseName: string | null) {
  const instances = new Set<string>()
  const coreProviders: string[] = []
  for (const d of deployments) {
    if (!releaseName || !isOurCoreProvider(d, releaseName)) continue
    coreProviders.push(d.metadata.name)
    instances.add(d.metadata.name)
    const instance = d.metadata.labels?.['app.kubernetes.io/instance']
    if (instance) instances.add(instance)
  }
  if (releaseName) instances.add(releaseName)
  return { coreProviders, instances }
}

/** The uids of what was proved ours now, so a later write acts on those objects only. */
function foundUids(input: InventoryInput, base: TeardownRecord, ours: KObj[], webhooks: string[], policies: string[]) {
  const uid = (kind: string, o: { metadata?: { name?: string; uid?: string } }) =>
    o.metadata?.uid ? [[uidKey(kind, o.metadata.name ?? ''), o.metadata.uid] as const] : []
  return Object.fromEntries([
    ...ours.flatMap((cd) => uid('CompositionDefinition', cd)),
    ...ours.flatMap((cd) => {
      const crd = generatedCrdOf(cd)
      const live = crd ? input.obs.crds.get(crd) : undefined
      return live ? uid('CustomResourceDefinition', live) : []
    }),
    ...input.webhooks
      .filter((w) => webhooks.includes(w.metadata?.name ?? ''))
      .flatMap((w) => uid('MutatingWebhookConfiguration', w)),
    ...(input.policies ?? [])
      .filter((p) => policies.includes(p.metadata?.name ?? ''))
      .flatMap((p) => uid('MutatingAdmissionPolicy', p)),
    ...Object.entries(input.uids ?? {}),
    // A bundle object keeps the uid it was first recorded with: one replaced during the teardown is not ours.
    ...Object.entries(input.bundleUids ?? {}).filter(([key]) => !base.uids?.[key]),
  ])
}

/** Something of the platform is still there to remove (or an earlier uninstall did not finish its sweep). */
export function platformPresent(inv: Inventory): boolean {
  return !!inv.installer || inv.definitions.length > 0 || !!inv.release || (inv.hadRecord && !inv.record.completedAt)
}

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
  const { crds, restCrds, uids } = await readRestCrds(cluster, compositions)
  const statefulSets = await readStatefulSets(cluster, compositions)
  const components = platformComponents(obs.installer, obs.selfCr ?? null)
  const { ours } = partitionDefinitions(obs.cds.values(), new Set(components.map((c) => c.name)), obs.installer)
  const bases = ours.map(bundleBaseOf).filter((x): x is string => !!x)
  const bundleUids = await readBundleUids(cluster, ns, bases)
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
    bundleUids,
    statefulSets,
    registrySecret: secret?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US,
  })
}
