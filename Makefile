# sonde: zero-code latency and error tracer.
#   make          build ./sonde
#   make deps     install the Debian packages the build, tests and bench need
#   make run      deps + build, then start the agent with its defaults
#   make test     deps + build, then unit and end-to-end tests (as root); the
#                 unit suites run twice, the second time built with ASan+UBSan,
#                 then the fuzz targets from their seeds, and the wire tests
#                 again on the syscall hooks
#   make fuzz     the libFuzzer targets of tests/fuzz (FUZZ_RUNS, FUZZ_SECONDS)
#   make e2e-sanitize  the end-to-end tests against a sonde built with
#                 ASan+UBSan (build/sanitize/sonde)
#   make bench    nginx + wrk: no agent vs empty BPF programs vs the least
#                 per-call work vs sonde, direct and proxied; then over TLS;
#                 then a process with no socket (a bystander); then one
#                 loopback exchange at a time (pingpong), per-call costs;
#                 then BPF run time per program run, sonde vs the bound,
#                 by protocol path; then sonde's start-up time
#                 (tools/README.md)
#   make bench-dispatch  the daemon's CPU per record, kernel records fed
#                 through the consumer (tests/unit/bench_dispatch.c)
#   make install  the binary, a hardened systemd unit, /etc/default/sonde
#   make fmt      clang-format every C source in place

VERSION := 0.1.0
# SANITIZE=1: everything built by clang with AddressSanitizer and UBSan, in
# its own tree; a memory error or undefined behaviour aborts the run.
ifdef SANITIZE
OUT := build/sanitize
SONDE := $(OUT)/sonde
# clang's UBSan also catches pointer arithmetic on NULL, which gcc's
# lets through.
CC := clang
else
OUT := build
SONDE := sonde
endif

MACHINE := $(shell uname -m)
ifeq ($(MACHINE),x86_64)
BPF_ARCH := x86
else
$(error sonde: unsupported architecture '$(MACHINE)': only x86_64 has a vmlinux/<arch>/vmlinux.h; see vmlinux/README.md to add one)
endif

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local

DEPFLAGS := -MMD -MP
CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
	-DSONDE_VERSION='"$(VERSION)"' -Iinclude -Iuser -I$(OUT)
ifdef SANITIZE
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
endif
LDLIBS := -lbpf -lelf -lz -lmicrohttpd -lcrypt -lcurl -lyaml -lnghttp2 -lncurses -ldeflate -lpthread -lm
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Wextra \
	-Werror -Wno-unused-parameter -Iinclude -Ibpf -Ivmlinux/$(BPF_ARCH)

BPF_OBJS := $(OUT)/capture.bpf.o $(OUT)/floor.bpf.o
SKELS := $(BPF_OBJS:.bpf.o=.skel.h)
USER_SRCS := $(wildcard user/*.c user/*/*.c)
USER_OBJS := $(USER_SRCS:user/%.c=$(OUT)/user/%.o)
LIB_OBJS := $(filter-out $(OUT)/user/main.o,$(USER_OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(OUT)/tests/%)
TOOL_BINS := $(OUT)/tools/floor $(OUT)/tools/bystander $(OUT)/tools/pingpong
# libFuzzer targets (tests/fuzz), and the daemon's sources built again for
# them by clang with coverage, ASan and UBSan.
FUZZ_OUT := build/fuzz
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_OUT)/%,\
	$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_OBJS := $(patsubst user/%.c,$(FUZZ_OUT)/user/%.o,\
	$(filter-out user/main.c,$(USER_SRCS)))
FUZZ_CFLAGS := $(filter-out -O2 -I$(OUT),$(CFLAGS)) -O1 -Ibuild \
	-fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
# Inputs each target runs in `make test`, from its seeds and what earlier
# runs kept in build/fuzz/corpus, with a fixed seed; `make fuzz
# FUZZ_RUNS=-1 FUZZ_SECONDS=600` searches longer.
FUZZ_RUNS ?= 200000
FUZZ_SECONDS ?= 120
# The end-to-end tests' npm packages: the OTLP test receiver's
# (tests/e2e/otlp), grpc-js (tests/e2e/grpc) and the database clients
# (tests/e2e/dbnode), each pinned by its package-lock.json; node_modules
# stays out of git.
OTLP_RECEIVER := tests/e2e/otlp/node_modules/.package-lock.json
NPM_TEST_DEPS := $(OTLP_RECEIVER) tests/e2e/grpc/node_modules/.package-lock.json \
	tests/e2e/dbnode/node_modules/.package-lock.json

# Needed by the tests alone, not by the build nor in the image: the
# libFuzzer runtime of tests/fuzz.
TEST_ONLY_PACKAGES := libclang-rt-dev tmux postgresql mariadb-server \
	libmariadb-dev redis-server redis-tools memcached python3-psycopg2 \
	python3-asyncpg python3-pymysql python3-redis python3-pymemcache
DEBIAN_PACKAGES := make gcc clang llvm libbpf-dev bpftool libelf-dev \
	zlib1g-dev libmicrohttpd-dev libcrypt-dev pkg-config nginx wrk \
	prometheus curl openssl python3 python3-pytest python3-yaml iproute2 \
	libcap2-bin systemd nftables libcurl4-openssl-dev nodejs libyaml-dev \
	golang-go libnghttp2-dev libncurses-dev libdeflate-dev python3-grpcio $(TEST_ONLY_PACKAGES)

.PHONY: all deps run test unit unit-sanitize fuzz e2e e2e-syscall-hooks e2e-sanitize bench \
	bench-dispatch bench-scrape fmt \
	clean install uninstall otlp-receiver
# Keep BPF objects: bench and debugging load them directly.
.SECONDARY:
all: $(SONDE)

$(SONDE): $(USER_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/%.bpf.o: bpf/%.bpf.c | $(OUT)
	$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(notdir $*)_bpf > $@.tmp && mv $@.tmp $@

# Every userspace object may include a skeleton; generate them first.
$(OUT)/user/%.o: user/%.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(OUT)/tests
	$(CC) $(CFLAGS) $(DEPFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDLIBS)

# The floor places its OpenSSL and Go crypto/tls probes where sonde does,
# and loads the read and write hooks sonde would.
$(OUT)/tools/floor: $(OUT)/user/kernel/sslprobe.o $(OUT)/user/kernel/elfsym.o \
	$(OUT)/user/kernel/hooks.o $(OUT)/user/kernel/goprobe.o \
	$(OUT)/user/kernel/gobin.o $(OUT)/user/kernel/godwarf.o \
	$(OUT)/user/kernel/x86ret.o
$(OUT)/tools/%: tools/%.c | $(SKELS) $(OUT)/tools
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ $< $(filter %.o,$^) $(LDLIBS)

$(OUT) $(OUT)/tests $(OUT)/tools:
	mkdir -p $@

$(FUZZ_OUT)/user/%.o: user/%.c | build/capture.skel.h build/floor.skel.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) \
		-c $< -o $@

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(DEPFLAGS) -Itests/unit \
		-o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

# Seed inputs, written by a program built against the same structures.
$(FUZZ_OUT)/seeds/.done: tests/fuzz/seeds.c include/sonde_events.h \
	deploy/sonde.yaml
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $(FUZZ_OUT)/make-seeds $< -lnghttp2
	rm -rf $(@D)/*/ && $(FUZZ_OUT)/make-seeds $(@D)
	cp deploy/sonde.yaml $(@D)/fuzz_config/example.yaml
	touch $@

# Installs only what is missing, so a prepared machine pays one dpkg query.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed' || echo $$p; done); \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "sonde: installing Debian packages:" $$missing; \
		[ "$$(id -u)" = 0 ] || { echo "sonde: make deps must run as root" >&2; exit 1; }; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

run: deps
	$(MAKE) all
	./sonde

unit: $(UNIT_BINS)
	@rc=0; for t in $(UNIT_BINS); do $$t || rc=1; done; exit $$rc

otlp-receiver: $(OTLP_RECEIVER)

tests/e2e/%/node_modules/.package-lock.json: tests/e2e/%/package.json tests/e2e/%/package-lock.json
	cd tests/e2e/$* && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

unit-sanitize:
	$(MAKE) SANITIZE=1 unit

# Each target from its seeds, FUZZ_RUNS inputs (-1: no limit) or
# FUZZ_SECONDS, whichever ends first; a crash or a broken promise about
# the output leaves its input in build/fuzz/ and fails.
fuzz: $(FUZZ_BINS) $(FUZZ_OUT)/seeds/.done
	@rc=0; for t in $(FUZZ_BINS); do n=$$(basename $$t); \
		mkdir -p $(FUZZ_OUT)/corpus/$$n; \
		echo "fuzz: $$n"; \
		$$t -seed=1 -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_OUT)/$$n- \
			$(FUZZ_OUT)/corpus/$$n $(FUZZ_OUT)/seeds/$$n \
			2>$(FUZZ_OUT)/$$n.log || \
		{ rc=1; tail -40 $(FUZZ_OUT)/$$n.log; }; \
		grep -h 'stat::number_of_executed_units\|stat::new_units' \
			$(FUZZ_OUT)/$$n.log; \
	done; exit $$rc

e2e: all $(TOOL_BINS) $(NPM_TEST_DEPS)
	$(PYTHON) -m pytest -v tests/e2e

# The tests of what is seen on the wire, again on the syscall hooks
# (--hooks syscall), which kernels before 6.3 use; `make e2e` runs every
# test on the hooks this kernel gets by default.
SYSCALL_HOOK_TESTS := test_http_server.py test_client_tcp.py test_tls.py \
	test_http2.py test_grpc.py test_go.py test_gotls.py test_fleet.py \
	test_classify.py test_db.py test_db_node.py test_traces.py
e2e-syscall-hooks: all $(TOOL_BINS) $(NPM_TEST_DEPS)
	SONDE_HOOKS=syscall $(PYTHON) -m pytest -v \
		$(addprefix tests/e2e/,$(SYSCALL_HOOK_TESTS))

# The tests that measure sonde's memory or package ./sonde are skipped
# (SONDE_SANITIZED); a sanitizer report makes sonde exit non-zero, which
# fails the test that ran it, with the report in its output.
e2e-sanitize: $(TOOL_BINS) $(NPM_TEST_DEPS)
	$(MAKE) SANITIZE=1 all
	SONDE_BIN=$(CURDIR)/build/sanitize/sonde SONDE_SANITIZED=1 \
		$(PYTHON) -m pytest -v tests/e2e

test: deps
	$(MAKE) all $(UNIT_BINS) $(TOOL_BINS) $(NPM_TEST_DEPS)
	$(MAKE) unit
	$(MAKE) unit-sanitize
	$(MAKE) fuzz
	$(MAKE) e2e
	$(MAKE) e2e-syscall-hooks

bench: deps
	$(MAKE) all $(TOOL_BINS) $(OUT)/tests/bench_scrape
	$(PYTHON) tools/bench.py

# ns per record on the process's own CPU clock, per scenario; under
# valgrind --tool=callgrind with a few records, instructions per record.
bench-dispatch: $(OUT)/tests/bench_dispatch
	$(OUT)/tests/bench_dispatch

# One /metrics scrape at 1k, 10k and 100k series: render and gzip time
# and size (tests/unit/bench_scrape.c).
bench-scrape: $(OUT)/tests/bench_scrape
	$(OUT)/tests/bench_scrape

# Installs the binary, the systemd unit, the README and the example config
# file under share/doc/sonde and, unless one exists, /etc/default/sonde. DESTDIR stages the files for a package; the unit's paths
# follow PREFIX.
install: sonde
	install -D -m 0755 sonde $(DESTDIR)$(PREFIX)/bin/sonde
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/sonde/README.md
	install -D -m 0644 deploy/sonde.yaml $(DESTDIR)$(PREFIX)/share/doc/sonde/sonde.yaml
	mkdir -p $(DESTDIR)/etc/systemd/system
	sed -e 's|/usr/local/|$(PREFIX)/|g' deploy/systemd/sonde.service \
		> $(DESTDIR)/etc/systemd/system/sonde.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/sonde.service
	@if [ -e $(DESTDIR)/etc/default/sonde ]; then \
		echo "sonde: keeping the existing $(DESTDIR)/etc/default/sonde"; \
	else \
		install -D -m 0644 deploy/systemd/sonde.default $(DESTDIR)/etc/default/sonde; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
		echo "sonde: start it with: systemctl enable --now sonde"; \
	fi

# Removes what install put in place but /etc/default/sonde, the admin's.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now sonde.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(PREFIX)/bin/sonde $(DESTDIR)/etc/systemd/system/sonde.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/sonde
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; \
	fi
	@echo "sonde: $(DESTDIR)/etc/default/sonde is kept; delete it by hand if unwanted"

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^vmlinux/')

clean:
	rm -rf $(OUT) sonde

-include $(wildcard $(OUT)/*.d $(OUT)/user/*.d $(OUT)/user/*/*.d $(OUT)/tests/*.d \
	$(OUT)/tools/*.d $(FUZZ_OUT)/*.d $(FUZZ_OUT)/user/*.d $(FUZZ_OUT)/user/*/*.d)
