// Crossplane-style conditions, as provider-runtime and unstructured-runtime write them.
import { ANN_CREATE_FAILED, ANN_CREATE_PENDING, ANN_CREATE_SUCCEEDED } from './naming.js'
export interface Condition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason: string
  message?: string
  lastTransitionTime?: string
}

export const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')

/** Sets conditions, keeping lastTransitionTime when the status did not change. */
export function setConditions(existing: Condition[] | undefined, ...updates: Condition[]): Condition[] {
  const out = [...(existing ?? [])]
  for (const u of updates) {
    const i = out.findIndex((c) => c.type === u.type)
    const prev = i >= 0 ? out[i] : undefined
    const next: Condition = {
      ...u,
      lastTransitionTime: prev && prev.status === u.status ? prev.lastTransitionTime : now(),
    }
    if (!next.message) delete next.message
    if (i >= 0) out[i] = next
    else out.push(next)
  }
  return out
}

export const ready = (status: Condition['status'], reason: string, message?: string): Condition => ({
  type: 'Ready',
  status,
  reason,
  message,
})
export const synced = (status: Condition['status'], reason: string, message?: string): Condition => ({
  type: 'Synced',
  status,
  reason,
  message,
})

export function sameConditions(a: Condition[] | undefined, b: Condition[]): boolean {
  const strip = (cs: Condition[] | undefined) =>
    JSON.stringify((cs ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest))
  return strip(a) === strip(b)
}

export const CREATE_RESULT_LOST =
  'create failed: cannot determine creation result - remove the krateo.io/external-create-pending annotation if it is safe to proceed'

const CREATE_KEYS = { pending: ANN_CREATE_PENDING, succeeded: ANN_CREATE_SUCCEEDED, failed: ANN_CREATE_FAILED }

/**
 * The external-create protocol: a pending mark newer than any recorded result means a create whose outcome was
 * lost. With a grace (Gen N's runtime fork) a mark older than the grace no longer blocks: observe takes over.
 */
export function createResultLost(
  annotations: Record<string, string> | undefined,
  graceSeconds: number | null = null,
  at = Date.now(),
): boolean {
  const ann = annotations ?? {}
  const pending = ann[CREATE_KEYS.pending]
  const settled = [ann[CREATE_KEYS.succeeded], ann[CREATE_KEYS.failed]].filter(Boolean) as string[]
  const lost = !!pending && settled.every((s) => Date.parse(pending) > Date.parse(s))
  return lost && (graceSeconds === null || at - Date.parse(pending!) < graceSeconds * 1000)
}
