# vecdb: the two set-up commands are `make run` and `make test`.
# Everything else here is for developers.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
FUZZ_TIME  ?= 60
FUZZ_JOBS  ?= 1
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DATA       ?= ./data
HOST       ?= 127.0.0.1
PORT       ?= 8080

.PHONY: all deps build run test test-asan test-tsan fuzz test-fuzz bench \
	bench-quick clean

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
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE tsan

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
		-DVDB_SANITIZER=address,undefined
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) -LE tsan

# The concurrency tests (readers while a writer and the indexer work)
# under ThreadSanitizer.
test-tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug \
		-DVDB_SANITIZER=thread
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	cd $(BUILD_TSAN) && TSAN_OPTIONS=halt_on_error=1 \
		ctest --output-on-failure -L tsan

# The fuzz targets of fuzz/ (clang, libFuzzer, ASan + UBSan) in a build
# tree of their own: each runs FUZZ_TIME seconds from a copy of its
# committed corpus, FUZZ_JOBS at a time; what they find is kept in
# $(BUILD_FUZZ)/fuzz-artifacts/. docs/FUZZING.md.
fuzz: deps
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang \
		-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_C_FLAGS_DEBUG="-g -O1" -DVDB_FUZZ=ON
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	cd $(BUILD_FUZZ) && { FUZZ_TIME=$(FUZZ_TIME) ctest --output-on-failure \
		-L fuzz -j $(FUZZ_JOBS) --timeout $$(( $(FUZZ_TIME) + 300 )); \
		rc=$$?; grep -h 'executions in' Testing/Temporary/LastTest.log; \
		exit $$rc; }

# CI's share: every target for 30 s, two at a time.
test-fuzz:
	$(MAKE) fuzz FUZZ_TIME=30 FUZZ_JOBS=2

# fashion-mnist-784 against hnswlib on one pinned core; the table goes to
# bench/results/ with the CPU model and the date.
DATASET = data/datasets/fashion-mnist-784-euclidean
bench: build
	bash scripts/datasets.sh
	mkdir -p bench/results
	out=bench/results/fashion-mnist-$$(date +%Y-%m-%d).txt; \
	taskset -c 1 $(BUILD)/bin/vecdb-bench ann \
		--base $(DATASET)/base.fvecs --query $(DATASET)/query.fvecs \
		--gt $(DATASET)/gt.ivecs --metric l2 --m 16 \
		--ef-construction 200 --ef 10,16,32,64,128,256,512 --k 10 \
		--threads 1 --compare hnswlib | tee $$out; \
	echo "written: $$out"

# Quick figures that need no dataset: ingest and exact search, REST.
bench-quick: build
	$(BUILD)/bin/vecdb-bench exact --n 20000 --dim 128 --queries 200
	$(BUILD)/bin/vecdb-bench rest --n 20000 --dim 128 --conns 2 --seconds 5

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
