# Tierra — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/_output/bin
TOOLS     := $(CURDIR)/_output/tools
# go-nvml's header marks some symbols deprecated; cgo warnings are noise.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
# Pure packages must build without cgo; pkg/nvgpu is the only cgo package.
PURE_PKGS := ./api/... ./pkg/inventory/...

STATICCHECK_VERSION    := v0.8.2
CONTROLLER_GEN_VERSION := v0.23.0
STATICCHECK    := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
CONTROLLER_GEN := $(TOOLS)/controller-gen-$(CONTROLLER_GEN_VERSION)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the binaries into _output/bin.
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: test
test: check test-unit ## Everything: static checks and all tests.

.PHONY: test-unit
test-unit: ## Unit, conformance and allocator tests (race detector on).
	CGO_ENABLED=0 $(GO) build $(PURE_PKGS)
	$(GO) test -race -count=1 ./...

.PHONY: check
check: $(STATICCHECK) ## gofmt, go vet, staticcheck, and the go-nvml import rule.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^_output/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@bad=$$(git grep -l 'github.com/NVIDIA/go-nvml' -- '*.go' | grep -v '^pkg/nvgpu/' || true); \
	  if [ -n "$$bad" ]; then echo "go-nvml imported outside pkg/nvgpu:"; echo "$$bad"; exit 1; fi

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code and CRD YAML from api/.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=deployments/helm/tierra/crds

.PHONY: demo
demo: ## Run the most complete real path that works so far (see README).
	$(GO) run ./cmd/tierra inspect --machine fake:dgxh200

$(STATICCHECK):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck $@

$(CONTROLLER_GEN):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(TOOLS)/controller-gen $@

.PHONY: clean
clean: ## Remove build outputs.
	rm -rf _output
