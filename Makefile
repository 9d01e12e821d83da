# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN   := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Fuzz targets as package:Func pairs; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS ?= ./registry/httpapi:FuzzParsePath ./registry:FuzzParseManifest
FUZZTIME     ?= 30s

.PHONY: build test check-packaging install-deps fuzz run clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/registry ./cmd/registry

install-deps:
	.ci/install

# The test command: everything, against a real PostgreSQL and S3 server
# that the tests start themselves, after the packaging checks.
test: install-deps
	$(GO) vet ./...
	$(MAKE) --no-print-directory check-packaging
	$(GO) test -count=1 -timeout 60m ./...

# Packaging: every .nix file parses with Debian's Nix 2.8 (the NixOS VM
# tests themselves need Nix with KVM: README, "NixOS"), nix/package.nix's
# vendorHash matches the Go dependencies, and the tree is REUSE compliant.
check-packaging:
	@files="$$(git ls-files --cached --others --exclude-standard '*.nix')"; \
	[ -n "$$files" ] || { echo "no .nix files" >&2; exit 1; }; \
	for f in $$files; do \
		NIX_CONFIG='build-users-group =' nix-instantiate --parse "$$f" >/dev/null || exit 1; \
	done; \
	echo "nix-instantiate --parse: $$(echo $$files | wc -w) .nix files parse"
	nix/vendor-hash.sh --check
	reuse lint

.PHONY: bench bench-compare

# Microbenchmarks of the hot paths (docs/performance.md), of a quota's
# cost to manifest pushes (docs/policy.md), and of the S3 round trips a
# small push waits for (docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./registry ./registry/httpapi ./internal/store
	$(GO) test -run '^$$' -bench BenchmarkIndex ./internal/e2e
	$(GO) test -run '^$$' -bench BenchmarkQuotaPush -benchtime 300x ./internal/e2e
	$(GO) test -run '^$$' -bench BenchmarkSmallPushS3Latency -benchtime 20x ./internal/e2e

# This registry and CNCF distribution v3.1.2 side by side on one S3 server
# (docs/performance.md); REGBENCH_* variables tune it.
bench-compare: install-deps
	REGBENCH_COMPARE=1 $(GO) test -count=1 -run '^TestCompare$$' -v -timeout 120m ./internal/regbench

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzzing $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

run: install-deps build
	internal/devstack/run.sh

clean:
	rm -rf bin
