// Where the sandbox finds its pinned tool versions and the binaries built from them.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const sandboxDir = dirname(dirname(fileURLToPath(import.meta.url)))
export const repoDir = dirname(sandboxDir)

export function cacheDir(): string {
  return process.env.KRATEO_SANDBOX_CACHE ?? join(homedir(), '.cache', 'krateo-installer')
}

/**
 * What the Go module proxy here does not serve of the real engine: its three modules (goproxy/) and the real
 * charts (charts/), beside the project ($KRATEO_ENGINE_MIRROR, default ../shared/engine-mirror).
 */
export function engineMirrorDir(): string {
  return process.env.KRATEO_ENGINE_MIRROR ?? join(repoDir, '..', 'shared', 'engine-mirror')
}

export interface ToolVersions {
  KUBERNETES_VERSION: string
  ETCD_VERSION: string
  KWOK_VERSION: string
  HELM3_VERSION: string
  HELM4_VERSION: string
  DISTRIBUTION_VERSION: string
  CORE_PROVIDER_VERSION: string
  CDC_VERSION: string
  CHART_INSPECTOR_VERSION: string
}

export function toolVersions(): ToolVersions {
  const text = readFileSync(join(sandboxDir, 'versions.env'), 'utf8')
  const entries = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split('=', 2) as [string, string])
  return Object.fromEntries(entries) as unknown as ToolVersions
}

export interface Binaries {
  etcd: string
  kubeApiserver: string
  kubeControllerManager: string
  kubeScheduler: string
  kwok: string
  registry: string
  helm3: string
  helm4: string
}

export function binaries(): Binaries {
  const v = toolVersions()
  const bin = (name: string, version: string, file: string) => join(cacheDir(), 'bin', `${name}-${version}`, file)
  return {
    etcd: bin('etcd', v.ETCD_VERSION, 'etcd'),
    kubeApiserver: bin('kubernetes', v.KUBERNETES_VERSION, 'kube-apiserver'),
    kubeControllerManager: bin('kubernetes', v.KUBERNETES_VERSION, 'kube-controller-manager'),
    kubeScheduler: bin('kubernetes', v.KUBERNETES_VERSION, 'kube-scheduler'),
    kwok: bin('kwok', v.KWOK_VERSION, 'kwok'),
    registry: bin('registry', v.DISTRIBUTION_VERSION, 'registry'),
    helm3: bin('helm3', v.HELM3_VERSION, 'helm'),
    helm4: bin('helm4', v.HELM4_VERSION, 'helm'),
  }
}
