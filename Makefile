# hqd — see README.md. `make run` and `make test` are the two set-up commands.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/quantapix/hqd/internal/version.Version=$(VERSION)
TOOLS   := scripts/tools.sh

.PHONY: all web helper build release run test test-long test-unit test-target test-image docs fuzz load soak tools bench vet clean

all: build

# The PWA: npm ci from the lockfile, vite build, copied where the Go build
# embeds it (internal/web/dist).
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build
	rm -rf internal/web/dist && mkdir -p internal/web/dist && touch internal/web/dist/.keep
	cp -r web/dist/. internal/web/dist/

build: web helper
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hqd ./cmd/hqd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hq ./cmd/hq

# The job helper on its own (a 1 ms start instead of hqd's 6), embedded in
# hqd by the build above; without it hqd runs itself as the helper.
helper:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o internal/lake/helper/hqd-job-exec ./cmd/hqd-job-exec

# The host's release: hqd and deploy/systemd (units and install.sh) in one
# archive, which the host's user-data checks and installs. For the EC2
# host: GOARCH=arm64 make release.
release: build
	rm -rf bin/release && mkdir -p bin/release/systemd
	cp bin/hqd bin/release/hqd
	cp deploy/systemd/* bin/release/systemd/
	tar -czf bin/hqd-release.tar.gz -C bin/release .
	sha256sum bin/hqd-release.tar.gz

# Starts `hqd dev` on http://127.0.0.1:8080 with files under ./.hqd.
run: build
	./bin/hqd dev

# Every test, integration included. The first run installs the pinned test
# services (MinIO, cognito-local) under ~/.cache/hqd/tools.
test: tools web helper vet
	@mkdir -p bin && bash scripts/check-tree.sh before bin/.tree-before
	cd web && npx tsc --noEmit -p . && npx eslint . --max-warnings 0 && npx vitest run
	HQD_TOOLS_DIR=$${HQD_TOOLS_DIR:-$$HOME/.cache/hqd/tools} $(GO) test -race -count=1 -timeout 14m ./...
	$(GO) test -run '^$$' -fuzz FuzzEvaluate -fuzztime 200000x ./internal/evaluate/
	$(MAKE) test-target
	@bash scripts/check-tree.sh after bin/.tree-before

# The committed pictures of the app (docs/screenshots), taken by the
# browser tests, and the Lighthouse scores (docs/LIGHTHOUSE.md); make bench
# refreshes docs/BENCHMARKS.md. make test writes none of them: its
# screenshots and scores go to a temporary directory.
docs: tools web helper
	HQD_SCREENSHOTS=1 HQD_TOOLS_DIR=$${HQD_TOOLS_DIR:-$$HOME/.cache/hqd/tools} $(GO) test -count=1 -run '^(TestPWA|TestLighthouse)$$' ./cmd/hqd/

# The Dockerfile's runtime stage built with podman from bin/hqd on a local
# stand-in for its distroless base (no registry is reachable here), run as
# its user to /readyz. make test runs it too (with a binary of its own).
test-image: tools build
	HQD_IMAGE_BIN=$(CURDIR)/bin/hqd $(GO) test -count=1 -run '^TestImage$$' -v ./deploy/

# hqd rehearsed in an emulated VM like its EC2 host: Linux 6.1 cloud kernel,
# systemd, cgroup v2 (deploy/target). x86-64 in make test; ARCH=arm64 on its
# own. The first run installs QEMU and friends (apt) and caches a kernel and
# a root file system under ~/.cache/hqd/target.
ARCH ?= amd64
test-target:
	HQD_TARGET=1 HQD_TARGET_ARCH=$(ARCH) $(GO) test -count=1 -timeout 20m -run TestTarget -v ./deploy/target/

# 60 s of mixed files traffic over 256 connections against hqd on MinIO
# (make test runs 5 s over 32).
load: tools
	HQD_LOAD=1 HQD_TOOLS_DIR=$${HQD_TOOLS_DIR:-$$HOME/.cache/hqd/tools} $(GO) test -count=1 -timeout 10m -run TestLoad -v ./bench/

# The soak: 10 minutes of the same traffic over 256 connections (nothing
# lost, no 5xx, goroutines and heap back to their baseline), then the store
# broken and restored under it.
SOAKTIME ?= 10m
soak: tools
	HQD_LOAD=1 HQD_LOAD_DURATION=$(SOAKTIME) HQD_TOOLS_DIR=$${HQD_TOOLS_DIR:-$$HOME/.cache/hqd/tools} $(GO) test -count=1 -timeout 60m -run 'TestLoad|TestStoreOutage' -v ./bench/

# Longer fuzzing runs (make test runs every fuzz target's seed corpus, and
# FuzzEvaluate for 200,000 executions). Budgets are counts, not durations:
# Go 1.26's fuzz coordinator can fail a duration run with "context deadline
# exceeded" at its end (golang/go#75804, fixed in 1.27). 10⁶ each takes
# about 10 minutes here; the path rules need at least that.
FUZZTIME ?= 1000000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzEvaluate$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/evaluate/
	$(GO) test -run '^$$' -fuzz '^FuzzCheckPath$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/files/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/auth/
	$(GO) test -run '^$$' -fuzz '^FuzzClaims$$' -fuzztime 2000x -fuzzminimizetime 2s ./internal/auth/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/strictjson/
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/lake/
	$(GO) test -run '^$$' -fuzz '^FuzzReadLines$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/lake/
	$(GO) test -run '^$$' -fuzz '^FuzzWriter$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/sse/

# The tests too slow for every run (STS credentials expiring: 16 minutes).
test-long: tools
	HQD_TEST_LONG=1 $(GO) test -count=1 -timeout 30m -run 'TestCredentialsExpire' ./internal/auth/

test-unit:
	$(GO) test -count=1 -short ./...

tools:
	@bash $(TOOLS) all >/dev/null

# The tree's own checks: vet, formatting and import grouping (goimports
# with this module's imports last), a tidy module, and no build output in
# git (binaries, test binaries, the app's dist).
vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@GOIMPORTS=$$(bash $(TOOLS) goimports)/goimports; \
	  test -z "$$($$GOIMPORTS -local github.com/quantapix/hqd -l $$(git ls-files '*.go'))" || { echo "goimports -local github.com/quantapix/hqd needed:"; $$GOIMPORTS -local github.com/quantapix/hqd -l $$(git ls-files '*.go'); exit 1; }
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod is not tidy: go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	@bash scripts/check-tree.sh tracked

# The comparisons (P1–P11), side by side in alternating rounds, written
# to docs/BENCHMARKS.md and docs/benchmarks.png (about 15 minutes), then the
# packages' own go benchmarks. Needs the app built (P6 serves it).
bench: tools web helper
	HQD_BENCH=1 HQD_TOOLS_DIR=$${HQD_TOOLS_DIR:-$$HOME/.cache/hqd/tools} $(GO) test -count=1 -timeout 60m -run '^TestBench$$' -v ./bench/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/auth/ ./internal/files/ ./internal/sse/ ./cmd/hqd/

clean:
	rm -rf bin
