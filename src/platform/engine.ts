// The engine generations (contract section 0) as data: code asks for a trait, never for a letter. These mirror
// the sandbox's generation profiles (sandbox/engine/generation.ts); a unit test keeps the two in step.

export type Generation = 'S' | 'N' | 'unknown'

export interface EngineTraits {
  /** Who stamps a Composition's version label on create: core-provider's webhook (S) or an admission policy (N). */
  versionStamp: 'webhook' | 'policy' | null
  /**
   * N's core-provider stops serving a CRD version no definition and no Composition references: a definition
   * moved ahead of the installer would take away a version the installer's release still lists.
   */
  pruneStaleVersions: boolean
}

export const ENGINE_TRAITS: Record<Generation, EngineTraits> = {
  S: { versionStamp: 'webhook', pruneStaleVersions: false },
  N: { versionStamp: 'policy', pruneStaleVersions: true },
  // Neither stamp seen (yet): nothing is assumed pruned.
  unknown: { versionStamp: null, pruneStaleVersions: false },
}

export const traitsOf = (generation: Generation | null | undefined): EngineTraits =>
  ENGINE_TRAITS[generation ?? 'unknown']
