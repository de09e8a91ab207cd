#!/usr/bin/env bash
# Deletes the demo's kind cluster (safe to repeat).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need kind
if kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
	kind delete cluster --name "${CLUSTER_NAME}"
else
	log "no kind cluster ${CLUSTER_NAME}"
fi
