#!/usr/bin/env bash
# Builds the local cluster harness's binaries into a git-ignored cache
# (default _output/bin): etcd, kube-apiserver, kube-scheduler,
# kube-controller-manager, kubectl and kwok (plus kwok's Stage configs), and
# tierra-scheduler (kube-scheduler + the TierraYield plugin; SKIP_SCHEDULER=1
# leaves it out).
# Everything comes from the Go module proxy; nothing needs Docker.
#
# Idempotent: each group writes a stamp holding its versions, the Go version
# and a hash of its go.mod/go.sum; a group whose stamp matches and whose
# binaries exist is skipped. FORCE=1 rebuilds everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${TIERRA_CLUSTER_BIN:-${ROOT}/_output/bin}"
ETCD_VERSION=v3.7.0
K8S_VERSION=v1.37.1
KWOK_VERSION=v0.8.0
# Bump when the layout of the copied kwok stages changes, to recopy them.
KWOK_STAGES_LAYOUT=2
GO_VERSION="$(go env GOVERSION)"
mkdir -p "${BIN}"

log() { printf '%s [cluster-build] %s\n' "$(date +%H:%M:%S)" "$*"; }

# current NAME WANT FILE... succeeds when NAME's stamp says WANT and FILEs exist.
current() {
	local name=$1 want=$2; shift 2
	[[ "${FORCE:-0}" == 1 ]] && return 1
	[[ -f "${BIN}/.stamp-${name}" ]] || return 1
	[[ "$(cat "${BIN}/.stamp-${name}")" == "${want}" ]] || return 1
	local f
	for f in "$@"; do [[ -e "${BIN}/${f}" ]] || return 1; done
}

modhash() { cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-16; }

build_etcd() {
	local dir="${ROOT}/hack/tools/etcd"
	local want="etcd ${ETCD_VERSION} ${GO_VERSION} $(modhash "${dir}")"
	if current etcd "${want}" etcd; then log "etcd ${ETCD_VERSION}: up to date"; return; fi
	log "building etcd ${ETCD_VERSION} (first build ~20 s)…"
	(cd "${dir}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${BIN}/etcd" .)
	echo "${want}" >"${BIN}/.stamp-etcd"
	log "etcd done"
}

build_k8s() {
	local dir="${ROOT}/hack/tools/k8s"
	local cmds=(kube-apiserver kube-scheduler kube-controller-manager kubectl)
	local want="k8s ${K8S_VERSION} ${GO_VERSION} $(modhash "${dir}")"
	if current k8s "${want}" "${cmds[@]}"; then log "kubernetes ${K8S_VERSION}: up to date"; return; fi
	log "building ${cmds[*]} ${K8S_VERSION} (first build ~10 min and ~3 GiB on 2 cores)…"
	local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
	local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION}"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
	local pkgs=() c
	for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
	(cd "${dir}" && CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${BIN}/" "${pkgs[@]}")
	echo "${want}" >"${BIN}/.stamp-k8s"
	log "kubernetes done: $("${BIN}/kube-apiserver" --version)"
}

build_kwok() {
	local want="kwok ${KWOK_VERSION} ${GO_VERSION} stages-layout-${KWOK_STAGES_LAYOUT}"
	if current kwok "${want}" kwok kwok-stages; then log "kwok ${KWOK_VERSION}: up to date"; return; fi
	log "building kwok ${KWOK_VERSION} (first build ~70 s)…"
	CGO_ENABLED=0 GOBIN="${BIN}" GOFLAGS=-mod=mod go install "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
	# kwok has no built-in stages; ship the module's own next to the binary,
	# keeping its layout (e.g. node/fast/node-initialize.yaml,
	# node/heartbeat/node-heartbeat.yaml, pod/fast/pod-ready.yaml).
	local src
	src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage"
	rm -rf "${BIN}/kwok-stages"
	mkdir -p "${BIN}/kwok-stages"
	(cd "${src}" && find . -name '*.yaml' ! -name kustomization.yaml ! -path '*/testdata/*' \
		-exec cp --parents {} "${BIN}/kwok-stages/" \;)
	chmod -R u+w "${BIN}/kwok-stages"
	echo "${want}" >"${BIN}/.stamp-kwok"
	log "kwok done ($(find "${BIN}/kwok-stages" -name '*.yaml' | wc -l) stage files)"
}

# srchash hashes the Go sources (tests aside) and module files under the
# given directories of the repository.
srchash() {
	(cd "${ROOT}" && find "$@" \( -name '*.go' ! -name '*_test.go' \) -o -name go.mod -o -name go.sum | sort | xargs cat) |
		sha256sum | cut -c1-16
}

# tierra-scheduler is kube-scheduler with the TierraYield plugin, in its own
# module (cmd/tierra-scheduler); built like build_k8s's binaries so that it
# shares their build cache: only the plugin and the link are new.
build_scheduler() {
	local dir="${ROOT}/cmd/tierra-scheduler"
	local want="tierra-scheduler ${K8S_VERSION} ${GO_VERSION} $(srchash cmd/tierra-scheduler pkg api go.mod)"
	if current scheduler "${want}" tierra-scheduler; then log "tierra-scheduler: up to date"; return; fi
	log "building tierra-scheduler (kube-scheduler ${K8S_VERSION} + TierraYield; ~2 min after the kubernetes build)…"
	local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
	local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION}"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
	(cd "${dir}" && CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${BIN}/tierra-scheduler" .)
	echo "${want}" >"${BIN}/.stamp-scheduler"
	log "tierra-scheduler done"
}

start=${SECONDS}
build_etcd
build_kwok
build_k8s
[[ "${SKIP_SCHEDULER:-0}" == 1 ]] || build_scheduler
log "all binaries current in ${BIN} ($((SECONDS - start)) s)"
