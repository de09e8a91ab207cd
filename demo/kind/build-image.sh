#!/usr/bin/env bash
# Builds Tierra's image (deployments/container/Dockerfile) and loads it into
# the kind cluster's nodes, so the chart runs it without a registry.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need docker kind

log "building ${IMAGE}…"
docker build -f "${ROOT}/deployments/container/Dockerfile" -t "${IMAGE}" "${ROOT}"
log "loading ${IMAGE} into kind cluster ${CLUSTER_NAME}…"
kind load docker-image "${IMAGE}" --name "${CLUSTER_NAME}"
