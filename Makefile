# releasepilot — common tasks. Everything runs with the Go toolchain alone.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/swapjoy/releasepilot/internal/service.Version=$(VERSION)
PKGS    := ./...

.PHONY: build run test test-race crash-test lint bench load fuzz clean

build: ## build bin/releasepilot
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/releasepilot ./cmd/releasepilot

run: ## serve on embedded defaults (SQLite in ./data, 127.0.0.1:8080)
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/releasepilot serve

test: ## the full suite with the race detector (what CI runs)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-race: test

crash-test: ## kill serve replicas (SIGKILL, SIGTERM) mid-release on Postgres and SQLite; needs RELEASEPILOT_TEST_POSTGRES_URL
	$(GO) test -tags crash -count=1 -timeout 20m -parallel 4 -v ./internal/crashtest/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags crash ./internal/crashtest/
	$(GO) vet -tags load ./internal/loadtest/

bench: ## benchmarks (figures go to BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

load: ## load benchmarks of issue 13 (webhook intake, update checks through serve with wrk); needs RELEASEPILOT_TEST_POSTGRES_URL
	@command -v wrk >/dev/null || { echo "make load: installing wrk (Debian's package), the load tool of the update-check benchmark"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends wrk >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; } || \
	  { echo "make load needs wrk on PATH: apt-get install wrk"; exit 1; }; }
	$(GO) test -tags load -run '^$$' -bench . -benchtime 1x -count=1 -timeout 30m -v ./internal/loadtest/

clean:
	rm -rf bin data
