# drover build. `make` builds bin/, `make test` runs every suite, `make run`
# starts a server on its embedded defaults. See README.md.

VERSION := 0.1.0
SAN     ?=
CC      ?= cc
FUZZ_SECONDS ?= 30

ifeq ($(SAN),)
BUILD := build
BIN   := bin
SANFLAGS :=
else
BUILD := build/san
BIN   := build/san/bin
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
# A small quarantine keeps memory measurements in the tests meaningful.
export ASAN_OPTIONS ?= quarantine_size_mb=4:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
endif

PKGS     := openssl jansson yaml-0.1 sqlite3 libpq zlib
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers
CPPFLAGS += -I. -D_GNU_SOURCE -DDROVER_VERSION=\"$(VERSION)\"
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) $(SANFLAGS) -MMD -MP $(PKG_CFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

LIB_SRCS    := $(wildcard proto/*.c common/*.c)
SERVER_SRCS := $(wildcard server/*.c)
CAGENT_SRCS := $(wildcard cluster-agent/*.c)
NAGENT_SRCS := $(wildcard node-agent/*.c)
CLI_SRCS    := $(wildcard cli/*.c)
UNIT_SRCS   := $(wildcard tests/unit/*/test_*.c)
INTEG_SRCS  := $(wildcard tests/integration/test_*.c)
SUPPORT_SRCS:= $(wildcard tests/support/*.c)
TOOL_SRCS   := $(wildcard tests/tools/*.c)
STANDIN_SRCS:= $(wildcard tests/kube-standin/*.c)
FUZZ_SRCS   := $(wildcard fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB := $(BUILD)/libdrover.a
# Each program's modules (all but main.c) also go into the test runner.
SERVER_LIB := $(BUILD)/libserver.a
SERVER_MODS := $(filter-out server/main.c,$(SERVER_SRCS))
CLI_LIB  := $(BUILD)/libcli.a
CLI_MODS := $(filter-out cli/main.c,$(CLI_SRCS))

PROGRAMS := $(BIN)/drover-server $(BIN)/drover-cluster-agent $(BIN)/drover-node-agent \
            $(BIN)/droverctl
TOOLS    := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS)) \
            $(if $(STANDIN_SRCS),$(BUILD)/tools/kube-standin)
RUNNER   := $(BUILD)/tests/run_tests

.PHONY: all deps run test bench fuzz clean tools valgrind install demo
all: $(PROGRAMS)
tools: $(TOOLS)

deps:
	@scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(call obj,$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(SERVER_LIB): $(call obj,$(SERVER_MODS))
	@rm -f $@
	ar rcs $@ $^

$(BIN)/drover-server: $(BUILD)/obj/server/main.o $(SERVER_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(CLI_LIB): $(call obj,$(CLI_MODS))
	@rm -f $@
	ar rcs $@ $^

$(BIN)/droverctl: $(BUILD)/obj/cli/main.o $(CLI_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BIN)/drover-cluster-agent: $(call obj,$(CAGENT_SRCS)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BIN)/drover-node-agent: $(call obj,$(NAGENT_SRCS)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The stand-in Kubernetes API server of the tests (several files).
$(BUILD)/tools/kube-standin: $(call obj,$(STANDIN_SRCS)) $(SERVER_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Every tests/*/test_NAME.c defines `Suite *suite_DIR_NAME(void)`; the runner's
# table is generated so adding a test file is all it takes to run it.
SUITES = $(foreach f,$(UNIT_SRCS) $(INTEG_SRCS),suite_$(subst -,_,$(notdir $(patsubst %/,%,$(dir $(f)))))_$(patsubst test_%.c,%,$(notdir $(f))))
$(BUILD)/tests/suites.c: $(UNIT_SRCS) $(INTEG_SRCS) Makefile
	@mkdir -p $(dir $@)
	@{ echo '#include <check.h>'; \
	  for s in $(SUITES); do echo "Suite *$$s(void);"; done; \
	  echo 'Suite *(*const drover_suites[])(void) = {'; \
	  for s in $(SUITES); do echo "    $$s,"; done; \
	  echo '    0 };'; } > $@

$(RUNNER): $(call obj,$(UNIT_SRCS) $(INTEG_SRCS) $(SUPPORT_SRCS) tests/run_tests.c) $(BUILD)/obj/suites.o $(SERVER_LIB) $(CLI_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CHECK_LIBS) -o $@
$(BUILD)/obj/suites.o: $(BUILD)/tests/suites.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# make install [PREFIX=/usr/local] [DESTDIR=...]: the programs, systemd
# units, man pages and droverctl's bash completion (see deploy/README.md).
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL ?= install
install: all
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/lib/systemd/system \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/drover
	$(INSTALL) -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	$(INSTALL) -m 0644 docs/man/droverctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(INSTALL) -m 0644 docs/man/drover-server.8 docs/man/drover-cluster-agent.8 \
	  docs/man/drover-node-agent.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	for u in deploy/systemd/*.service; do \
	  sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u > $(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/}; \
	  chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/}; done
	$(INSTALL) -m 0644 deploy/systemd/*.env $(DESTDIR)$(PREFIX)/share/drover/
	$(INSTALL) -m 0644 cli/droverctl.bash \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/droverctl

# A server, the stand-in cluster from tests/ and its agents on loopback, and
# kubectl through drover (scripts/demo.sh; DEMO_ONESHOT=1 stops after it).
demo: deps
	@$(MAKE) --no-print-directory all tools
	scripts/demo.sh $(abspath $(BIN)) $(abspath $(BUILD)/tools)

run: deps
	@$(MAKE) --no-print-directory all
	$(BIN)/drover-server

test: deps
	@$(MAKE) --no-print-directory all tools $(RUNNER)
	DROVER_BIN_DIR=$(abspath $(BIN)) DROVER_TOOLS_DIR=$(abspath $(BUILD)/tools) $(RUNNER)

# The whole suite with drover's programs under memcheck; any report with
# errors (or a process exiting 99 after definite leaks) fails the run.
VG_DIR := $(abspath build/valgrind)
valgrind: deps
	@$(MAKE) --no-print-directory all tools $(RUNNER)
	@rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)
	@rc=0; CK_TIMEOUT_MULTIPLIER=4 DROVER_VALGRIND=$(VG_DIR) DROVER_BIN_DIR=$(abspath $(BIN)) \
	  DROVER_TOOLS_DIR=$(abspath $(BUILD)/tools) $(RUNNER) || rc=$$?; \
	  bad=$$(grep -lE "ERROR SUMMARY: [1-9]|Invalid (read|write)" $(VG_DIR)/vg-*.log 2>/dev/null); \
	  if [ -n "$$bad" ]; then echo "valgrind found errors in:"; echo "$$bad"; exit 1; fi; \
	  echo "valgrind: $$(ls $(VG_DIR) | wc -l) process reports, no errors;" \
	    "$$(grep -l 'ERROR SUMMARY' $(VG_DIR)/vg-*.log | wc -l) checked for leaks at exit" \
	    "(the others were killed on purpose by their test)"; \
	  exit $$rc

bench: deps
	@$(MAKE) --no-print-directory all tools
	tests/bench/run.sh $(abspath $(BIN)) $(abspath $(BUILD)/tools)

# libFuzzer targets: every fuzz/fuzz_NAME.c links the library built with clang.
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS))
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 $(WARN) $(FUZZ_FLAGS) $(PKG_CFLAGS) -c $< -o $@
# The server's modules, as an archive: a target links only what it uses
# (fuzz_apijson: the /v3 body checks of server/api_json.c).
FUZZ_SERVER_LIB := $(FUZZ_BUILD)/libserver.a
$(FUZZ_SERVER_LIB): $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(SERVER_MODS))
	@rm -f $@
	ar rcs $@ $^
# droverctl's modules likewise (fuzz_yamljson: cli/yamljson.c).
FUZZ_CLI_LIB := $(FUZZ_BUILD)/libcli.a
$(FUZZ_CLI_LIB): $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(CLI_MODS))
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_SERVER_LIB) $(FUZZ_CLI_LIB) $(FUZZ_LIB_OBJS)
	clang $(CPPFLAGS) -std=gnu11 $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined $^ $(PKG_LIBS) -lpthread -lm -o $@
FUZZERS := $(patsubst fuzz/fuzz_%.c,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_SRCS))
fuzz: deps $(FUZZERS)
	@for f in $(FUZZERS); do n=$${f##*/fuzz_}; mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	       $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$n > $(FUZZ_BUILD)/$$n.log 2>&1; then \
	    tail -n 40 $(FUZZ_BUILD)/$$n.log; echo "fuzz target $$n failed"; exit 1; fi; \
	  tail -n 1 $(FUZZ_BUILD)/$$n.log; done

.SECONDARY:

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
