#!/usr/bin/env bash
# Rolls the kubelet plugin DaemonSet (as an upgrade does) while the demo's
# pods keep their GPUs: with maxSurge 1 / maxUnavailable 0 and per-pod
# sockets, each node's new plugin registers beside the old one before the
# old one stops. Then starts a fresh pod with a claim to show prepare works
# on the upgraded plugins. Run after up.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need kubectl

ds="${RELEASE}-kubelet-plugin"
log "plugin pods before:"
kubectl_ -n "${NAMESPACE}" get pods -l app.kubernetes.io/component=kubelet-plugin -o wide
kubectl_ -n "${NAMESPACE}" rollout restart daemonset "${ds}"
kubectl_ -n "${NAMESPACE}" rollout status daemonset "${ds}" --timeout 5m
log "plugin pods after:"
kubectl_ -n "${NAMESPACE}" get pods -l app.kubernetes.io/component=kubelet-plugin -o wide

log "a new pod with a dev-tier claim, prepared by the upgraded plugins:"
kubectl_ -n research delete pod upgrade-check --ignore-not-found --wait
kubectl_ -n research apply --server-side -f - <<'YAML'
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata:
  name: upgrade-check
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: dev.gpu.tierra.dev
---
apiVersion: v1
kind: Pod
metadata:
  name: upgrade-check
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources:
      claims: [{name: gpu}]
  resourceClaims:
  - name: gpu
    resourceClaimTemplateName: upgrade-check
YAML
kubectl_ -n research wait --for=condition=Ready pod/upgrade-check --timeout 2m
kubectl_ -n research get pod upgrade-check -o wide
