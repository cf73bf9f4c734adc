// The run lock's Lease as data: who holds it, until when, whether it is free, held or expired. Pure (the
// Lease is read and written in cluster/lock.ts).

export const LOCK_NAME = 'krateo-installer'
export const COMMAND_ANNOTATION = 'krateo-installer/command'
export const LEASE_SECONDS = 30

export interface LeaseObject {
  metadata: {
    name: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
  spec?: {
    holderIdentity?: string | null
    leaseDurationSeconds?: number
    acquireTime?: string | null
    renewTime?: string | null
  }
}

export interface LockHolder {
  holder: string
  command: string
  since: string
  renewed: string
  expiresAt: string
  /** How long the holder said its lease lasts without a renewal (its leaseDurationSeconds; ours when it said none). */
  durationSeconds: number
}

/** A holder's declared lease duration is believed up to this: a lease claiming a day does not stall a run a day. */
export const MAX_LEASE_SECONDS = 300

/** Who holds the lease and until when; null when nobody does. Pure. */
export function lockHolder(lease: LeaseObject | null): LockHolder | null {
  const spec = lease?.spec
  if (!spec?.holderIdentity) return null
  const renewed = spec.renewTime ?? spec.acquireTime ?? ''
  const declared = spec.leaseDurationSeconds
  const durationSeconds = declared && declared > 0 ? Math.min(declared, MAX_LEASE_SECONDS) : LEASE_SECONDS
  const expiresAt = new Date(Date.parse(renewed) + durationSeconds * 1000).toISOString()
  return {
    holder: spec.holderIdentity,
    command: lease!.metadata.annotations?.[COMMAND_ANNOTATION] ?? 'krateo-installer',
    since: spec.acquireTime ?? renewed,
    renewed,
    expiresAt,
    durationSeconds,
  }
}

/** How far ahead of this machine's clock a holder's renewal may be and still be taken at its word. */
export const CLOCK_TOLERANCE_MS = 5000

/**
 * 'free', 'held' (renewed within its duration), 'expired', or 'ahead': renewed later than now by this machine's
 * clock, so the holder's clock runs ahead and its timestamps say nothing of whether it still renews. Pure.
 */
export function lockState(lease: LeaseObject | null, now: number): 'free' | 'held' | 'expired' | 'ahead' {
  const h = lockHolder(lease)
  if (!h) return 'free'
  if (Date.parse(h.renewed) > now + CLOCK_TOLERANCE_MS) return 'ahead'
  return Date.parse(h.expiresAt) > now ? 'held' : 'expired'
}

/** MicroTime as the API server parses it (RFC 3339 with exactly six fractional digits). */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}
