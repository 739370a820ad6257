# regent: build, test and run everything from a fresh checkout.
#   make run    the main job on embedded defaults
#   make test   every test, installing the real servers the tests need

GO          ?= go
BIN         ?= bin
TEST_TIMEOUT ?= 18m
# -race everywhere: the suite is sized so that this stays affordable on 2 cores.
TEST_FLAGS  ?= -race -count=1
PKGS        ?= ./...

.PHONY: all build deps lint test test-short run bench clean

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

test: deps lint
	$(GO) test $(TEST_FLAGS) -timeout $(TEST_TIMEOUT) $(PKGS)

# test-short skips nothing that needs a server; it only drops -race for a quicker loop.
test-short: deps
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# run: the main job. Until the regent binary lands it starts the simulated Mesos master
# with a few agents; see README.md.
run: build
	$(BIN)/mesos-sim --listen 127.0.0.1:5050 --agents 5

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN)
