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

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: check-go
check-go:
	@command -v $(GO) >/dev/null || { echo "make: Go is not installed (need the version in go.mod)" >&2; exit 1; }

.PHONY: build
build: check-go ## build bin/devstack, and bin/ferry once cmd/ferry has a main package
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/devstack ./cmd/devstack
	@if grep -qs '^package main' cmd/ferry/*.go; then \
		echo "$(GO) build -o $(BIN)/ferry ./cmd/ferry"; \
		$(GO) build -o $(BIN)/ferry ./cmd/ferry; \
	fi

# Each fuzz target runs this long in `make test` (on top of its seed corpus,
# which plain `go test` already runs); `make fuzz FUZZTIME=10m` for real runs.
FUZZTIME  ?= 10s

.PHONY: test
test: check-go ## go vet + go test -race (throwaway redis-server unless FERRY_REDIS_URL is set) + a short run of every fuzz target
	.ci/with-redis.sh bash -c '$(GO) vet $(PKGS) && $(GO) test -race -count=1 $(TESTFLAGS) $(PKGS)'
	@if [ "$(PKGS)" = "./..." ]; then .ci/fuzz.sh $(FUZZTIME); fi

.PHONY: fuzz
fuzz: check-go ## run every fuzz target for FUZZTIME each (default 10s)
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

.PHONY: run
run: check-go ## start the devstack (local AWS + Redis, seeded) in the foreground; Ctrl-C stops it
	scripts/run.sh

.PHONY: clean
clean: ## remove build and run outputs
	rm -rf $(BIN) .run .devstack.env .devstack.json
