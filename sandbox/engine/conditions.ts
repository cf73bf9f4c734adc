// Crossplane-style conditions, as provider-runtime and unstructured-runtime write them.
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
    const next: Condition = { ...u, lastTransitionTime: prev && prev.status === u.status ? prev.lastTransitionTime : now() }
    if (!next.message) delete next.message
    if (i >= 0) out[i] = next
    else out.push(next)
  }
  return out
}

export const ready = (status: Condition['status'], reason: string, message?: string): Condition => ({ type: 'Ready', status, reason, message })
export const synced = (status: Condition['status'], reason: string, message?: string): Condition => ({ type: 'Synced', status, reason, message })

export function sameConditions(a: Condition[] | undefined, b: Condition[]): boolean {
  const strip = (cs: Condition[] | undefined) => JSON.stringify((cs ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest))
  return strip(a) === strip(b)
}

export const CREATE_RESULT_LOST = 'create failed: cannot determine creation result - remove the krateo.io/external-create-pending annotation if it is safe to proceed'

/** The external-create protocol: a pending mark newer than any recorded result means a create whose outcome was lost. */
export function createResultLost(annotations: Record<string, string> | undefined, keys: { pending: string; succeeded: string; failed: string }): boolean {
  const ann = annotations ?? {}
  const pending = ann[keys.pending]
  const settled = [ann[keys.succeeded], ann[keys.failed]].filter(Boolean) as string[]
  return !!pending && settled.every((s) => Date.parse(pending) > Date.parse(s))
}
