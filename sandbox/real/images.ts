// The images of the real Gen S engine and the binaries that stand in for them: a pod with one of these images
// runs as a local process (sandbox/real/kubelet.ts); every other pod stays kwok's. Tags as core-provider chart
// 0.35.4 pins them (contract section 0; ../shared/research/real-engine.md).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { cacheDir, toolVersions } from '../lib/paths.js'

export interface ProcessImage {
  /** The binary the image's entrypoint runs. */
  binary: string
  /** The image's own ENV lines (its Dockerfile). */
  env: Record<string, string>
}

export const REAL_ENGINE_IMAGES = {
  coreProvider: 'ghcr.io/krateoplatformops/core-provider:0.26.1',
  cdc: 'ghcr.io/krateoplatformops/composition-dynamic-controller:0.20.2',
  chartInspector: 'ghcr.io/krateoplatformops/chart-inspector:0.2.0',
} as const

/** Where build.sh puts each binary (keyed by the module version pinned in versions.env). */
export function realEngineBinaries(): { coreProvider: string; cdc: string; chartInspector: string } {
  const v = toolVersions()
  const bin = (name: string, version: string, file = name) => join(cacheDir(), 'bin', `${name}-${version}`, file)
  return {
    coreProvider: bin('core-provider', v.CORE_PROVIDER_VERSION),
    cdc: bin('cdc', v.CDC_VERSION, 'composition-dynamic-controller'),
    chartInspector: bin('chart-inspector', v.CHART_INSPECTOR_VERSION),
  }
}

/** The module and build cache core-provider's run-time CRD generation uses (warmed by build.sh). */
export function crdgenCache(): { mod: string; build: string } {
  return { mod: join(cacheDir(), 'engine-go', 'mod'), build: join(cacheDir(), 'engine-go', 'build') }
}

let goroot: string | undefined
function goRoot(): string {
  goroot ??= execFileSync('go', ['env', 'GOROOT'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
  }).trim()
  return goroot
}

/** The process that stands in for an image, or undefined when kwok keeps the pod. */
export function processImage(image: string | undefined): ProcessImage | undefined {
  const bins = realEngineBinaries()
  const path = `${goRoot()}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`
  switch (image) {
    case REAL_ENGINE_IMAGES.coreProvider: {
      // golang:1.25.3-alpine with GOCACHE=/tmp/.cache: the Go toolchain is part of the image. Here the pod gets
      // the host's toolchain, offline, with the caches build.sh warmed.
      const cache = crdgenCache()
      return {
        binary: bins.coreProvider,
        env: {
          PATH: path,
          GOCACHE: cache.build,
          GOMODCACHE: cache.mod,
          GOPROXY: 'off',
          GOSUMDB: 'off',
          GOFLAGS: '-mod=mod',
          GOTOOLCHAIN: 'local',
          GOTELEMETRY: 'off',
        },
      }
    }
    case REAL_ENGINE_IMAGES.cdc:
      return { binary: bins.cdc, env: { PATH: path } }
    case REAL_ENGINE_IMAGES.chartInspector:
      return { binary: bins.chartInspector, env: { PATH: path } }
    default:
      return undefined
  }
}
