#!/usr/bin/env bash
# Builds the binaries of the test control plane from the official Go modules
# and gathers KServe's CRDs, into a cache directory outside the repository:
#
#   ${SEAWAY_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seaway-testbin}/<key>/
#     bin/   etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm
#     crds/kserve/*.yaml    KServe's CRDs
#     kwok-stages/*.yaml    kwok's stage configs (node and pod lifecycles)
#
# <key> names the pinned versions and a hash of the go.mod/go.sum files below,
# so a bump builds into a fresh directory. What is already there is skipped.
# Progress goes to stderr; the last line on stdout is the directory.
#
# Versions live in the go.mod files of tests/cluster/{kube,etcd,kwok,helm,kserve};
# this script reads them from there and pins nothing itself.
#
# Environment:
#   SEAWAY_TESTBIN_CACHE  root of the cache (default above)
#   SEAWAY_TESTBIN_JOBS   go build -p (default 2: the machines have 2 cores)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jobs=${SEAWAY_TESTBIN_JOBS:-2}
cache_root=${SEAWAY_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seaway-testbin}

log() { printf '[testbin] %s\n' "$*" >&2; }

# The version a go.mod requires for a module path, read without running go.
required() { # <dir> <module path>
    awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) { print ($1 == m ? $2 : $3); exit }' \
        "$here/$1/go.mod"
}

k8s=$(required kube k8s.io/kubernetes)
etcd=$(required etcd go.etcd.io/etcd/server/v3)
kwok=$(required kwok sigs.k8s.io/kwok)
helm=$(required helm helm.sh/helm/v3)
helm_client_go=$(required helm k8s.io/client-go)
kserve=$(required kserve github.com/kserve/kserve)
for v in "$k8s" "$etcd" "$kwok" "$helm" "$helm_client_go" "$kserve"; do
    [[ $v == v* ]] || { log "could not read a pinned version from tests/cluster/*/go.mod"; exit 1; }
done

recipe=2 # bump when the flags below change in a way that needs a rebuild
# go.mod by meaning (go mod edit -json), so comments and layout do not count.
sum=$( {
    echo "$recipe"
    for m in kube etcd kwok helm kserve; do
        (cd "$here/$m" && go mod edit -json && cat go.sum)
    done
} | sha256sum | cut -c1-10)
key="k8s${k8s#v}-etcd${etcd#v}-kwok${kwok#v}-helm${helm#v}-kserve${kserve#v}-$sum"
dir="$cache_root/$key"
mkdir -p "$dir/bin" "$dir/crds"

# One builder at a time per cache entry (parallel pytest sessions, CI + dev).
exec 9>"$dir/.lock"
flock 9
rm -rf "$dir"/.build.* # left by an interrupted build

export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"

start_all=$SECONDS
did=()

# go_build <module dir> <ldflags> <name=package>...: builds the missing ones in
# one go invocation (shared compilation), then moves them into place.
go_build() {
    local mod=$1 ldflags=$2
    shift 2
    local pkgs=() names=() item
    for item in "$@"; do
        if [[ -x $dir/bin/${item%%=*} ]]; then
            log "have ${item%%=*}"
        else
            names+=("${item%%=*}")
            pkgs+=("${item#*=}")
        fi
    done
    ((${#pkgs[@]})) || return 0
    local tmp t0=$SECONDS
    tmp=$(mktemp -d "$dir/.build.XXXXXX")
    log "building ${names[*]} (module tests/cluster/$mod, -p $jobs)"
    (cd "$here/$mod" && go build -p "$jobs" -trimpath -ldflags "-s -w $ldflags" -o "$tmp/" "${pkgs[@]}")
    local i
    for i in "${!names[@]}"; do
        # go build -o dir/ names a binary after the last path element that is
        # not a major-version suffix; rename to the name we want.
        local built
        built=$(basename "${pkgs[$i]}")
        [[ $built =~ ^v[0-9]+$ ]] && built=$(basename "$(dirname "${pkgs[$i]}")")
        mv "$tmp/$built" "$dir/bin/${names[$i]}"
    done
    rmdir "$tmp" 2>/dev/null || rm -rf "$tmp"
    log "built ${names[*]} in $((SECONDS - t0))s"
    did+=("${names[@]}")
}

# Kubernetes: stamp the version the way hack/lib/version.sh does, so that
# --version and /version tell the truth.
k8s_minor=${k8s#v1.}
k8s_minor=${k8s_minor%%.*}
k8s_date=$(cd "$here/kube" &&
    go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
k8s_ldflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    [[ -n $k8s_date ]] && k8s_ldflags+=" -X $pkg.buildDate=$k8s_date"
done
go_build kube "$k8s_ldflags" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kubectl=k8s.io/kubernetes/cmd/kubectl

# etcd's version is a constant in go.etcd.io/etcd/api/v3/version: nothing to stamp.
go_build etcd "" etcd=go.etcd.io/etcd/server/v3

go_build kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=${kwok#v}" kwok=sigs.k8s.io/kwok/cmd/kwok

# helm: as its Makefile does for a release tag; the Kubernetes version it
# assumes for `helm template`/lint follows the client-go it is built with.
helm_k8s_minor=${helm_client_go#v0.}
helm_k8s_minor=${helm_k8s_minor%%.*}
go_build helm "-X helm.sh/helm/v3/internal/version.version=$helm \
-X helm.sh/helm/v3/internal/version.metadata= \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$helm_k8s_minor \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_k8s_minor" helm=helm.sh/helm/v3/cmd/helm

# KServe CRDs: the set KServe's own config/crd/full kustomization installs
# (its llmisvc and localmodel CRDs need conversion webhooks or extra
# components and are left out).
if [[ -f $dir/crds/kserve/.complete ]]; then
    log "have KServe $kserve CRDs"
else
    t0=$SECONDS
    src=$(cd "$here/kserve" && go mod download -json github.com/kserve/kserve |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d $src/config/crd/full ]] || { log "no config/crd/full in the KServe module at '$src'"; exit 1; }
    rm -rf "$dir/crds/kserve" && mkdir -p "$dir/crds/kserve"
    cp "$src"/config/crd/full/serving.kserve.io_*.yaml \
        "$src"/config/crd/full/clusterstoragecontainer/serving.kserve.io_*.yaml "$dir/crds/kserve/"
    chmod u+w "$dir"/crds/kserve/*.yaml
    touch "$dir/crds/kserve/.complete"
    log "copied KServe $kserve CRDs in $((SECONDS - t0))s"
    did+=("kserve-crds")
fi

# kwok's own "fast" stages (as `kwokctl` configures them): nodes turn Ready and
# keep a lease; pods go Running/Ready, Job pods Succeeded, deleted pods go away.
if [[ -f $dir/kwok-stages/.complete ]]; then
    log "have kwok $kwok stages"
else
    src=$(cd "$here/kwok" && go mod download -json sigs.k8s.io/kwok |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$dir/kwok-stages" && mkdir -p "$dir/kwok-stages"
    cp "$src"/kustomize/stage/node/fast/node-initialize.yaml \
        "$src"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        "$src"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml "$dir/kwok-stages/"
    chmod u+w "$dir"/kwok-stages/*.yaml
    touch "$dir/kwok-stages/.complete"
    log "copied kwok $kwok stages"
    did+=("kwok-stages")
fi

cat >"$dir/versions.txt" <<EOF
kubernetes $k8s
etcd $etcd
kwok $kwok
helm $helm
kserve $kserve
EOF

if ((${#did[@]})); then
    log "done in $((SECONDS - start_all))s: ${did[*]}"
else
    log "all up to date ($key)"
fi
echo "$dir"
