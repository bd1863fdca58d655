# mogway: `make run` starts a local cluster, `make test` runs every check CI runs.
GO       ?= go
BIN      := bin/mogway
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...
TESTFLAGS ?= -race -timeout 30m
# TAGS selects the image engine: vips (libvips through cgo, installed by scripts/vips.sh) or empty
# for the pure Go engine and a static binary (no WebP output).
TAGS     ?= vips
VIPS     := $(if $(filter vips,$(TAGS)),./scripts/vips.sh)

.PHONY: all build run test fmt fmt-check vet bench bench-quick pgo clean

all: build

build:
	$(VIPS) $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mogway

## run: build and start a local cluster (tracker on SQLite, 2 storage nodes, gateway, demo domain).
run: build
	./$(BIN) dev --data var/dev

## test: gofmt check, go vet, then every test with the race detector. It installs and starts
## what the tests need (a private MariaDB on loopback, promtool, Chromium, nginx, libvips) through
## scripts/test-deps.sh. The image package is also tested on its pure Go engine (no tags), and
## internal/netx without the race detector (whose build reads sockets through the syscall package).
## Test binaries are built without cmd/mogway/default.pgo (-pgo=off): with it, cmd/mogway's race test
## binary would compile every package again; the binary the end-to-end tests build and run uses it.
test: fmt-check vet
	./scripts/test-deps.sh $(GO) test -pgo=off -tags '$(TAGS)' $(TESTFLAGS) $(PKGS)
	$(GO) test $(TESTFLAGS) ./imaging/
	$(GO) test -count=1 ./internal/netx/

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' ; git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(VIPS) $(GO) vet -tags '$(TAGS)' $(PKGS)
	$(GO) vet ./imaging/

bench: build
	./bench/run.sh

bench-quick: build
	./bench/run.sh --quick

## pgo: profile every role under the bench's loads and write cmd/mogway/default.pgo, the profile
## `go build` optimises the binary with (profile-guided optimisation); then rebuild with it.
pgo: build
	./bench/run.sh --quick --pgo=cmd/mogway/default.pgo --out=bench/work
	$(MAKE) build

clean:
	rm -rf bin
