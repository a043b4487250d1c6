# `make test` is THE test command: CI (.ci/run) runs exactly this.
GO       ?= go
FUZZTIME ?= 5s

.PHONY: test deps fmt-check vet unit fuzz bench build

test: deps fmt-check vet unit fuzz

# What the tests drive for real, installed when missing: headless Chromium
# (console tests), bubblewrap (the sandbox), and the pinned npm packages in
# e2e/ (real MCP servers and the Inspector CLI). PostgreSQL 15's server
# binaries are expected at /usr/lib/postgresql/15/bin (preinstalled here).
# Tests that need one of these fail, never skip, when it is absent.
# The sandbox tests also run /usr/bin/python3 and /usr/bin/curl inside the
# sandbox (its root is /usr, not whatever PATH finds first).
APT_MISSING = $(strip $(if $(shell command -v chromium),,chromium) $(if $(shell command -v bwrap),,bubblewrap) \
	$(if $(wildcard /usr/bin/python3),,python3) $(if $(wildcard /usr/bin/curl),,curl))
deps:
	@if [ -n "$(APT_MISSING)" ]; then \
		echo "installing $(APT_MISSING)"; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_MISSING); \
	fi
	@if [ -f e2e/package-lock.json ] && ! cmp -s e2e/package-lock.json e2e/node_modules/.installed-lock; then \
		echo "npm ci in e2e/"; \
		(cd e2e && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock); \
	fi

build:
	$(GO) build -o bin/warden ./cmd/warden

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# Brief coverage-guided runs of every fuzz target, starting from the
# committed corpora under testdata/fuzz (plain `go test` already replays
# them). Each target runs alone, as `go test -fuzz` requires. A real finding
# writes its input under testdata/fuzz and fails at once; a run that fails
# without one (the fuzzing engine itself timing out on a loaded machine) is
# retried once, and its output is shown if it fails again.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		dir=$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$dir $$t ($(FUZZTIME))"; \
			log=$$(mktemp); \
			if ! $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$dir >$$log 2>&1; then \
				if [ -n "$$(git status --porcelain -- $$dir/testdata/fuzz 2>/dev/null)" ] || grep -q "Failing input written" $$log; then \
					cat $$log; echo "FAIL: fuzz $$dir $$t found a failing input under $$dir/testdata/fuzz/$$t"; exit 1; \
				fi; \
				echo "  retrying: the fuzzer failed without a failing input"; \
				$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$dir >$$log 2>&1 || \
					{ cat $$log; echo "FAIL: fuzz $$dir $$t"; exit 1; }; \
			fi; \
			rm -f $$log; \
		done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./bench/... ./internal/...
