#!/usr/bin/env bash
# Builds Helm from the Go module proxy into a git-ignored cache so the chart
# tests (test/deploy) render the chart with the real Helm, not a lookalike.
# Nothing needs Docker or a download site other than the module proxy.
#
# Output: _output/tools/helm-${HELM_VERSION} (override the folder with
# TIERRA_TOOLS). Idempotent: an existing binary that reports the wanted
# version is kept; FORCE=1 rebuilds it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${TIERRA_TOOLS:-${ROOT}/_output/tools}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
OUT="${TOOLS}/helm-${HELM_VERSION}"

log() { printf '%s [helm] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [[ "${FORCE:-0}" != 1 && -x "${OUT}" ]] &&
	"${OUT}" version --template '{{.Version}}' 2>/dev/null | grep -qx "${HELM_VERSION}"; then
	log "helm ${HELM_VERSION}: up to date (${OUT})"
	exit 0
fi

mkdir -p "${TOOLS}"
tmp="$(mktemp -d "${TOOLS}/.helm-build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

log "building helm.sh/helm/v3/cmd/helm@${HELM_VERSION} from the module proxy (first build ~2 min on 2 cores)…"
start=${SECONDS}
# Stamp the version the way helm's own release build does, so
# `helm version` (and the up-to-date check above) reads it.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
# GOFLAGS cleared: a caller's -mod=vendor (or the like) does not apply to a
# module@version install.
GOBIN="${tmp}" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "${ldflags}" \
	"helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
mv "${tmp}/helm" "${OUT}"
log "helm done in $((SECONDS - start)) s: $("${OUT}" version --short)"
