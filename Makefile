# pacsd — see README.md. `make test` is the one test command (CI: .ci/run).
SHELL := /bin/bash
GO ?= go
BIN := bin/pacsd
IMAGE ?= pacsd-postgres:15
# The PostgreSQL 17 image (Debian trixie's packages) and the end-to-end tests
# that run on it as well, after every test ran on $(IMAGE): the core of
# converging from nothing, edits, the daemon, drift, switchover and failover
# (README "Tests").
IMAGE17 ?= pacsd-postgres:17
E2E17 ?= ^(TestE2EApplyOneStandby|TestE2EApplyTwoStandbysAndChanges|TestE2ERun|TestE2EDrift|TestE2ESwitchover|TestE2EFailover|TestE2EAdopt|TestE2EAdoptFinishesInterrupted|TestE2EAdoptRefusesBeforeStop|TestE2EAdoptParentMount)$$
# End-to-end tests run by default under `make test`; `go test ./...` alone skips them.
PACSD_E2E ?= 1
export PACSD_E2E PACSD_IMAGE := $(IMAGE)

.PHONY: all build dist test unit e2e e2e17 engine image fmt vet fuzz bench faults faults-long clean demo demo-clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pacsd

# The release: a static pacsd (no cgo, paths trimmed) stamped with the version
# git describes, and the Debian package holding it, the systemd unit, the
# sysusers entry, the example configuration and the documentation
# (internal/dist). Both go to $(DIST); README: "Install from the package".
VERSION ?= $(shell git describe --tags --always --dirty)
DIST ?= dist
# The version reaches the shell through the environment, never pasted into a
# command line: a tag's name may hold quotes.
dist: export PACSD_DIST_VERSION = $(VERSION)
dist:
	@[[ "$$PACSD_DIST_VERSION" =~ ^[0-9A-Za-z][0-9A-Za-z.+~_-]*$$ ]] || { echo "make dist: the version $$(printf %q "$$PACSD_DIST_VERSION") is not only letters, digits and .+~_-: tag the commit with such a name, or give VERSION=" >&2; exit 2; }
	rm -f $(DIST)/pacsd $(DIST)/pacsd_*.deb
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$$PACSD_DIST_VERSION" -o $(DIST)/pacsd ./cmd/pacsd
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./internal/dist -binary $(DIST)/pacsd \
		-version "$$PACSD_DIST_VERSION" -commits $$(git rev-list --count HEAD) -out $(DIST)

# Unit tests, then (with PACSD_E2E=1, the default here) end-to-end tests against
# a real Docker engine, provisioned when missing, and the local PostgreSQL image.
test: vet unit e2e

# Unit tests run with the race detector.
unit:
	PACSD_E2E=0 $(GO) test -race -count=1 ./...

e2e:
ifeq ($(PACSD_E2E),1)
	bash scripts/engine.sh
	bash scripts/etcd.sh
	bash scripts/chromium.sh
	bash scripts/shells.sh
	$(MAKE) --no-print-directory image
	bash image/test.sh
	$(GO) test -count=1 -timeout 40m -p 1 -run 'E2E' ./...
	$(MAKE) --no-print-directory e2e17
else
	@echo "e2e: skipped (PACSD_E2E=$(PACSD_E2E)); run 'make test' or set PACSD_E2E=1"
endif

# The core end-to-end tests again on PostgreSQL 17, with its image built
# (when missing or out of date) and checked against the contract first.
e2e17:
	$(MAKE) --no-print-directory image IMAGE=$(IMAGE17)
	bash image/test.sh $(IMAGE17)
	PACSD_IMAGE=$(IMAGE17) $(GO) test -count=1 -timeout 20m -p 1 -run '$(E2E17)' ./cmd/pacsd

engine:
	bash scripts/engine.sh

# The demo: a primary and a streaming standby kept converged by the daemon.
demo:
	bash scripts/demo.sh

demo-clean:
	-docker rm -f demo-db1 demo-db2
	-docker volume rm demo-db1-data demo-db2-data
	-docker network rm demo
	rm -rf examples/.demo-state

# Builds $(IMAGE) from Debian's packages only when missing or when image/ changed;
# `make image IMAGE=pacsd-postgres:17` builds PostgreSQL 17 (Debian trixie).
image: engine
	bash image/build.sh $(IMAGE)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Measurements: each scenario alternates pacsd and its baseline in one run and
# records a row; one table at the end (scenario, baseline, pacsd, ratio,
# target, min/max), also written to bench/results/<date>.json when every
# scenario ran and none failed. PACSD_BENCH_RUNS sets the repetitions,
# BENCH_RUN=<regexp> runs some scenarios only (then no file is written),
# PACSD_BENCH_NOTE is kept in the file (what else ran on the machine).
BENCH_RUN ?= ^TestBench
bench: engine
	bash scripts/etcd.sh
	$(MAKE) --no-print-directory image
	@rows=$$(mktemp); trap 'rm -f "$$rows"' EXIT; set -o pipefail; \
	PACSD_BENCH=1 PACSD_E2E=1 PACSD_BENCH_ROWS="$$rows" $(GO) test -count=1 -timeout 60m -p 1 -v -run '$(BENCH_RUN)' ./... 2>&1 \
		| grep -vE '^(\{|=== RUN|    --- PASS|=== NAME|=== PAUSE|=== CONT|testing: warning: no tests to run|PASS$$)|\[no tests to run\]$$'; status=$$?; \
	results=; if [ $$status = 0 ] && [ '$(BENCH_RUN)' = '^TestBench' ]; then results='-results bench/results'; fi; \
	$(GO) run ./internal/bench/benchtable -rows "$$rows" $$results || status=1; \
	exit $$status

# The fault matrix (design section 8, internal/faults): every test that
# proves a row, each run with a writer recording every acknowledged commit
# and the 100 ms probe on every node, then one table: fault, runs, passed,
# acknowledged commits, lost, longest time with two writable nodes, time
# until converged again. PACSD_FAULTS=1 adds the long runs (seeded crash
# points, PACSD_FAULTS_RUNS of them, 30 by default); PACSD_FAULT_SEED=N
# replays one seed. The whole output of go test goes to FAULTS_LOG, the
# runs to FAULTS_RECORDS (one JSON line each: 'go run
# ./internal/faults/faulttable -records faults.jsonl -markdown' prints the
# table again, as the README's); the terminal shows each test as it ends
# and the table.
FAULTS_LOG ?= faults.log
FAULTS_RECORDS ?= faults.jsonl
FAULTS_RUNS ?= 100
export PACSD_FAULTS_RUNS PACSD_FAULT_SEED
faults: engine
	bash scripts/etcd.sh
	$(MAKE) --no-print-directory image
	@rec=$(abspath $(FAULTS_RECORDS)); rm -f "$$rec"; set -o pipefail; \
	pattern=$$($(GO) run ./internal/faults/faulttable -pattern) || exit 1; \
	PACSD_FAULTS=1 PACSD_E2E=1 PACSD_FAULTS_REPORT="$$rec" $(GO) test -count=1 -timeout 120m -p 1 -v -run "$$pattern" ./cmd/pacsd 2>&1 \
		| tee $(FAULTS_LOG) | grep --line-buffered -E '^(--- (PASS|FAIL|SKIP)|FAIL|ok|panic)|PACSD_FAULT_SEED='; status=$$?; \
	$(GO) run ./internal/faults/faulttable -records "$$rec" -log $(FAULTS_LOG) || status=1; \
	[ $$status = 0 ] || echo "make faults failed; the whole output of the tests is in $(FAULTS_LOG)"; \
	exit $$status

# The same with FAULTS_RUNS (100 by default) seeded crash points, the kinds in turn.
faults-long:
	$(MAKE) --no-print-directory faults PACSD_FAULTS_RUNS=$(FAULTS_RUNS)

FUZZTIME ?= 30s
fuzz:
	$(GO) test ./pkg/spec -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

clean:
	rm -rf bin dist
