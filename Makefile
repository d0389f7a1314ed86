# credchain — see README.md. Everything builds from Go modules; the real servers the tests and demo
# run against are built once into $(CREDCHAIN_TESTBIN) (default ~/.cache/credchain/testbin).
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin

.PHONY: all build test unit e2e testbin demo bench peerbench fuzz vet clean image

all: build

build:
	$(GO) build -o $(BIN)/credchain ./cmd/credchain

## testbin: build kube-apiserver, etcd, kubectl and Vault from their Go modules (skips what is cached).
testbin:
	hack/testbin.sh k8s etcd vault eso registry helm promcrds promcheck

## test: build what the tests need, then run every test (unit, fuzz seeds, envtest integration).
## -timeout 45m: go test's 10m per package is too short on a cold cache, where a test package that
## builds the credchain binary itself (cmd/credchain, e2e) compiles client-go from scratch first.
test: testbin vet
	CI=$${CI:-false} $(GO) test -count=1 -race -timeout 45m ./...

## unit: tests that need no server.
unit:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

## demo: the incident (scenarios 1-3 of e2e/) narrated on real local servers; cleans up after itself.
demo: build
	hack/testbin.sh k8s etcd vault eso registry
	$(GO) run ./hack/demo --credchain $(BIN)/credchain --manifests manifests

## e2e: only the incident replay (make test runs it too).
e2e: testbin
	CI=$${CI:-false} $(GO) test -count=1 -race -timeout 45m -v -run TestIncident ./e2e

## bench: the performance targets of docs/benchmarks.md.
bench:
	hack/bench.sh

## peerbench: credchain's webhook against the Kyverno policy of docs/kyverno.md through one kube-apiserver (builds Kyverno v1.19.1 first, ~6-8 min cold; never part of test or testbin).
peerbench: build
	hack/testbin.sh k8s etcd kyverno
	cd hack/peerbench && $(GO) run . --credchain ../../$(BIN)/credchain $(PEERBENCH_ARGS)

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	for t in FuzzExtractPodRefs FuzzExtractFastMatchesStdlib; do $(GO) test ./webhook -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	for t in FuzzEntry FuzzReadLines FuzzDecodeEntryMatchesStdlib; do $(GO) test ./auditguard -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	$(GO) test ./internal/vaultacl -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

## image: the container image (needs a Docker engine; these machines have none).
IMAGE ?= ghcr.io/credchain/credchain:dev
image:
	docker build -f hack/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(BIN)
