// Which helm release is the platform's bootstrap release: the one found (uninstall, status), the one install
// and upgrade write to; only ever one proved the platform's (cluster/release-proof.ts).
import { type Cluster, isNotFound, statusOf } from '../cluster/cluster.js'
import { BOOTSTRAP_RELEASE } from '../cluster/chart.js'
import { proveBootstrapRelease } from '../cluster/release-proof.js'
import { SELF_CR_CONFIGMAP } from '../cluster/observe.js'
import { type Helm, exactReleaseFilter } from '../cluster/helm.js'
import { ExitCode, UserError, printable } from '../platform/errors.js'
import { bootstrapReleaseOf } from '../platform/ownership.js'
import { type KObj } from '../platform/kobj.js'
import { type Observed } from '../platform/objects.js'
import { type TeardownRecord, readRecord } from '../cluster/teardown-record.js'

export interface ReleaseInfo {
  name: string
  status: string
  chart: string
}

/**
 * The bootstrap release of this namespace: named by installer-self-cr's helm annotation, else the record, else
 * ours by default if it is an installer chart; and only when proved the platform's (release-proof.ts). One that
 * is named but not proved comes back as `kept`, with the reason, and is never acted on.
 */
export async function findBootstrapRelease(
  cluster: Cluster,
  helm: Helm,
  namespace: string,
  obs: Observed,
  record: TeardownRecord | null,
): Promise<{ release: ReleaseInfo | null; kept: string | null }> {
  const annotated = bootstrapReleaseOf(obs.selfCr ?? null)
  const named = annotated ?? record?.release ?? null
  const releases = JSON.parse(
    (await helm.run(['list', '-n', namespace, ...helm.allStatuses(), '-o', 'json'])) || '[]',
  ) as ReleaseInfo[]
  const prove = (r: ReleaseInfo) =>
    proveBootstrapRelease(cluster, helm, namespace, r.name, halfInstalled(r) ? r.name : (record?.release ?? null))
  const found = named ? releases.find((r) => r.name === named) : undefined
  let kept: string | null = null
  if (found) {
    const proof = await prove(found)
    if (proof.proved) return { release: found, kept: null }
    const source = annotated ? 'named by the helm annotation on ConfigMap installer-self-cr' : 'named by the record'
    kept = `helm release ${found.name} (${source}): not proved the platform's bootstrap release, ${proof.reason}; not touched`
  }
  // No name, or a name that does not hold: the one release of the installer chart that proves itself, if one does.
  const candidates = releases.filter((r) => r !== found && /^installer-\d/.test(r.chart))
  const proved: ReleaseInfo[] = []
  for (const r of candidates) if ((await prove(r)).proved) proved.push(r)
  return { release: proved.length === 1 ? proved[0]! : null, kept }
}

/**
 * A first install of ours killed inside its helm run (pending, our name, the installer chart) may not have made
 * its ClusterRoles yet: the manifest check alone stands for it (nothing outside the namespace that helm did not
 * install with it), so a re-run can resume it and an uninstall can remove it. Pure.
 */
function halfInstalled(r: ReleaseInfo): boolean {
  return r.name === BOOTSTRAP_RELEASE && r.status.startsWith('pending') && /^installer-\d/.test(r.chart)
}

/** The impure half: reads what the rules need, then applies them. */

/**
 * The name of the bootstrap release to install, upgrade or read: whatever helm recorded on installer-self-cr
 * (the chart's docs name it `installer`; any name works), else this CLI's default for a new install.
 */
export async function resolveBootstrapRelease(cluster: Cluster, namespace: string): Promise<string> {
  // Not allowed to read it: the permission preflight names what is missing, in one line, next.
  const cm = await cluster.core.readNamespacedConfigMap({ name: SELF_CR_CONFIGMAP, namespace }).catch((err) => {
    if (isNotFound(err) || statusOf(err) === 403) return null
    throw err
  })
  return bootstrapReleaseOf(cm as unknown as KObj | null) ?? BOOTSTRAP_RELEASE
}

/**
 * The bootstrap release install and upgrade write to (resolveBootstrapRelease), refused when a release of that
 * name exists and is not proved the platform's: `helm upgrade --install` over someone else's release would
 * replace it with the installer chart.
 */
export async function writableBootstrapRelease(cluster: Cluster, helm: Helm, namespace: string): Promise<string> {
  const name = await resolveBootstrapRelease(cluster, namespace)
  const listed = JSON.parse(
    (await helm.run([
      'list',
      '-n',
      namespace,
      '--filter',
      exactReleaseFilter(name),
      ...helm.allStatuses(),
      '-o',
      'json',
    ])) || '[]',
  ) as ReleaseInfo[]
  if (!listed.length) return name
  const record = await readRecord(cluster, namespace)
  const proof = await proveBootstrapRelease(
    cluster,
    helm,
    namespace,
    name,
    halfInstalled(listed[0]!) ? name : (record?.release ?? null),
  )
  if (proof.proved) return name
  throw new UserError(
    `helm release ${printable(name)} in ${namespace} is not proved the platform's bootstrap release: ${printable(proof.reason)}`,
    ExitCode.Stuck,
    `nothing was changed; if it is not Krateo, remove the helm annotation meta.helm.sh/release-name from ConfigMap ${SELF_CR_CONFIGMAP} (or the release) and re-run`,
  )
}
