# Tierra — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/_output/bin
TOOLS     := $(CURDIR)/_output/tools
# go-nvml's header marks some symbols deprecated; cgo warnings are noise.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
# The data openb trace for the yield benchmark (never copied into the repo).
OPENB     ?= $(CURDIR)/../shared/data/openb

STATICCHECK_VERSION    := v0.8.2
LOGCHECK_VERSION       := v0.11.0
CONTROLLER_GEN_VERSION := v0.23.0
HELM_VERSION           := v3.22.0
PROMETHEUS_VERSION     := 2.42.0
KUEUE_VERSION          := v0.17.0
STATICCHECK    := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
LOGCHECK       := $(TOOLS)/logcheck-$(LOGCHECK_VERSION)
HELM           := $(TOOLS)/helm-$(HELM_VERSION)
CONTROLLER_GEN := $(TOOLS)/controller-gen-$(CONTROLLER_GEN_VERSION)
PROMTOOL       := $(TOOLS)/prometheus-$(PROMETHEUS_VERSION)/usr/bin/promtool

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the binaries into _output/bin.
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: test
test: check cluster-build test-unit test-apiserver ## Everything: static checks, unit, conformance, apiserver and control-plane tests.

.PHONY: test-unit
test-unit: ## Unit, fake-machine conformance and allocator conformance tests (race detector on).
	@# Only pkg/nvgpu needs cgo (go-nvml); everything else, and a stub of it, builds without.
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) test -race -count=1 ./...

.PHONY: test-apiserver
test-apiserver: helm prometheus kueue ## Tests in the test/ module: apiserver validation of what we publish, and the local control plane.
	@# -p 1: each package starts its own control plane; two at once on 2 cores only slow each other down.
	cd test && $(GO) test -p 1 -count=1 ./...

.PHONY: helm
helm: ## Build Helm v3.22.0 from the Go module proxy into _output/tools (the chart tests render with it).
	HELM_VERSION=$(HELM_VERSION) hack/tools/helm.sh

.PHONY: kueue
kueue: ## Build Kueue's controller manager v0.17.0 from the Go module proxy into _output/bin (queue tests run it; its CRDs are read from the module cache).
	KUEUE_VERSION=$(KUEUE_VERSION) hack/tools/kueue.sh

.PHONY: prometheus
prometheus: ## Unpack Debian's prometheus 2.42.0 + promtool into _output/tools (apt-get download, no service); tests scrape with it and check the chart's rules.
	PROMETHEUS_VERSION=$(PROMETHEUS_VERSION) hack/tools/prometheus.sh

.PHONY: test-deploy
test-deploy: helm cluster-build ## The Helm chart: lint/render with the real Helm, RBAC + admission + plugin rollout on the local control plane.
	cd test && $(GO) test -count=1 -v ./deploy/

.PHONY: cluster-build
cluster-build: ## Build etcd, kube-apiserver/-scheduler/-controller-manager/kubectl v1.37.1 and kwok into _output/bin (first time ~9 min).
	hack/tools/build.sh

.PHONY: cluster-up
cluster-up: cluster-build ## Start a local control plane (+kwok) on 127.0.0.1 in _output/cluster; prints the KUBECONFIG.
	cd test && $(GO) run ./cmd/tierra-cluster up

.PHONY: cluster-down
cluster-down: ## Stop the local control plane (safe to repeat).
	cd test && $(GO) run ./cmd/tierra-cluster down

.PHONY: test-e2e
test-e2e: cluster-build helm prometheus ## End to end on a real control plane: the harness, and simulated GPU nodes (real plugin + kubelet DRA manager) under the real scheduler.
	cd test && $(GO) test -count=1 -v ./cluster/... ./e2e/

.PHONY: bench
bench: ## Benchmarks: allocator cost per published shape (vs NVIDIA's MIG shape), prepare over the DRA socket, checkpoint and CDI writes.
	$(GO) test -run '^$$' -bench . -benchtime 10x ./pkg/slices/
	$(GO) test -run '^$$' -bench . -benchtime 200x ./pkg/plugin/ ./pkg/checkpoint/ ./pkg/cdi/

.PHONY: bench-prepare
bench-prepare: cluster-build ## Kubelet plugin prepare/unprepare over the DRA socket against a local kube-apiserver (test/prepbench): p50/p99, pairs/s, time per step.
	cd test && $(GO) test -count=1 -run '^$$' -bench . -benchtime 500x ./prepbench/

.PHONY: bench-yield
bench-yield: ## Replay the openb GPU trace (FGD setup, seeds 42-51) through the allocator; SVG in _output/yield.svg.
	@mkdir -p _output
	$(GO) run ./cmd/tierra sim --data $(OPENB) --plot _output/yield.svg

.PHONY: check
check: $(STATICCHECK) $(LOGCHECK) prometheus ## gofmt, go vet, staticcheck, logcheck (contextual logging), the go-nvml import rule, promtool on the chart's rules.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^_output/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd test && $(GO) vet ./... && $(STATICCHECK) ./...
	@# Contextual logging only (klog.FromContext and friends), in every module.
	$(LOGCHECK) -check-contextual ./...
	cd test && $(LOGCHECK) -check-contextual ./...
	cd cmd/tierra-scheduler && $(LOGCHECK) -check-contextual ./...
	@bad=$$(git grep -l 'github.com/NVIDIA/go-nvml' -- '*.go' | grep -v '^pkg/nvgpu/' || true); \
	  if [ -n "$$bad" ]; then echo "go-nvml imported outside pkg/nvgpu:"; echo "$$bad"; exit 1; fi
	$(PROMTOOL) check rules deployments/helm/tierra/rules/*.rules.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code and CRD YAML from api/.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=deployments/helm/tierra/crds

.PHONY: demo
demo: cluster-build helm prometheus kueue ## The demo on a local control plane: controller + simulated DGX H200 and L4 nodes run demo/scenarios; prints pod -> tier -> node -> device -> $/hour, the yield, Kueue queues (queued, preempted, running), and per-tenant GPU use from a live Prometheus. Stays up.
	cd test && $(GO) run ./cmd/tierra-demo up

.PHONY: demo-down
demo-down: ## Stop everything make demo started (safe to repeat).
	cd test && $(GO) run ./cmd/tierra-demo down

.PHONY: demo-offline
demo-offline: ## No cluster: a fake DGX H200 as the plugin sees it, and demo/scenarios placed offline by the scheduler's allocator.
	@echo "== A fake DGX H200, as the kubelet plugin discovers it (tierra inspect)"
	$(GO) run ./cmd/tierra inspect --machine fake:dgxh200
	@echo
	@echo "== demo/scenarios placed on demo/cluster.yaml under demo/tierpolicy.yaml (tierra allocate)"
	$(GO) run ./cmd/tierra allocate --cluster demo/cluster.yaml --policy demo/tierpolicy.yaml demo/scenarios

.PHONY: demo-kind
demo-kind: helm ## The demo on kind (needs Docker and kind): cluster, image, chart with fake GPUs, demo/scenarios.
	demo/kind/up.sh

$(STATICCHECK):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck $@

$(LOGCHECK):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install sigs.k8s.io/logtools/logcheck@$(LOGCHECK_VERSION)
	mv $(TOOLS)/logcheck $@

$(CONTROLLER_GEN):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(TOOLS)/controller-gen $@

.PHONY: clean
clean: ## Remove build outputs.
	rm -rf _output

.PHONY: scheduler-build
scheduler-build: ## Build tierra-scheduler (kube-scheduler v1.37.1 + the TierraYield plugin) into _output/bin; part of cluster-build.
	hack/tools/build.sh

.PHONY: bench-scheduler
bench-scheduler: ## TierraYield's Score per (pod, node) and a DRA pod's cycle with/without it at the 1,213 openb nodes.
	cd cmd/tierra-scheduler && $(GO) test -run '^$$' -bench . -benchtime 100x ./yield/

.PHONY: bench-yield-live
bench-yield-live: cluster-build ## The full openb cluster (1,213 kwok nodes) at 130% through tierra-scheduler on the local control plane, next to the sim's scorers; prints the table and wall time (long).
	cd test && TIERRA_YIELD_LIVE=1 $(GO) test -count=1 -v -timeout 3h -run TestYieldLive ./scheduler/
