// Which engine generation runs the platform (contract section 0): Gen S stamps the composition version with
// core-provider's MutatingWebhookConfiguration (webhook core.provider.krateo.io), Gen N with a
// MutatingAdmissionPolicy inside kube-apiserver. Read-only, and never fatal: 'unknown' when neither is seen.
import { type Cluster, getPath } from './cluster.js'
import { CORE_PROVIDER_WEBHOOK } from '../platform/ownership.js'

import type { Generation } from '../platform/engine.js'
export type { Generation }

interface Named {
  metadata?: { name?: string }
  webhooks?: { name: string }[]
  spec?: { matchConstraints?: { resourceRules?: { apiGroups?: string[] }[] } }
}

/** Pure: the generation from what the cluster shows. */
export function generationFrom(webhooks: Named[], policies: Named[]): Generation {
  if (webhooks.some((w) => (w.webhooks ?? []).some((h) => h.name === CORE_PROVIDER_WEBHOOK))) return 'S'
  const composition = (p: Named) =>
    (p.spec?.matchConstraints?.resourceRules ?? []).some((r) => (r.apiGroups ?? []).includes('composition.krateo.io'))
  if (policies.some(composition)) return 'N'
  return 'unknown'
}

export async function detectGeneration(cluster: Cluster): Promise<Generation> {
  const list = async (path: string) => (await getPath<{ items: Named[] }>(cluster, path).catch(() => null))?.items ?? []
  const [webhooks, v1, beta] = await Promise.all([
    list('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations'),
    list('/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies'),
    list('/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies'),
  ])
  return generationFrom(webhooks, [...v1, ...beta])
}
