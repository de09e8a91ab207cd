#!/usr/bin/env bash
# The Tierra demo on kind, end to end:
#   1. a kind cluster (kind-config.yaml: CDI on, three labelled GPU workers);
#   2. the image built and loaded (build-image.sh);
#   3. the Helm chart installed with fake GPUs (plugin.machine, demo only);
#   4. the admin's TierPolicy (demo/tierpolicy.yaml) and tenant namespaces;
#   5. the scenarios `make demo` places offline (demo/scenarios/*), applied
#      for real: the scheduler allocates, the plugins prepare.
# Idempotent: an existing cluster is reused. down.sh deletes it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need docker kind kubectl

if kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
	log "kind cluster ${CLUSTER_NAME} exists; reusing it"
else
	log "creating kind cluster ${CLUSTER_NAME}…"
	kind create cluster --name "${CLUSTER_NAME}" --config "${KIND_DIR}/kind-config.yaml" \
		${KIND_NODE_IMAGE:+--image "${KIND_NODE_IMAGE}"}
fi
kubectl_ api-resources --api-group=resource.k8s.io -o name | grep -qx 'resourceslices.resource.k8s.io' || {
	echo "kind demo: the cluster serves no resource.k8s.io ResourceSlices; use a node image of Kubernetes >= 1.36 (KIND_NODE_IMAGE)" >&2
	exit 1
}

"${KIND_DIR}/build-image.sh"

# The plugins publish by the TierPolicy, so it exists before they start:
# the CRD from the chart's crds/ (helm leaves an existing CRD alone), then
# the admin's policy and the tenants' namespaces.
log "applying the TierPolicy CRD, the admin's TierPolicy and the tenants' namespaces…"
kubectl_ apply --server-side -f "${ROOT}/deployments/helm/tierra/crds/"
kubectl_ wait --for=condition=Established crd/tierpolicies.tierra.dev --timeout 1m
kubectl_ apply --server-side -f "${ROOT}/demo/tierpolicy.yaml"
kubectl_ apply --server-side -f "${KIND_DIR}/namespaces.yaml"

[[ -x "${HELM}" ]] || "${ROOT}/hack/tools/helm.sh"
log "installing the chart (release ${RELEASE}, namespace ${NAMESPACE}, ${FAKE_MACHINE})…"
# The workers carry no nvidia.com/gpu taint and the control plane's taint
# keeps the plugin off it: the DaemonSet runs on the three workers.
"${HELM}" upgrade --install "${RELEASE}" "${ROOT}/deployments/helm/tierra" \
	--kube-context "kind-${CLUSTER_NAME}" --namespace "${NAMESPACE}" --create-namespace \
	--set image.repository="${IMAGE_REPO}" --set image.tag="${IMAGE_TAG}" --set image.pullPolicy=Never \
	--set plugin.machine="${FAKE_MACHINE}" --set-string plugin.fakeMIGNodes="tierra.dev/tier=inference" \
	--wait --timeout 5m

log "waiting for the tier DeviceClasses (the controller renders them)…"
for class in training inference dev; do
	until kubectl_ get deviceclass "${class}.gpu.tierra.dev" >/dev/null 2>&1; do sleep 2; done
done
kubectl_ get resourceslices -o wide

log "applying demo/scenarios…"
for dir in "${ROOT}"/demo/scenarios/*/; do
	log "  scenario $(basename "${dir}")"
	kubectl_ apply --server-side -f "${dir}"
done
log "waiting up to 2 minutes for the scenarios' pods…"
kubectl_ wait --for=condition=Ready pods --all -n research --timeout 2m || true
kubectl_ wait --for=condition=Ready pods --all -n product --timeout 2m || true

log "result:"
kubectl_ get pods,resourceclaims -n research -o wide
kubectl_ get pods,resourceclaims -n product -o wide
kubectl_ get tierpolicy default
log "try the tenancy policy: tenant product may not claim the training tier:"
kubectl_ -n product create -f - <<'YAML' || true
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata:
  name: wants-training
spec:
  devices:
    requests:
    - name: gpu
      exactly:
        deviceClassName: training.gpu.tierra.dev
YAML
