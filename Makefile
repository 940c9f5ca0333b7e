# pyprofd: `make demo` and `make test` do all set-up on a fresh machine.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# Set for the long runs: each target stops after this many execs (or FUZZ_SECONDS).
FUZZ_RUNS ?=
FUZZ_SMOKE_SECONDS ?= 3
SANITIZE_BUILD ?= build-sanitize
# Sanitizer reports fail the process that has them (and so its test); leaks are reported at exit.
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# What `make test` runs sanitized (CI time): the main integration tests on Debian's 3.11, the
# reliability and security CLI tests (the unit tests run sanitized in `make sanitize`).
SANITIZE_SUBSET = '^test_(record|dump|torn|subprocesses|async|daemon)\.debian3\.11$$|^cli_(errors|daemon|vanish|disk_full|security)$$'
FUZZ_TARGETS = fuzz_threads fuzz_code fuzz_objects fuzz_asyncio fuzz_proc fuzz_elf fuzz_http

.PHONY: all deps build pythons test demo bench clean fuzz fuzz-smoke sanitize sanitize-build sanitize-smoke

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
	$(MAKE) sanitize-smoke

# ASan + UBSan build (gcc) in $(SANITIZE_BUILD): `make sanitize` runs the whole suite on it.
# `make sanitize-smoke` (called by make test) runs the integration subset above on the
# pyprofd of the fuzz build, whose libraries clang already compiles with ASan + UBSan (CI's
# time: one sanitized compile, not two; the unit tests' decoders run under ASan in the fuzz
# smoke, and sanitized in `make sanitize`). Skipped by name where clang/libFuzzer are missing.
# -O1 -g1 (line tables for the reports' stacks): a quarter of -O2 -g's compile time under ASan.
$(SANITIZE_BUILD)/CMakeCache.txt:
	cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" -DPYPROFD_SANITIZE=ON

sanitize-build: deps $(SANITIZE_BUILD)/CMakeCache.txt
	cmake --build $(SANITIZE_BUILD) -j $(JOBS) --target pyprofd unit_tests

sanitize: sanitize-build pythons
	cd $(SANITIZE_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS)

sanitize-smoke: deps
	@bash fuzz/build.sh $(FUZZ_BUILD); rc=$$?; [ $$rc -eq 77 ] && exit 0; [ $$rc -eq 0 ] || exit $$rc; \
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target pyprofd && \
	cd $(FUZZ_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) -R $(SANITIZE_SUBSET)

# libFuzzer targets (clang, in $(FUZZ_BUILD)); skipped by name when clang/libFuzzer are missing.
fuzz: deps
	@bash fuzz/build.sh $(FUZZ_BUILD); rc=$$?; [ $$rc -eq 77 ] && exit 0; [ $$rc -eq 0 ] || exit $$rc; \
	for t in $(FUZZ_TARGETS); do FUZZ_RUNS=$(FUZZ_RUNS) bash fuzz/run.sh $(FUZZ_BUILD) $$t $(FUZZ_SECONDS) || exit 1; done

fuzz-smoke:
	@bash fuzz/build.sh $(FUZZ_BUILD); rc=$$?; [ $$rc -eq 77 ] && exit 0; [ $$rc -eq 0 ] || exit $$rc; \
	for t in $(FUZZ_TARGETS); do bash fuzz/run.sh $(FUZZ_BUILD) $$t $(FUZZ_SMOKE_SECONDS) || exit 1; done; \
	$(FUZZ_BUILD)/fuzz/record_snapshot --check fuzz/corpus/snapshots/*.snap

demo: build
	bash examples/demo.sh $(BUILD)/pyprofd

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) $(SANITIZE_BUILD)
