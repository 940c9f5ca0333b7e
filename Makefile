# pyprofd: `make demo` and `make test` do all set-up on a fresh machine.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build pythons test demo bench clean

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

demo: build
	bash examples/demo.sh $(BUILD)/pyprofd

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
