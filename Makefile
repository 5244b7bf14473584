# ferry's build and test entry points (GNU make). `make help` lists them.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       ?= bin
# Packages `make test` and `make vet` cover; narrow it for a quick loop:
#   make test PKGS=./config/...
PKGS      ?= ./...
# Extra `go test` flags, e.g. TESTFLAGS='-run TestSeededWorld -v'.
TESTFLAGS ?=

# The build identity `ferry version` and ferry_build_info report, stamped
# into the binary at link time (internal/buildinfo).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILDINFO := github.com/ferryworks/ferry/internal/buildinfo
LDFLAGS   := -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).revision=$(REVISION)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: check-go
check-go:
	@command -v $(GO) >/dev/null || { echo "make: Go is not installed (need the version in go.mod)" >&2; exit 1; }

.PHONY: build
build: check-go ## build bin/devstack and bin/ferry, stamped with VERSION and REVISION
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/devstack ./cmd/devstack
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ferry ./cmd/ferry

.PHONY: ldflags
ldflags: ## print the -ldflags that stamp VERSION and REVISION into a build
	@echo '$(LDFLAGS)'

# Packages whose tests run at once. Many tests mostly wait (SQS visibility
# timeouts, worker processes, the chaos campaign's schedule), so more than
# one per core keeps the cores busy while they do.
TESTP     ?= 4

.PHONY: check
check: check-go ## the edit loop, seconds when warm: go vet + unit tests (go test -short: no Redis, no local AWS, no built binaries)
	$(GO) vet $(PKGS)
	env -u FERRY_REDIS_URL -u CI $(GO) test -short $(TESTFLAGS) $(PKGS)

.PHONY: test
test: check-go ## go vet + every test with -race, fuzz seed corpora included (throwaway redis-server unless FERRY_REDIS_URL is set), the Redis packages again on a 6-node Redis Cluster
	@# The devstack tests drive the aws CLI and rclone (Debian: awscli, rclone); Redis is installed
	@# here, before the two passes of .ci/test.sh start, so they never race for apt.
	@.ci/need.sh --warn --hint "the tests that drive them fail under CI" test aws:awscli rclone:rclone redis-server:redis-server redis-cli:redis-tools
	GO='$(GO)' PKGS='$(PKGS)' TESTP='$(TESTP)' TESTFLAGS='$(TESTFLAGS)' .ci/test.sh

# Each fuzz target runs this long in `make fuzz` (on top of its seed corpus,
# which `make test` already runs); CI runs them shorter (.ci/run).
FUZZTIME  ?= 20s

# The chaos campaigns' tests (internal/chaos, build tag chaos): TestChaosCI
# (1,000 tasks through four workers with kills, AWS and network faults, a
# Redis outage and restart, over https) and TestChaosClusterFailover (a
# Redis Cluster master SIGKILLed mid-run), side by side. They take a few
# minutes, so `make test` leaves them to CI (.ci/run) and to this target.
# No -race here: the campaigns run the workers as production runs them, an
# ordinary `go build` (a -race test process builds them with -race,
# internal/devproc.Build); the race detector would more than double the
# campaigns' CPU time, and `make test` already runs the workers, the harness
# and the local AWS with -race.
.PHONY: test-chaos
test-chaos: check-go ## the chaos campaigns' ledger tests (TestChaosCI, TestChaosClusterFailover), run by CI after make test
	.ci/with-redis.sh $(GO) test -count=1 -tags chaos $(TESTFLAGS) ./internal/chaos/

.PHONY: test-cluster
test-cluster: check-go ## the Redis integration tests against a throwaway 6-node Redis Cluster (.ci/test-cluster.sh)
	GO=$(GO) .ci/test-cluster.sh $(TESTFLAGS)

.PHONY: fuzz
fuzz: check-go ## run every fuzz target for FUZZTIME each (default 20s; make fuzz FUZZTIME=10m for a real search)
	.ci/fuzz.sh $(FUZZTIME)

.PHONY: vet
vet: check-go ## go vet
	$(GO) vet $(PKGS)

.PHONY: fmt
fmt: check-go ## gofmt every Go file in place
	gofmt -l -w .

.PHONY: fmt-check
fmt-check: check-go ## fail when a Go file is not gofmt-clean
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi

.PHONY: docs
docs: check-go ## regenerate docs/errors.md (the error catalogue) from the code
	$(GO) run ./internal/errcatalog/cmd/errcatalog -o docs/errors.md

# `make run TLS=1` serves the local AWS over https (docs: README, Quickstart).
TLS ?=

.PHONY: run
run: check-go ## start the devstack (local AWS + Redis, seeded) in the foreground; Ctrl-C stops it (TLS=1: https)
	DEVSTACK_TLS=$(TLS) scripts/run.sh

.PHONY: clean
clean: ## remove build and run outputs
	rm -rf $(BIN) .run .devstack.env .devstack.json .devstack-ca.pem

.PHONY: chaos
chaos: check-go ## reliability campaign: 4 ferry workers, kills, AWS and network faults, Redis outage and restart (CHAOS_TASKS=10000, CHAOS_SEED, CHAOS_DIR; FERRY_REDIS_MODE=cluster: a Redis Cluster and a master SIGKILL)
	.ci/with-redis.sh env CHAOS_DIR=$${CHAOS_DIR:-.run/chaos} $(GO) run ./internal/chaos/cmd/chaos

# `make bench`: the standard load set (docs/bench.md). BENCH_OUT is the report
# folder; BENCH_FLAGS adds ferrybench flags, e.g. BENCH_FLAGS='-runs 1 -no-1gib'.
BENCH_OUT   ?= bench-out
BENCH_FLAGS ?=

.PHONY: bench
bench: check-go ## load harness: ferry vs a raw loop vs rclone, report and chart into BENCH_OUT (docs/bench.md)
	@.ci/need.sh --warn bench redis-server:redis-server rclone:rclone
	@mkdir -p $(BIN) $(BENCH_OUT)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ferry ./cmd/ferry
	$(GO) build -o $(BIN)/ferrybench ./cmd/ferrybench
	.ci/with-redis.sh $(GO) test -run '^$$' -bench BenchmarkCredentials -benchtime 5000x -count 3 ./credcache | tee $(BENCH_OUT)/credcache-bench.txt
	$(BIN)/ferrybench -out $(BENCH_OUT) -ferry $(BIN)/ferry -credcache-bench $(BENCH_OUT)/credcache-bench.txt $(BENCH_FLAGS)
