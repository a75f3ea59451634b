# Thin wrapper over CMake. `make` builds build/weir; `make test` runs the unit
# tests (plain and under ASan+UBSan) and the system tests; `make demo` runs
# the demo. Each target first makes sure the Debian packages are installed.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PYTEST     ?= /usr/bin/python3 -m pytest

.PHONY: all deps build asan test unit unit-asan system demo bench clean format

all: build

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

unit-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

system: build asan
	WEIR_BIN=$(CURDIR)/$(BUILD)/weir WEIR_ASAN_BIN=$(CURDIR)/$(ASAN_BUILD)/weir \
	  $(PYTEST) -q tests/system

test: unit unit-asan system

demo: build
	$(BUILD)/weir demo

bench: build
	$(BUILD)/weir bench log

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
