# Shared settings of the kind demo scripts (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KIND_DIR="${ROOT}/demo/kind"
CLUSTER_NAME="${CLUSTER_NAME:-tierra}"
IMAGE_REPO="${IMAGE_REPO:-ghcr.io/tierra-gpu/tierra}"
IMAGE_TAG="${IMAGE_TAG:-kind-dev}"
IMAGE="${IMAGE_REPO}:${IMAGE_TAG}"
RELEASE="${RELEASE:-tierra}"
NAMESPACE="${NAMESPACE:-tierra-system}"
# Demo only: every GPU node runs this fake machine (see the chart's
# plugin.machine).
FAKE_MACHINE="${FAKE_MACHINE:-fake:dgxh200}"
HELM="${HELM:-${ROOT}/_output/tools/helm-v3.22.0}"

log() { printf '%s [kind-demo] %s\n' "$(date +%H:%M:%S)" "$*"; }

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "kind demo: $c not found in PATH" >&2; exit 1; }
	done
}

kubectl_() { kubectl --context "kind-${CLUSTER_NAME}" "$@"; }
