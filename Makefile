# regent: build, test and run everything from a fresh checkout.
#   make run    the main job on embedded defaults
#   make test   every test, installing the real servers the tests need

GO          ?= go
BIN         ?= bin
TEST_TIMEOUT ?= 18m
# -race everywhere: the suite is sized so that this stays affordable on 2 cores.
TEST_FLAGS  ?= -race -count=1
PKGS        ?= ./...
# Tests keep what a person should look at afterwards (the status page's
# screenshots in headless Chromium) here; CI can publish the folder.
ARTIFACTS   ?= $(CURDIR)/.artifacts
export REGENT_TEST_ARTIFACTS ?= $(ARTIFACTS)

.PHONY: all build deps lint test test-short run run-zk docs soak bench clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# deps installs what the tests need that Go modules cannot bring: the real ZooKeeper
# and headless Chromium.
deps:
	@scripts/install-zookeeper.sh
	@scripts/install-chromium.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

test: deps lint test-deploy
	$(GO) test $(TEST_FLAGS) -timeout $(TEST_TIMEOUT) $(PKGS)

# test-short skips nothing that needs a server; it only drops -race for a quicker loop.
test-short: deps
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# run: the main job on embedded defaults: an embedded etcd, the simulated Mesos
# master with 5 agents, and 3 regent replicas; it prints the status page URL and
# the command that kills the leader. Ctrl-C stops everything. `make run-zk` uses
# the real ZooKeeper instead (installing it first). See README.md.
run: build
	$(BIN)/regent dev

run-zk: build
	@scripts/install-zookeeper.sh
	$(BIN)/regent dev --store zk

# docs regenerates docs/FLAGS.md from the CLI (a test checks it is current).
docs:
	REGENT_UPDATE_DOCS=1 $(GO) test -count=1 -run TestFlagsDocIsCurrent ./cmd/regent/

# soak: the seeded random fault schedule for 5 minutes per store, then the
# invariant checker (make test runs it for 30 s per store). Replay a failure
# with REGENT_SOAK_SEED=<the seed it printed>.
SOAK_DURATION ?= 5m
soak:
	REGENT_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -v -run TestSoak -timeout 60m ./integration/drill/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN)

# test-deploy: the chart and image tests in the separate deploy/ module (Helm 3 and 4 SDKs,
# k8s.io/api, go-containerregistry: kept out of the binary's dependency graph). No -race: nothing
# there is concurrent, and the race build of the SDKs would cost minutes.
.PHONY: image test-deploy
test-deploy:
	cd deploy && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# image: the container image, offline (no Docker engine, no base image): a static binary stamped
# with VERSION (the chart's appVersion unless given), assembled by deploy/image into
# $(BIN)/regent-image (an OCI layout) and $(BIN)/regent-image.tar (for docker load or
# kind load image-archive). The Dockerfile builds the same image with Docker.
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/regent/Chart.yaml)
IMAGE   ?= ghcr.io/regent-sched/regent:$(VERSION)
image:
	@mkdir -p $(BIN)/image
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN)/image/regent ./cmd/regent
	cd deploy && $(GO) run ./image --binary $(abspath $(BIN))/image/regent --version $(VERSION) --tag $(IMAGE) \
	  --layout $(abspath $(BIN))/regent-image --tar $(abspath $(BIN))/regent-image.tar
