// The shape of any Kubernetes object as this CLI reads it: the one type every layer shares, with no imports,
// so importing it never ties one module to another.
export interface KObj {
  apiVersion?: string
  kind?: string
  metadata: {
    name: string
    namespace?: string
    resourceVersion?: string
    generation?: number
    creationTimestamp?: string
    deletionTimestamp?: string
    annotations?: Record<string, string>
    labels?: Record<string, string>
    finalizers?: string[]
    uid?: string
  }
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
}
