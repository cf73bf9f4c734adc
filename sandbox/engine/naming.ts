// core-provider's naming rules for generated CRDs (contract section 2).

/** Chart name PascalCased on non-alphanumerics: krateo-authn -> KrateoAuthn. */
export function kindFromChart(chart: string): string {
  return chart
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('')
}

/** Lowercase kind plus an English plural: KrateoSseProxy -> krateosseproxies. */
export function pluralFromKind(kind: string): string {
  const k = kind.toLowerCase()
  if (/[^aeiou]y$/.test(k)) return k.slice(0, -1) + 'ies'
  if (/(s|x|z|ch|sh)$/.test(k)) return k + 'es'
  return k + 's'
}

/** v + chart version with dots dashed: 0.2.53 -> v0-2-53. */
export function dashedVersion(version: string): string {
  return 'v' + version.replace(/\./g, '-')
}

/** The cdc bundle's base name: <plural>-<dashed version>. */
export function bundleBase(plural: string, version: string): string {
  return `${plural}-${dashedVersion(version)}`
}

export const COMPOSITION_GROUP = 'composition.krateo.io'
export const CD_FINALIZER = 'finalizer.managedresource.krateo.io'
export const COMPOSITION_FINALIZER = 'composition.krateo.io/finalizer'
export const STILL_EXIST_FINALIZER = 'composition.krateo.io/still-exist-compositions-finalizer'
export const ANN_CREATE_PENDING = 'krateo.io/external-create-pending'
export const ANN_CREATE_SUCCEEDED = 'krateo.io/external-create-succeeded'
export const ANN_CREATE_FAILED = 'krateo.io/external-create-failed'
export const ANN_PAUSED = 'krateo.io/paused'
export const ANN_GRACEFULLY_PAUSED = 'krateo.io/gracefully-paused'
export const ANN_MANAGEMENT_POLICY = 'krateo.io/management-policy'
export const ANN_DELETION_POLICY = 'krateo.io/deletion-policy'
export const LABEL_COMPOSITION_VERSION = 'krateo.io/composition-version'
export const LABEL_RELEASE_NAME = 'krateo.io/release-name'
