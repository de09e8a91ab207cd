#!/usr/bin/env bash
# Builds Kueue's controller manager from the Go module proxy into the local
# cluster harness's git-ignored cache, so the queue tests (test/queues) run
# the real Kueue against the local control plane. Kueue's own go.mod has no
# replace directives, so `go install module@version` builds it with exactly
# the dependency versions its release pins (k8s.io v0.35.x, controller-runtime
# v0.23.x), apart from the project's modules; nothing needs Docker.
#
# The CRDs are not copied: the tests read them from the module cache copy
# (sigs.k8s.io/kueue@${KUEUE_VERSION}/config/components/crd/bases), which this
# script downloads as a side effect of the install.
#
# Output: _output/bin/kueue-${KUEUE_VERSION} (override the folder with
# TIERRA_CLUSTER_BIN). Idempotent: an existing binary is kept; FORCE=1
# rebuilds it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${TIERRA_CLUSTER_BIN:-${ROOT}/_output/bin}"
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
OUT="${BIN}/kueue-${KUEUE_VERSION}"

log() { printf '%s [kueue] %s\n' "$(date +%H:%M:%S)" "$*"; }

# GOFLAGS cleared: a caller's -mod=vendor (or the like) does not apply to a
# module@version install or download.
export GOFLAGS=
# The tests read the CRDs from the module cache; make sure they are there
# even when the binary is cached (a fresh GOMODCACHE, a cleaned one).
go mod download "sigs.k8s.io/kueue@${KUEUE_VERSION}"

if [[ "${FORCE:-0}" != 1 && -x "${OUT}" ]]; then
	log "kueue ${KUEUE_VERSION}: up to date (${OUT})"
	exit 0
fi

mkdir -p "${BIN}"
tmp="$(mktemp -d "${BIN}/.kueue-build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

log "building sigs.k8s.io/kueue/cmd/kueue@${KUEUE_VERSION} from the module proxy (first build: minutes; 55 min measured on 2 cores shared with the control-plane build)…"
start=${SECONDS}
# Stamp the version the way Kueue's Makefile does (pkg/version).
ldflags="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=${KUEUE_VERSION}"
GOBIN="${tmp}" CGO_ENABLED=0 go install -trimpath -ldflags "${ldflags}" \
	"sigs.k8s.io/kueue/cmd/kueue@${KUEUE_VERSION}"
mv "${tmp}/kueue" "${OUT}"
log "kueue done in $((SECONDS - start)) s (${OUT})"
