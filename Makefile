# Build/test gate for gsd. Every variable below can be overridden on the
# command line or from the environment, e.g. `make test TEST_P=4 COVER_MIN=80`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
GOFMT     ?= $(shell $(GO) env GOROOT)/bin/gofmt
BIN_DIR   ?= bin
PKGS      ?= ./...

# Unit tests. -p/-parallel are sized for a 2-core machine.
TEST_TIMEOUT  ?= 30m
TEST_P        ?= 2
TEST_PARALLEL ?= 4
TEST_FLAGS    ?= -race -timeout $(TEST_TIMEOUT) -p $(TEST_P) -parallel $(TEST_PARALLEL) -count=1
TEST_FORMAT   ?= testname
TEST_JSON     ?= test_results.json
TEST_JUNIT    ?= junit.xml

# Coverage. Unit coverage goes to $(COVER_DIR)/unit.out. Binaries that tests
# build with `go build -cover -coverpkg=github.com/gsd-dev/gsd/...` (a relative
# ./... would resolve against the test's package dir) and run with
# GOCOVERDIR=$$GSD_GOCOVERDIR write raw coverage there; scripts/cover-merge.sh
# converts it and merges both into $(COVER_PROFILE), which the gate reads.
COVER_DIR     ?= coverage
COVER_UNIT    ?= $(COVER_DIR)/unit.out
COVER_PROFILE ?= $(COVER_DIR)/coverage.out
COVER_HTML    ?= coverage.html
COVER_GATES   ?= scripts/coverage-gates.txt
COVER_EXCLUDE ?= examples/...,scripts/...
# Overall statement-coverage floor (percent), counting the gsd processes that
# tests start (integration coverage). Per-package gates: $(COVER_GATES).
COVER_MIN     ?= 90
export GSD_GOCOVERDIR := $(CURDIR)/$(COVER_DIR)/integration

BENCH_DIR     ?= bench-results
BENCH_PKGS    ?= ./fsm/ ./store/
JEPSEN_DIR    ?= jepsen-style
JEPSEN_TIMEOUT ?= 60m

# Tests that need PostgreSQL (internal/pgtest) fail rather than skip when
# it cannot be started: test and cover install it first (pg-install).
export GSD_PGTEST_REQUIRE ?= 1

.PHONY: all build test test-run cover cover-merge cover-gate lint fmt-check vet staticcheck arch filesize bench demo jepsen clean pg-install

all: lint test build

build:
	mkdir -p $(BIN_DIR)
	$(GO) build -o $(BIN_DIR)/ ./cmd/gsd ./cmd/gsdctl

# test = run tests (fails make on test failure; test_results.json/junit.xml
# are written either way), merge coverage, then enforce the coverage gate.
# The steps run as sequential recipe lines (not prerequisites) so that make -j
# or -k can never start the gate when the tests failed.
test:
	$(MAKE) --no-print-directory pg-install
	$(MAKE) --no-print-directory test-run
	$(MAKE) --no-print-directory cover-merge
	$(MAKE) --no-print-directory cover-gate

# cover = same as test, plus the HTML report (written before the gate so it is
# available when the gate fails).
cover:
	$(MAKE) --no-print-directory pg-install
	$(MAKE) --no-print-directory test-run
	$(MAKE) --no-print-directory cover-merge
	$(GO) tool cover -html=$(COVER_PROFILE) -o $(COVER_HTML)
	@echo "wrote $(COVER_HTML)"
	$(MAKE) --no-print-directory cover-gate

# Debian's PostgreSQL server, when missing (apt-get; root or sudo), for the
# tests that start a throwaway server (internal/pgtest).
pg-install:
	scripts/pg-install.sh

test-run:
	rm -rf $(GSD_GOCOVERDIR) $(COVER_UNIT) $(COVER_PROFILE) $(COVER_DIR)/integration.out
	mkdir -p $(COVER_DIR) $(GSD_GOCOVERDIR)
	$(GO) tool gotestsum --jsonfile $(TEST_JSON) --junitfile $(TEST_JUNIT) --format $(TEST_FORMAT) -- \
		$(TEST_FLAGS) -covermode=atomic -coverpkg=./... -coverprofile=$(COVER_UNIT) $(PKGS)

# Merges $(COVER_UNIT) with any binary coverage in $(GSD_GOCOVERDIR).
cover-merge:
	GO=$(GO) scripts/cover-merge.sh $(COVER_UNIT) $(GSD_GOCOVERDIR) $(COVER_PROFILE)

# Gate on an existing merged profile (no test run).
cover-gate:
	$(GO) run ./scripts/covergate gate -profile $(COVER_PROFILE) -gates $(COVER_GATES) \
		-min $(COVER_MIN) -exclude '$(COVER_EXCLUDE)'

# Independent checks; `make -k lint` reports all of them.
lint: fmt-check vet staticcheck arch filesize

fmt-check:
	@files=$$($(GOFMT) -l .); \
	if [ -n "$$files" ]; then \
		echo "gofmt: the following files are not formatted (run gofmt -w):"; \
		echo "$$files"; \
		exit 1; \
	fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

# No Go file over 600 lines unless one of its first lines gives the reason
# ("Long file: ...").
filesize:
	@bad=$$(git ls-files '*.go' | while read -r f; do \
		n=$$(wc -l < "$$f"); \
		if [ "$$n" -gt 600 ] && ! head -n 10 "$$f" | grep -q 'Long file:'; then echo "  $$f ($$n lines)"; fi; \
	done); \
	if [ -n "$$bad" ]; then \
		echo "files over 600 lines without a 'Long file:' reason in their first 10 lines:"; \
		echo "$$bad"; \
		exit 1; \
	fi

# The import rules of docs/import-rules.txt (direct imports and what each
# binary links), and docs/ARCHITECTURE.md's verbatim copy of them.
arch:
	$(GO) run ./scripts/archcheck -go $(GO) -rules docs/import-rules.txt -doc docs/ARCHITECTURE.md

# The standard benchmark suite (store level, client level over HTTP against
# a local 3-node cluster, the go test benchmarks); regenerates
# docs/BENCHMARKS.md. Sizes: see scripts/bench.sh (env overrides).
bench: build
	GO=$(GO) BIN_DIR=$(BIN_DIR) BENCH_DIR=$(BENCH_DIR) scripts/bench.sh

demo: build
	$(BIN_DIR)/gsdctl demo

# JEPSEN_FLAGS (unset by default) passes test flags, e.g.
# JEPSEN_FLAGS='-run TestMatrix/kill-leader -args -jepsen.seed=42 -jepsen.duration=60s -jepsen.table=matrix.md'
jepsen:
	@if [ -d $(JEPSEN_DIR) ]; then \
		echo "$(GO) test -tags jepsen -timeout $(JEPSEN_TIMEOUT) -v -count=1 ./$(JEPSEN_DIR)/... $(JEPSEN_FLAGS)"; \
		$(GO) test -tags jepsen -timeout $(JEPSEN_TIMEOUT) -v -count=1 ./$(JEPSEN_DIR)/... $(JEPSEN_FLAGS); \
	else \
		echo "jepsen: ./$(JEPSEN_DIR) does not exist yet; skipping"; \
	fi
	$(MAKE) --no-print-directory upgrade

# The rolling upgrade (issue 16): three gsd processes on the binary of the
# commit in scripts/upgrade-from.txt, replaced one at a time by this one
# with play under way (docs/OPERATIONS.md). make test runs it with 150
# acknowledged actions per phase; this with UPGRADE_ACKS.
UPGRADE_ACKS ?= 2000
.PHONY: upgrade
upgrade:
	GSD_UPGRADE_ACKS=$(UPGRADE_ACKS) $(GO) test -count=1 -v -timeout 20m -run 'TestRollingUpgrade|TestGateProbes' ./cmd/gsd/

# The lying leader (issue 12): a leader built to skip validation commits a
# cheat, and hash checkpoints name it; a corrupted replica is named too.
# In ./api/ the followers' reports travel over the node-to-node route and
# the liar steps down by itself.
.PHONY: lying-leader
lying-leader:
	$(GO) vet -tags gsd_lying_leader ./fsm ./store ./api
	$(GO) test -tags gsd_lying_leader -race -count=1 -run 'Lying|Corrupted' ./store/ ./api/

clean:
	rm -rf $(BIN_DIR) $(COVER_DIR) $(COVER_HTML) coverage.out $(TEST_JSON) $(TEST_JUNIT) $(BENCH_DIR)
