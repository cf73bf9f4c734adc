// Stage 3, the post-delete sweep: what nothing can recreate or finalize any more, and only what the record
// proves is ours: our core-provider's webhook or admission policy (once that core-provider is gone), the CRDs
// generated from our RestDefinitions, our definitions' cdc bundles, the Secret this CLI wrote. Then the record
// says the sweep is complete.
import { AdmissionregistrationV1Api } from '@kubernetes/client-node'
import { apiFailure, getPath, isNotFound, requestPath } from '../../cluster/cluster.js'
import { DISCOVERY_REFRESH_CRD, removeLeftDiscoveryRefresh } from '../../cluster/kube-write.js'
import { mergeRecord, writeRecord } from '../../cluster/teardown-record.js'
import {
  type PolicyLike,
  type WebhookLike,
  MANAGED_BY_LABEL,
  MANAGED_BY_US,
  POLICY_API,
  isPlatformPolicy,
  restCrdsOf,
} from '../../platform/ownership.js'
import type { KObj } from '../../platform/kobj.js'
import { bindsOurServiceAccount, bundleObjects } from '../../platform/bundle.js'
import type { StepReport } from '../../ui/progress.js'
import { CRD_COLLECTION, type TeardownRun } from './run.js'

export async function sweep(t: TeardownRun, report: StepReport): Promise<string[]> {
  const removed: string[] = []
  if (await t.coreProviderRunning())
    report.line(`core-provider still runs: its webhook ${t.record.webhooks.join(', ')} is kept`)
  else {
    removed.push(...(await sweepWebhooks(t, report)), ...(await sweepPolicies(t, report)))
  }
  const restCrds = await sweepRestCrds(t, report)
  removed.push(...restCrds.map((name) => `CustomResourceDefinition/${name}`))
  for (const base of t.record.bundles) removed.push(...(await sweepBundle(t, base, report)))
  removed.push(...(await sweepSecrets(t)))
  // install's discovery refresh CRD (operations/heal.ts), left only by a run killed between its create and delete.
  const refresh = (await t.api('remove a left discovery refresh CRD', () => removeLeftDiscoveryRefresh(t.cluster)))
    ? [DISCOVERY_REFRESH_CRD]
    : []
  removed.push(...refresh.map((name) => `CustomResourceDefinition/${name}`))
  // A CRD goes only once its instances are cleaned up: wait, so nothing is left Terminating.
  for (const name of [...restCrds, ...refresh])
    await t.waitObjectGone(CRD_COLLECTION, name, `CRD ${name} to go`, report, () => `CRD ${name} is Terminating`)
  t.record = mergeRecord(t.record, { completedAt: new Date().toISOString() })
  await t.api('write the teardown record', () => writeRecord(t.cluster, t.namespace, t.record))
  report.line(removed.length ? `removed ${removed.join(', ')}` : 'nothing left to sweep')
  return removed
}

const orNull = (t: TeardownRun) => (err: unknown) => {
  if (isNotFound(err)) return null
  throw apiFailure(err, t.cluster, 'read what the record names')
}

/** Deletes one object; true when it was there. */
async function gone(t: TeardownRun, what: string, fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn()
    return true
  } catch (err) {
    if (!isNotFound(err)) throw apiFailure(err, t.cluster, `delete ${what}`)
    return false
  }
}

async function sweepWebhooks(t: TeardownRun, report: StepReport): Promise<string[]> {
  const admission = t.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
  const removed: string[] = []
  for (const name of t.record.webhooks) {
    const live = (await admission.readMutatingWebhookConfiguration({ name }).catch(orNull(t))) as WebhookLike | null
    const label = `MutatingWebhookConfiguration/${name}`
    if (
      live &&
      (await t.deleteRecorded(
        label,
        live,
        t.recordedUid('MutatingWebhookConfiguration', name),
        t.provedWebhook(live),
        (uid) => admission.deleteMutatingWebhookConfiguration({ name, body: { preconditions: { uid } } }),
        report,
      ))
    )
      removed.push(label)
  }
  return removed
}

async function sweepPolicies(t: TeardownRun, report: StepReport): Promise<string[]> {
  const removed: string[] = []
  const instances = new Set(t.record.release ? [t.record.release, ...(t.inventory?.coreProviders ?? [])] : [])
  for (const name of t.record.policies ?? []) {
    const live = await getPath<PolicyLike & KObj>(t.cluster, `${POLICY_API}/mutatingadmissionpolicies/${name}`).catch(
      orNull(t),
    )
    const label = `MutatingAdmissionPolicy/${name}`
    if (!live) continue
    const deleted = await t.deleteRecorded(
      label,
      live,
      t.recordedUid('MutatingAdmissionPolicy', name),
      isPlatformPolicy(live, instances),
      async (uid) => {
        // The binding has the policy's name and no meaning without it.
        await requestPath(t.cluster, 'DELETE', `${POLICY_API}/mutatingadmissionpolicybindings/${name}`).catch(orNull(t))
        await requestPath(t.cluster, 'DELETE', `${POLICY_API}/mutatingadmissionpolicies/${name}`, {
          preconditions: { uid },
        })
      },
      report,
    )
    if (deleted) removed.push(`MutatingAdmissionPolicyBinding/${name}`, label)
  }
  return removed
}

/** The CRDs generated from our RestDefinitions; returns the names deleted. */
async function sweepRestCrds(t: TeardownRun, report: StepReport): Promise<string[]> {
  if (!t.record.restCrds.length) return []
  // A CRD generated for a kind that a RestDefinition left in the cluster (not ours) still names stays.
  const rds = await t.custom
    .listClusterCustomObject({ group: 'ogen.krateo.io', version: 'v1alpha1', plural: 'restdefinitions' })
    .then((l) => (l as { items: KObj[] }).items)
    .catch((err) => {
      if (isNotFound(err)) return [] as KObj[]
      throw err
    })
  const crds = await t.api('list CRDs', () => t.crdApi.listCustomResourceDefinition())
  const stillNamed = new Set(restCrdsOf(rds as never, crds.items as never))
  const deleted: string[] = []
  for (const name of t.record.restCrds) {
    if (stillNamed.has(name)) {
      report.line(`CRD ${name} is still named by a RestDefinition that is not the platform's: kept`)
      continue
    }
    const live = crds.items.find((c) => c.metadata?.name === name) ?? null
    // Only the CRD that was recorded: nothing on a CRD itself says which RestDefinition made it.
    if (
      live &&
      (await t.deleteRecorded(
        `CustomResourceDefinition/${name}`,
        live,
        t.recordedUid('CustomResourceDefinition', name),
        false,
        (uid) => t.crdApi.deleteCustomResourceDefinition({ name, body: { preconditions: { uid } } }),
        report,
      ))
    )
      deleted.push(name)
  }
  return deleted
}

/**
 * One definition's cdc bundle (core-provider's objects named after it); returns one line when anything went.
 * Only the objects recorded while our definition existed go, each as that object (uid precondition); the
 * cluster-wide half also when its binding grants it to the bundle's ServiceAccount here now.
 */
async function sweepBundle(t: TeardownRun, base: string, report: StepReport): Promise<string[]> {
  const objects = bundleObjects(base, t.namespace)
  const live = await Promise.all(objects.map((o) => getPath(t.cluster, o.path).catch(orNull(t))))
  const binding = live[objects.findIndex((o) => o.kind === 'ClusterRoleBinding')] as RoleBindingLike | null
  const bindingOurs = bindsOurServiceAccount(binding, base, t.namespace)
  let removed = false
  for (const [i, o] of objects.entries()) {
    const obj = live[i]
    if (!obj) continue
    const provedNow = !!o.clusterWide && bindingOurs && (o.kind !== 'ClusterRole' || binding?.roleRef?.name === base)
    const del = (uid: string) => requestPath(t.cluster, 'DELETE', o.path, { preconditions: { uid } })
    if (await t.deleteRecorded(`${o.kind}/${o.name}`, obj, t.recordedUid(o.kind, o.name), provedNow, del, report))
      removed = true
  }
  return removed ? [`cdc bundle ${base}`] : []
}

type RoleBindingLike = KObj & {
  subjects?: { kind: string; name: string; namespace?: string }[]
  roleRef?: { name?: string }
}

/** The Secrets this CLI wrote (labelled managed-by krateo-installer on the live object). */
async function sweepSecrets(t: TeardownRun): Promise<string[]> {
  const removed: string[] = []
  for (const name of t.record.secrets) {
    const secret = await t.core.readNamespacedSecret({ name, namespace: t.namespace }).catch((err) => {
      if (isNotFound(err)) return null
      throw err
    })
    if (
      secret?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_US &&
      (await gone(t, `Secret/${name}`, () => t.core.deleteNamespacedSecret({ name, namespace: t.namespace })))
    )
      removed.push(`Secret/${name}`)
  }
  return removed
}
