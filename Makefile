# devctl — the index of developer tasks. `make help` lists them.
SHELL := /usr/bin/env bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/devctl/devctl/internal/version.Version=$(VERSION) -X github.com/devctl/devctl/internal/version.Commit=$(COMMIT)
BIN ?= $(CURDIR)/bin
GOLANGCI_LINT_VERSION ?= v2.15.0
# AGENT_ARCHES are the architectures of the live-update agent embedded in
# devctl (the nodes' architecture: the host's by default).
AGENT_ARCHES ?= $(shell $(GO) env GOARCH)
AGENT_BIN := internal/agent/agentbin/bin
# The vcluster chart, packed from the github.com/loft-sh/vcluster module and
# embedded by build (tag vclusterchart); git ignores it.
VCLUSTER_CHART := envs/internal/providers/vcluster/chart/vcluster.tgz
VCLUSTER_VERSION := $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' envs/internal/providers/vcluster/chart.go)
export DEVCTL_E2E_CACHE ?= $(HOME)/.cache/devctl-e2e

.PHONY: help build agent vcluster-chart install unit fuzz integration e2e test test-deps k8s-tools e2e-images lint vet fmt verify clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: agent vcluster-chart ## build bin/devctl (the lean front: checks plain manifests, runs devctl-core for the rest), bin/devctl-core (static, trimmed, versioned, with the live-update agent and the vcluster chart embedded) and bin/devctl-mocks
	CGO_ENABLED=0 $(GO) build -tags agentembed,vclusterchart -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/devctl-core ./cmd/devctl-core
	CGO_ENABLED=0 $(GO) build -tags devctl_lean -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/devctl ./cmd/devctl
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/devctl-mocks ./cmd/devctl-mocks

vcluster-chart: ## pack the vcluster chart of the Go module (version in envs/internal/providers/vcluster/chart.go) for build to embed
	@dir=$$($(GO) mod download -json github.com/loft-sh/vcluster@$(VCLUSTER_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	[ -f "$$dir/chart/Chart.yaml" ] || { echo "no chart in github.com/loft-sh/vcluster@$(VCLUSTER_VERSION) (is the Go module proxy reachable?)" >&2; exit 1; }; \
	mkdir -p $(dir $(VCLUSTER_CHART)); \
	tar -czf $(VCLUSTER_CHART).tmp -C "$$dir" --exclude=chart/tests --mode=u+w --transform 's,^chart,vcluster,' chart && \
	mv $(VCLUSTER_CHART).tmp $(VCLUSTER_CHART)

agent: ## build the live-update agent for linux/$(AGENT_ARCHES) into $(AGENT_BIN) (build embeds it)
	@for arch in $(AGENT_ARCHES); do \
		echo "CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -o $(AGENT_BIN)/devctl-agent-linux-$$arch ./cmd/devctl-agent"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(AGENT_BIN)/devctl-agent-linux-$$arch ./cmd/devctl-agent || exit 1; \
	done

install: ## build and install devctl, check Docker (see install.sh --help)
	./install.sh

# LEAN_PKGS are the packages of the lean front (bin/devctl, tag devctl_lean):
# unit and vet also build them with the tag, which swaps files of internal/policy.
LEAN_PKGS := ./cmd/devctl ./internal/check/... ./internal/policy/...

unit: ## unit tests (hermetic, race detector on), the lean front's packages also with its build tag
	$(GO) test -race -short ./...
	$(GO) test -race -short -tags devctl_lean $(LEAN_PKGS)

# FUZZ_TARGETS are package:FuzzFunc pairs; their seed corpora also run in
# every `go test`.
FUZZ_TARGETS := ./internal/config:FuzzParse ./envs:FuzzName ./internal/policy:FuzzParseManifests ./internal/policy:FuzzParseWaivers ./internal/policy:FuzzReadBlockYAML
FUZZTIME ?= 30s
fuzz: ## run each fuzz test for FUZZTIME (default 30s; CI: make fuzz FUZZTIME=10s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME); \
	done

k8s-tools: ## build the fast control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok); cached
	e2e/tools/k8s-tools.sh

integration: k8s-tools e2e-images ## integration tests: a real Docker engine, a local control plane, a kind cluster
	DEVCTL_NODE_IMAGE="$$(e2e/images/build.sh --print-image)" \
		DEVCTL_POSTGRES_IMAGE="$$(e2e/images/postgres.sh --print-image)" \
		$(GO) test -race -count=1 -timeout 30m -run 'Integration' ./...

e2e-images: ## build the offline kind node image, test images, PostgreSQL and vcluster images (in parallel); cached; prints the node image last
	@e2e/images/postgres.sh >/dev/null & pg=$$!; \
	e2e/images/vcluster.sh >/dev/null & vc=$$!; \
	e2e/images/build.sh; rc=$$?; \
	wait $$pg || { echo "e2e/images/postgres.sh failed (see above)" >&2; exit 1; }; \
	wait $$vc || { echo "e2e/images/vcluster.sh failed (see above)" >&2; exit 1; }; \
	exit $$rc

e2e: build e2e-images ## end-to-end tests: the built binary against a real kind cluster
	DEVCTL_BIN=$(BIN)/devctl DEVCTL_NODE_IMAGE="$$(e2e/images/build.sh --print-image)" \
		DEVCTL_POSTGRES_IMAGE="$$(e2e/images/postgres.sh --print-image)" \
		$(GO) test -tags e2e -count=1 -timeout 40m -v ./e2e/...

test-deps: ## check (and on Debian, install) what the tests need beyond install.sh: tmux for the TUI end-to-end test
	@missing=(); for c in tmux; do command -v $$c >/dev/null || missing+=($$c); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
		command -v apt-get >/dev/null || { echo "the tests need: $${missing[*]} (install them with your package manager)"; exit 1; }; \
		echo "installing $${missing[*]} for the tests ..."; \
		if [ "$$(id -u)" = 0 ]; then s=; else s=sudo; fi; \
		$$s apt-get update -qq && $$s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	fi

test: test-deps unit integration e2e ## everything CI runs

vet: ## go vet (the lean front's packages also with its build tag)
	$(GO) vet ./...
	$(GO) vet -tags devctl_lean $(LEAN_PKGS)

lint: ## golangci-lint, pinned
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

fmt: ## gofmt the tree
	gofmt -s -w $$(git ls-files '*.go')

verify: vet lint ## vet, lint and gofmt check
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi

clean: ## remove build output (not the e2e cache)
	rm -rf $(BIN) $(AGENT_BIN) $(dir $(VCLUSTER_CHART))
