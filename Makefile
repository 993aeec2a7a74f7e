# vecdb: the two set-up commands are `make run` and `make test`.
# Everything else here is for developers.

BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DATA       ?= ./data
HOST       ?= 127.0.0.1
PORT       ?= 8080

.PHONY: all deps build run test test-asan bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Installs what is missing, builds, and starts vecdb on HOST:PORT.
run: build
	$(BUILD)/bin/vecdb serve --data $(DATA) --host $(HOST) --port $(PORT)

# Builds and runs every test through ctest.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
		-DVDB_SANITIZER=address,undefined
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD)/bin/vecdb-bench exact --n 20000 --dim 128 --queries 200

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
