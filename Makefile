# banger — see README.md. `make check` runs every test; .ci/run calls it.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/banger-dev/banger/internal/buildinfo.Version=$(VERSION) -X github.com/banger-dev/banger/internal/daemon.Version=$(VERSION)
# Built images and kernels are cached here between test runs.
E2E_CACHE ?= /var/cache/banger-e2e
# make install: $(DESTDIR)$(PREFIX)/bin/{banger,bangerd,banger-agent}, root-owned
# 0755, so `banger doctor --sudoers` can name a helper only root can replace.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
DESTDIR ?=
FUZZTIME ?= 60s

.PHONY: all setup setup-test build install uninstall vet fmt-check test e2e check fuzz bench clean generate

all: build

# What banger needs to build and run.
setup:
	./scripts/setup.sh

# That, plus what only the tests use (OCI registry, dig, nft, ip netns, gcc).
setup-test:
	./scripts/setup.sh --test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/banger ./cmd/banger
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bangerd ./cmd/bangerd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS) -X github.com/banger-dev/banger/internal/agent.Version=$(VERSION)' -o $(BIN)/banger-agent ./cmd/banger-agent

install: build
	install -d $(DESTDIR)$(BINDIR)
	install -o root -g root -m 0755 $(BIN)/banger $(BIN)/bangerd $(BIN)/banger-agent $(DESTDIR)$(BINDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/banger $(DESTDIR)$(BINDIR)/bangerd $(DESTDIR)$(BINDIR)/banger-agent

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Unit and integration tests (real SQLite, fakes for VMMs).
test:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

# End-to-end: real guests under QEMU, inside a network namespace.
e2e: build
	BANGER_E2E=1 BANGER_E2E_CACHE=$(E2E_CACHE) BANGER_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 40m -v ./e2e/
	# Driver tests with a real guest kernel, cached by the suite above.
	BANGER_E2E=1 BANGER_E2E_CACHE=$(E2E_CACHE) $(GO) test -count=1 -timeout 10m -v -run 'RealGuest' ./internal/vmm/...

check: setup-test vet fmt-check test e2e

# Every Go fuzz target in the repository, one after the other, FUZZTIME each.
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench: build
	BANGER_BIN=$(CURDIR)/$(BIN) BANGER_E2E_CACHE=$(E2E_CACHE) ./scripts/bench.sh

# generate rebuilds the envd Connect-RPC code from proto/ (needs protoc:
# make setup-test); the output is committed, so a build needs no protoc.
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_CONNECT_GO := connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
generate:
	GOBIN=$(CURDIR)/bin/tools go install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin/tools go install $(PROTOC_GEN_CONNECT_GO)
	protoc -I proto --plugin=$(CURDIR)/bin/tools/protoc-gen-go --plugin=$(CURDIR)/bin/tools/protoc-gen-connect-go \
		--go_out=. --go_opt=module=github.com/banger-dev/banger \
		--connect-go_out=. --connect-go_opt=module=github.com/banger-dev/banger \
		process/process.proto filesystem/filesystem.proto

clean:
	rm -rf $(BIN)
