#!/usr/bin/env bash
# Builds the sandbox's binaries from pinned Go modules through the Go module proxy and caches them
# outside the repo, keyed by name and version: $KRATEO_SANDBOX_CACHE (default ~/.cache/krateo-installer)/bin/<name>-<version>/.
# Each tool is built inside a generated wrapper module, because several of them (k8s.io/kubernetes, etcd)
# carry replace directives that `go install pkg@version` refuses.
# Usage: sandbox/build.sh [tool ...]   tools: kubernetes etcd kwok helm3 helm4 registry engine (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${KRATEO_SANDBOX_CACHE:-$HOME/.cache/krateo-installer}
mkdir -p "$cache/bin" "$cache/build" "$cache/logs"
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local

log() { printf '%s sandbox build: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# build_with <name> <module> <version> <how> [args...]: runs `<how> <output dir> [args...]` (logged to a file)
# and caches its output under bin/<name>-<version>; a failure names the module and prints the end of the log.
build_with() {
  local name=$1 module=$2 version=$3 how=$4; shift 4
  local out="$cache/bin/$name-$version" logf="$cache/logs/$name-$version.log"
  if [ -f "$out/.complete" ]; then log "$name $version cached"; return 0; fi
  log "building $name from $module@$version (log: $logf)"
  local started=$SECONDS
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  "$how" "$out.tmp" "$@" >"$logf" 2>&1 || {
    log "FAILED to build $name: module $module@$version; the Go error follows (full log: $logf)"
    tail -n 40 "$logf" >&2
    return 1
  }
  rm -rf "$out"; mv "$out.tmp" "$out"; touch "$out/.complete"
  log "$name $version built in $((SECONDS - started))s"
}

# wrapper_build <output dir> <name> <module> <version> <extra go.mod lines> <ldflags> <pkg>...
# With BINARY set, the single package is written under that file name (etcd's main package is "server").
wrapper_build() {
  local out=$1 name=$2 module=$3 version=$4 extra=$5 ldflags=$6; shift 6
  local work="$cache/build/$name-$version"
  rm -rf "$work"; mkdir -p "$work"
  printf 'module sandboxbuild/%s\n\ngo 1.24\n\nrequire %s %s\n%s\n' "$name" "$module" "$version" "$extra" > "$work/go.mod"
  (cd "$work" && go mod download "$module" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out/${BINARY:-}" "$@")
}

# build <name> <module> <version> <extra go.mod lines> <ldflags> <pkg>...
build() { build_with "$1" "$2" "$3" wrapper_build "$@"; }

kube_replaces() {
  # k8s.io/kubernetes points its staging modules at ./staging; pin each to the matching v0.x instead.
  local modfile minor
  (cd "$cache/build" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null)
  modfile=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod
  minor=v0.${KUBERNETES_VERSION#v1.}
  echo "replace ("
  grep -E '=> \./staging/' "$modfile" | awk -v v="$minor" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
}

tool_kubernetes() {
  local v=$KUBERNETES_VERSION major minor
  major=${v#v}; major=${major%%.*}; minor=${v#v*.}; minor=${minor%%.*}
  local ld="-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  build kubernetes k8s.io/kubernetes "$v" "$(kube_replaces)" "$ld" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
}
tool_etcd() { BINARY=etcd build etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "" "" go.etcd.io/etcd/server/v3; }
tool_kwok() { build kwok sigs.k8s.io/kwok "$KWOK_VERSION" "" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok; }
tool_helm3() { build helm3 helm.sh/helm/v3 "$HELM3_VERSION" "" "-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION" helm.sh/helm/v3/cmd/helm; }
tool_helm4() { build helm4 helm.sh/helm/v4 "$HELM4_VERSION" "" "-X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION" helm.sh/helm/v4/cmd/helm; }
tool_registry() { build registry github.com/distribution/distribution/v3 "$DISTRIBUTION_VERSION" "" "" github.com/distribution/distribution/v3/cmd/registry; }

# The real engine (core-provider, cdc, chart-inspector): `go install module@version` with each module's own go.mod
# and go.sum, as their Dockerfiles build them. Where the Go module proxy does not serve these three modules, the
# file-based mirror beside the project ($KRATEO_ENGINE_MIRROR, default ../shared/engine-mirror) does.
engine_mirror() {
  local m=${KRATEO_ENGINE_MIRROR:-$here/../../shared/engine-mirror}
  [ -d "$m/goproxy" ] && (cd "$m/goproxy" && pwd)
}
# module_install <output dir> <module> <version>
module_install() {
  local out=$1 module=$2 version=$3 goproxy mirror
  goproxy=$(go env GOPROXY)
  if mirror=$(engine_mirror); then goproxy="file://$mirror,$goproxy"; fi
  GOPROXY=$goproxy GONOSUMDB=github.com/krateoplatformops/core-provider,github.com/krateoplatformops/composition-dynamic-controller,github.com/krateoplatformops/chart-inspector \
    GOFLAGS=-buildvcs=false GOBIN="$out" go install -trimpath -ldflags "-s -w" "$module@$version"
}
build_engine_binary() { build_with "$1" "$2" "$3" module_install "$2" "$3"; }
# core-provider 0.26.x generates each CRD at run time with `go mod tidy` and `go run controller-gen` in a generated
# module (plumbing crdgen). Its pods get no network: they use this module cache as their GOPROXY (file://) and a
# shared build cache, both warmed here by generating one CRD the same way.
warm_crdgen() {
  local out="$cache/engine-go" logf="$cache/logs/engine-go-$CORE_PROVIDER_VERSION.log"
  if [ -f "$out/.complete-$CORE_PROVIDER_VERSION" ]; then log "crdgen module cache cached"; return 0; fi
  log "warming the module and build cache core-provider's CRD generation uses (log: $logf)"
  local started=$SECONDS
  mkdir -p "$out/mod" "$out/build"
  local work="$cache/build/engine-go-warm"
  rm -rf "$work"; mkdir -p "$work"
  # The plumbing version core-provider pins; crdgen.Generate is what core-provider calls for each CRD.
  printf 'module sandboxbuild/warmcrdgen\n\ngo 1.25.3\n\nrequire github.com/krateoplatformops/plumbing v0.8.0\n' > "$work/go.mod"
  cat > "$work/main.go" <<'GO'
package main

import (
	"fmt"
	"os"

	"github.com/krateoplatformops/plumbing/crdgen"
)

func main() {
	schema := []byte(`{"type":"object","properties":{"message":{"type":"string"}}}`)
	crd, err := crdgen.Generate(crdgen.Options{Group: "composition.krateo.io", Version: "v0-0-1", Kind: "Warmup",
		Managed: true, Categories: []string{"compositions", "comps"}, SpecSchema: schema, StatusSchema: schema})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("generated %d bytes of CRD\n", len(crd))
}
GO
  mkdir -p "$work/tmp"
  (cd "$work" && export GOMODCACHE="$out/mod" GOCACHE="$out/build" GOFLAGS=-mod=mod VERBOSE=true TMPDIR="$work/tmp" && go mod tidy && go run .) >"$logf" 2>&1 || {
    log "FAILED to warm the crdgen cache; the log follows (full log: $logf)"; tail -n 40 "$logf" >&2; return 1
  }
  chmod -R u+w "$out/mod"
  touch "$out/.complete-$CORE_PROVIDER_VERSION"
  log "crdgen cache warmed in $((SECONDS - started))s"
}
tool_engine() {
  build_engine_binary core-provider github.com/krateoplatformops/core-provider "$CORE_PROVIDER_VERSION"
  build_engine_binary cdc github.com/krateoplatformops/composition-dynamic-controller "$CDC_VERSION"
  build_engine_binary chart-inspector github.com/krateoplatformops/chart-inspector "$CHART_INSPECTOR_VERSION"
  warm_crdgen
}

command -v go >/dev/null || { log "go is not on PATH; install Go 1.24+ (this machine kind ships it at /usr/local/go/bin)"; exit 1; }
tools=("$@"); [ ${#tools[@]} -gt 0 ] || tools=(etcd kwok registry helm3 helm4 kubernetes engine)
started=$SECONDS
for t in "${tools[@]}"; do "tool_$t"; done
log "all done in $((SECONDS - started))s; binaries under $cache/bin"
