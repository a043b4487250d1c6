# `make test` is THE test command: CI (.ci/run) runs exactly this.
GO       ?= go
FUZZTIME ?= 5s

.PHONY: test fmt-check vet unit fuzz bench build

test: fmt-check vet unit fuzz

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
