// Loading the kubeconfig exactly as kubectl does: --kubeconfig alone when given; else every file of
// $KUBECONFIG (missing ones skipped), merged so that the first file to name a cluster, user or context wins
// and the first current-context set wins; else ~/.kube/config; else the in-cluster config of a pod. No
// kubeconfig at all is said so, not guessed around.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { ExitCode, UserError } from '../platform/errors.js'

export interface KubeconfigSource {
  kubeconfig?: string
  env?: string
  home?: string
  inCluster?: boolean
}

/** The files kubectl would read, in order, and which of them exist. Pure but for existsSync. */
export function kubeconfigFiles(src: KubeconfigSource): { files: string[]; from: string } {
  if (src.kubeconfig) return { files: [src.kubeconfig], from: '--kubeconfig' }
  if (src.env) return { files: src.env.split(delimiter).filter(Boolean), from: '$KUBECONFIG' }
  return { files: [join(src.home ?? homedir(), '.kube', 'config')], from: '~/.kube/config' }
}

export function loadKubeConfig(
  src: KubeconfigSource = { env: process.env.KUBECONFIG, inCluster: !!process.env.KUBERNETES_SERVICE_HOST },
): KubeConfig {
  const { files, from } = kubeconfigFiles(src)
  const existing = files.filter((f) => existsSync(f))
  if (src.kubeconfig && !existing.length)
    throw new UserError(
      `kubeconfig ${src.kubeconfig} does not exist`,
      ExitCode.Cluster,
      'pass an existing file with --kubeconfig',
    )
  const kc = new KubeConfig()
  if (!existing.length) {
    if (src.inCluster) {
      kc.loadFromCluster()
      return kc
    }
    const where =
      from === '$KUBECONFIG'
        ? `none of the files in $KUBECONFIG exists (${files.join(', ')})`
        : 'no kubeconfig: $KUBECONFIG is not set and ~/.kube/config does not exist'
    throw new UserError(
      where,
      ExitCode.Cluster,
      'pass --kubeconfig, set KUBECONFIG, or run inside a pod with a ServiceAccount',
    )
  }
  const merged = {
    clusters: [] as KubeConfig['clusters'],
    users: [] as KubeConfig['users'],
    contexts: [] as KubeConfig['contexts'],
    currentContext: '',
  }
  for (const file of existing) {
    const part = new KubeConfig()
    try {
      part.loadFromFile(file)
    } catch (err) {
      throw new UserError(
        `cannot read kubeconfig ${file}: ${(err as Error).message.split('\n')[0]}`,
        ExitCode.Cluster,
        'fix the file or pass another with --kubeconfig',
      )
    }
    const add = <T extends { name: string }>(into: T[], items: T[]) => {
      for (const i of items) if (!into.some((x) => x.name === i.name)) into.push(i)
    }
    add(merged.clusters, part.clusters)
    add(merged.users, part.users)
    add(merged.contexts, part.contexts)
    if (!merged.currentContext && part.currentContext) merged.currentContext = part.currentContext
  }
  kc.loadFromOptions(merged)
  return kc
}
