# pyprofd: `make demo` and `make test` do all set-up on a fresh machine.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_TARGETS = fuzz_threads fuzz_code fuzz_objects fuzz_asyncio fuzz_proc fuzz_elf

.PHONY: all deps build pythons test demo bench clean fuzz fuzz-smoke

all: build

deps:
	bash tools/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Debian sid's 3.13/3.14/3.15; a failed download only makes their tests skip (by name).
pythons:
	bash tools/install-pythons.sh 3.13 3.14 3.15 || echo "make: some sid interpreters are missing; their tests will be skipped"

test: build pythons
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-smoke

# libFuzzer targets (clang, in $(FUZZ_BUILD)); skipped by name when clang/libFuzzer are missing.
fuzz: deps
	@bash fuzz/build.sh $(FUZZ_BUILD); rc=$$?; [ $$rc -eq 77 ] && exit 0; [ $$rc -eq 0 ] || exit $$rc; \
	for t in $(FUZZ_TARGETS); do bash fuzz/run.sh $(FUZZ_BUILD) $$t $(FUZZ_SECONDS) || exit 1; done

fuzz-smoke:
	@bash fuzz/build.sh $(FUZZ_BUILD); rc=$$?; [ $$rc -eq 77 ] && exit 0; [ $$rc -eq 0 ] || exit $$rc; \
	for t in $(FUZZ_TARGETS); do bash fuzz/run.sh $(FUZZ_BUILD) $$t $(FUZZ_SMOKE_SECONDS) || exit 1; done; \
	$(FUZZ_BUILD)/fuzz/record_snapshot --check fuzz/corpus/snapshots/*.snap

demo: build
	bash examples/demo.sh $(BUILD)/pyprofd

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
