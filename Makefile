# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN   := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Fuzz targets as package:Func pairs; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS ?= ./registry/httpapi:FuzzParsePath ./registry:FuzzParseManifest
FUZZTIME     ?= 30s

.PHONY: build test install-deps fuzz run clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/registry ./cmd/registry

install-deps:
	.ci/install

# The test command: everything, against a real PostgreSQL and S3 server
# that the tests start themselves.
test: install-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

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
