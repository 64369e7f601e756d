# The two commands of the README: `make run` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh).

PRESET ?= dev
BUILD_DIR := build/$(PRESET)
ARGS ?=

.PHONY: all deps deps-run build run test check asan fuzz-build release bench clean

all: build

deps:
	@scripts/install-deps.sh

deps-run:
	@scripts/install-deps.sh run

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

# Starts the exporter in the foreground on :10061 (host network namespace).
# Installs and builds only what running needs (no test tools).
run: deps-run
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) --target sockdiag_exporter
	$(BUILD_DIR)/src/sockdiag_exporter $(ARGS)

# The whole suite: unit and kernel tests under ASan+UBSan first, then every
# label (unit, kernel, e2e, image, fuzz, soak) on the dev build.
test: build asan fuzz-build
	ctest --preset $(PRESET) -j2

# The quick loop: unit + kernel tests only.
check: build
	ctest --preset check -j2

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan
	ctest --preset asan -j2

# libFuzzer targets (clang), run by the `fuzz` tests of `make test`.
fuzz-build: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

release:
	@$(MAKE) --no-print-directory build PRESET=release

bench: release
	bench/run.sh build/release/src/sockdiag_exporter

clean:
	rm -rf build
