# setforge build. `make run` and `make test` are the two commands a newcomer
# needs; both install missing Debian packages first (as root), then build.
#
#   make            build ./setforge (optimised, with debug info)
#   make run        deps + build + serve on 127.0.0.1:8080 with ./var/setforge.db
#   make test       deps + build + unit and black-box tests ("N passed, N failed")
#   make asan       the same suite against an ASan/UBSan build
#   make tsan       the same suite against a TSan build
#   make fuzz       clang libFuzzer harnesses (tests/fuzz/), FUZZ_SECONDS each
#   make fuzz-smoke the seed corpora replayed, then a few seconds each (CI)
#   make bench      throughput and latency numbers (printed, never asserted)
#   make load       10,000 malformed requests, floods, trickles (printed)
#   make chaos      the long crash test (100 kill -9s)

CC      ?= cc
FUZZ_CC ?= clang
PKGS    := libmicrohttpd jansson sqlite3 libcurl libpng zlib libcrypto uuid libarchive libxml-2.0
WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
DEFS    := -D_GNU_SOURCE
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcsv and libwslay (the websocket frames of ComfyUI's live steps) ship no
# pkg-config file in Debian: linked by name.
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lwslay -lpthread -lm

MODE    ?= release
ifeq ($(MODE),asan)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else ifeq ($(MODE),tsan)
  OPT := -O1 -g -fsanitize=thread
else ifeq ($(MODE),fuzz)
  # clang only: libFuzzer's coverage hooks, with ASan and UBSan.
  CC  := $(FUZZ_CC)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
         -fno-sanitize-recover=undefined
else
  OPT := -O2 -g
endif

B       := build/$(MODE)
SRCS    := $(shell find src -name '*.c' | sort)
OBJS    := $(SRCS:%.c=$(B)/%.o) $(B)/sql_migrations.o $(B)/web_assets.o
LIBOBJS := $(filter-out $(B)/src/main.o,$(OBJS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNITS   := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
SQLS    := $(sort $(wildcard sql/*.sql))
WEBS    := $(sort $(wildcard web/*))
CFLAGS_ALL = $(WARN) $(DEFS) $(OPT) -Isrc -Iinclude -I$(B) $(PKG_CFLAGS) -MMD -MP

ifeq ($(MODE),release)
BIN := setforge
else
BIN := $(B)/setforge
endif

.PHONY: all deps run test unit asan tsan fuzz fuzz-smoke fuzzers bench load chaos clean
all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(OPT) -o $@ $(OBJS) $(PKG_LIBS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# Migrations are compiled in, so the binary never depends on where it runs.
$(B)/sql_migrations.c: $(SQLS) tools/embed_sql.sh
	@mkdir -p $(B)
	sh tools/embed_sql.sh $(SQLS) > $@

$(B)/sql_migrations.o: $(B)/sql_migrations.c
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -c $< -o $@

# So is the operator's page (web/), hashed and gzipped here (docs/web.md),
# and the API's description, served at /api/openapi.json (docs/openapi.md).
$(B)/web_assets.c: $(WEBS) docs/openapi.json tools/embed_web.sh
	@mkdir -p $(B)
	sh tools/embed_web.sh web /api/openapi.json=docs/openapi.json > $@.tmp && mv $@.tmp $@

$(B)/web_assets.o: $(B)/web_assets.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/tests/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(LIBOBJS) $(PKG_LIBS)

unit: $(UNITS)

deps:
	@sh tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	./setforge serve --db var/setforge.db --data-dir var/data

test: deps
	@$(MAKE) --no-print-directory all unit
	@SETFORGE_BIN=./$(BIN) UNIT_DIR=$(B)/tests bash tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory MODE=asan all unit
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SETFORGE_BIN=./build/asan/setforge UNIT_DIR=build/asan/tests SF_SLOW=1 bash tests/run.sh

tsan: deps
	@$(MAKE) --no-print-directory MODE=tsan all unit
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  SETFORGE_BIN=./build/tsan/setforge UNIT_DIR=build/tsan/tests SF_SLOW=1 bash tests/run.sh

# One harness per tests/fuzz/fuzz_<name>.c, linked with the project's
# objects (MODE=fuzz) and libFuzzer; tools/fuzz.sh runs them.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZERS := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/%)
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

$(B)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIBOBJS)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(LIBOBJS) $(PKG_LIBS)

fuzzers: $(FUZZERS)

fuzz:
	@sh tools/deps.sh fuzz
	@$(MAKE) --no-print-directory -j$(FUZZ_BUILD_JOBS) MODE=fuzz fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tools/fuzz.sh

# CI: every seed replayed, then FUZZ_SMOKE_SECONDS of fuzzing per harness,
# two at a time, from a fixed seed (docs/testing.md).
fuzz-smoke:
	@sh tools/deps.sh fuzz
	@$(MAKE) --no-print-directory -j$(FUZZ_BUILD_JOBS) MODE=fuzz fuzzers
	@FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) FUZZ_JOBS=2 FUZZ_SEED=1 bash tools/fuzz.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh

load: deps
	@$(MAKE) --no-print-directory all
	@SETFORGE_BIN=./setforge python3 bench/malformed.py
	@SETFORGE_BIN=./setforge python3 bench/load.py

chaos: deps
	@$(MAKE) --no-print-directory all
	@SETFORGE_BIN=./setforge SF_CHAOS_KILLS=100 python3 tests/blackbox/test_crash.py

clean:
	rm -rf build setforge

-include $(shell find build -name '*.d' 2>/dev/null)
