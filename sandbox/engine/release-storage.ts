// Helm's release records read from their Secrets, as the cdc's embedded helm library reads them: a helm process
// per question (status, manifest) made the simulator, not the engine, the busiest thing in a sandbox (each one
// re-reads the API's discovery), so two sandboxes side by side starved each other on 2 cores.
import { gunzipSync } from 'node:zlib'
import type { Rest } from './rest.js'

interface ReleaseSecret {
  metadata: { labels?: Record<string, string> }
  data?: { release?: string }
}

/** The newest revision's Secret of a release (helm's "last release"), or null when it has none. */
async function newest(rest: Rest, release: string, ns: string): Promise<ReleaseSecret | null> {
  const all = await rest.list<ReleaseSecret>(`/api/v1/namespaces/${ns}/secrets`, `owner=helm,name=${release}`)
  let best: ReleaseSecret | null = null
  for (const s of all) if (!best || Number(s.metadata.labels?.version) > Number(best.metadata.labels?.version)) best = s
  return best
}

/** `helm status`'s info.status of the last revision (deployed, failed, pending-upgrade, ...), or null. */
export async function readReleaseStatus(rest: Rest, release: string, ns: string): Promise<string | null> {
  return (await newest(rest, release, ns))?.metadata.labels?.status ?? null
}

/** `helm get manifest` of the last revision, or null when there is none. */
export async function readReleaseManifest(rest: Rest, release: string, ns: string): Promise<string | null> {
  const data = (await newest(rest, release, ns))?.data?.release
  if (!data) return null
  // The Secret holds base64(gzip(JSON)) of the release; the API base64-encodes Secret data once more.
  const inner = Buffer.from(Buffer.from(data, 'base64').toString('utf8'), 'base64')
  const json = inner[0] === 0x1f && inner[1] === 0x8b ? gunzipSync(inner) : inner
  return (JSON.parse(json.toString('utf8')) as { manifest?: string }).manifest ?? ''
}
