# tend — the two commands a newcomer needs are `make dev` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Packages whose tests do not link the Temporal server: cheap to build with the race detector.
# Computed, so a new package is raced from its first test (scripts/race-pkgs.sh says which are left out).
RACE_PKGS = $(shell scripts/race-pkgs.sh)

.PHONY: dev cluster temporal-bins bench-cluster build test deps check-repo vet fmt-check lint unit race bench bench-stack chaos lint-examples clean

dev: deps ## run the whole stack on this machine (Temporal, Postgres, SMTP capture, UI, API, worker)
	$(GO) run -ldflags "-X main.version=$(VERSION)" ./cmd/tend dev

cluster: deps build temporal-bins ## the production topology on this machine: Temporal server on Postgres, 2 servers, 3 workers, SMTP sink
	bin/tend cluster

temporal-bins: ## build the Temporal server and temporal-sql-tool from the module tend requires (go.mod's tool lines)
	$(GO) build -o bin/temporal-server go.temporal.io/server/cmd/server
	$(GO) build -o bin/temporal-sql-tool go.temporal.io/server/cmd/tools/sql

build: ## build bin/tend
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/tend ./cmd/tend

test: deps check-repo vet fmt-check lint lint-examples unit race ## everything CI runs

deps: ## install what the project needs from Debian when missing (Postgres server binaries, Chromium)
	@scripts/ensure-deps.sh

check-repo: ## no tracked file over 5 MB; go.mod tidy
	@scripts/check-repo.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: ## staticcheck (pinned in go.mod as a tool); staticcheck.conf says what is left out
	$(GO) tool staticcheck ./...

lint-examples:
	$(GO) run ./cmd/tend sequences lint examples/sequences*.yaml
	$(GO) run ./cmd/tend scoring lint examples/scoring.yaml
	$(GO) run ./cmd/tend sales lint examples/sales*.yaml

# TEND_ALLOW_EXAMPLES: the end-to-end tests start tend server and worker as processes with the
# examples' sender and team, which those refuse otherwise.
unit: ## all tests, end-to-end ones included (real Postgres, Temporal server, SMTP)
	TEND_ALLOW_EXAMPLES=1 $(GO) test -count=1 -timeout 25m ./...

race: ## the race detector on every package whose tests do not link the Temporal server
	@test -n "$(RACE_PKGS)" || { echo "scripts/race-pkgs.sh found no package"; exit 1; }
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)

bench: ## benchmarks; record results in the README
	$(GO) test -run '^$$' -bench . -benchmem ./internal/... ./workflows/...

bench-stack: deps ## the whole stack measured from outside: captures, first emails, events, Temporal cost, memory
	$(GO) run ./cmd/tend bench

bench-cluster: deps build temporal-bins ## the same measured on the production topology (tend cluster), beside the engine's ceiling there
	bin/tend bench --cluster

chaos: deps ## 1,000 leads on the real parts as processes while they are killed and restarted; fails on any loss or duplicate
	TEND_ALLOW_EXAMPLES=1 CHAOS_LEADS=$${CHAOS_LEADS:-1000} CHAOS_FULL=1 $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 60m ./e2e/chaos

clean:
	rm -rf bin .tend
