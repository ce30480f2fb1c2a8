# ipsecgw — build, test, lint, benchmark and demo targets.
# `make test` is what CI and the README run; it includes the strongSwan interop
# lab when run as root (tests skip with a message otherwise).

GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
PKG      := github.com/ipsecgw/ipsecgw
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X $(PKG)/internal/cli.version=$(VERSION) -X $(PKG)/internal/cli.commit=$(COMMIT)
BIN      := bin/ipsecgw

.PHONY: all build test unit interop bench bench-net bench-ike fuzz soak hostile lint demo deps clean container install

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ipsecgw

# Installs the apt packages the lab needs when run as root and something is missing.
deps:
	@./scripts/install-deps.sh

# Unit tests and interop tests. Interop tests need root and strongSwan; they skip
# with a message otherwise, and fail instead when IPSECGW_REQUIRE_INTEROP=1 (CI).
# -p 1: the interop packages each run real daemons, strongSwan and iperf3 on a
# 2-core machine; running packages one at a time keeps their timing sane.
test: deps
	$(GO) test -count=1 -p 1 -timeout 30m ./...

# Only the unit tests (no root, no namespaces).
unit:
	$(GO) test -count=1 -short ./...

# Only the interop tests against real strongSwan peers in network namespaces.
interop: deps
	$(GO) test -count=1 -v -timeout 20m -run Interop ./ike/ && $(GO) test -count=1 -v -timeout 20m ./internal/lab/... ./interop/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 500ms ./...

# Network throughput/latency/CPU benchmark (root): ipsecgw against plain
# routing, strongSwan kernel-libipsec and wireguard-go in the namespace lab.
# Results go to results/<timestamp>/; e.g. NETBENCH_FLAGS='-duration 3s -reps 1'.
bench-net: deps
	@./bench/netbench/deps.sh
	$(GO) run ./bench/netbench $(NETBENCH_FLAGS)

# IKEv2 control plane at scale (root): strongSwan initiators bring up N
# IKE+CHILD SAs at once against a strongSwan and an ipsecgw responder (and
# ipsecgw against ipsecgw), then the restart storm of an ipsecgw initiator
# with 1,000 auto=start conns. Tables go to results/ike-<timestamp>/; e.g.
# IKEBENCH_FLAGS='-n 200 -groups x25519 -restart 0'.
bench-ike: deps
	$(GO) run ./bench/ikebench $(IKEBENCH_FLAGS)

# The soak (issue 19): SOAKTIME (default 1h) of iperf3 UDP and a 100 pps
# ping through a tunnel to strongSwan with CHILD rekeys every 30 s and IKE
# rekeys every 2 min; no lost ping, flat RSS/goroutines/descriptors, no
# error line. The figures go to results/soak-<timestamp>.txt.
SOAKTIME ?= 1h
soak: deps
	mkdir -p results
	IPSECGW_SOAK=$(SOAKTIME) IPSECGW_SOAK_REPORT=$(CURDIR)/results $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./interop/

# Every fuzz target of the module, one after the other, for FUZZTIME each
# (a duration, or an execution count such as 10000000x), 2 workers each;
# the table (execs, seconds, execs/s per target) goes to stdout and
# results/fuzz-<timestamp>.txt. FUZZMATCH=REGEXP picks targets ("pkg Name"),
# FUZZLOCK=FILE runs each under flock. Non-zero exit names a failing target.
FUZZTIME ?= 10s
fuzz:
	FUZZTIME='$(FUZZTIME)' ./scripts/fuzz.sh

# The hostile-traffic campaign against a live daemon (root, lab): every
# attack of interop/hostile_test.go against an IKEv2 and an IKEv1 tunnel to
# strongSwan, each one iperf3 run of 2 x HOSTILE_SECONDS x HOSTILE_ROUNDS
# seconds in which the attacker, sending HOSTILE_RATE packets a second, is
# off and on in alternate 2 s slots (the table gives the medians of the
# half-second reports without and with it). The tables (attack, what was sent,
# what ipsecgw counted, throughput, peak RSS, pings lost, log lines,
# plaintext seen) go to stdout and results/hostile-v{2,1}-<timestamp>.md.
# CI runs the short version (2 s, 2000/s) as part of `make test`.
HOSTILE_SECONDS ?= 10
HOSTILE_RATE    ?= 5000
HOSTILE_ROUNDS  ?= 3
hostile: deps
	@mkdir -p results
	@ts=$$(date -u +%Y%m%d-%H%M%S); \
	for v in 2 1; do \
		case $$v in 2) run='TestHostileTraffic$$' ;; 1) run='TestHostileTrafficIKEv1$$' ;; esac; \
		IPSECGW_HOSTILE_SECONDS=$(HOSTILE_SECONDS) IPSECGW_HOSTILE_RATE=$(HOSTILE_RATE) IPSECGW_HOSTILE_ROUNDS=$(HOSTILE_ROUNDS) \
		IPSECGW_HOSTILE_TABLE=$(CURDIR)/results/hostile-v$$v-$$ts.md \
		$(GO) test -count=1 -v -timeout 30m -run "$$run" ./interop/ || exit 1; \
		cat results/hostile-v$$v-$$ts.md; \
	done

lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# The main job: a demonstration tunnel between network namespaces.
demo: deps
	$(GO) run ./internal/lab/demo

# The container image (deploy/container/Containerfile), with buildah when
# present, else podman or docker, built offline from the static binary of
# `make build` staged in bin/image/ (no base image is pulled). CI builds it
# (deploy's TestContainerImage) and checks the result with buildah.
IMAGE ?= localhost/ipsecgw:$(VERSION)
container: build
	rm -rf bin/image && mkdir -p bin/image/etc bin/image/run/ipsecgw
	cp $(BIN) bin/image/ipsecgw
	printf 'ipsecgw:x:65532:65532:ipsecgw:/:/ipsecgw\n' > bin/image/etc/passwd
	printf 'ipsecgw:x:65532:\n' > bin/image/etc/group
	@b=$$(command -v buildah || command -v podman || command -v docker) || { echo "make container needs buildah, podman or docker (apt-get install buildah)"; exit 1; }; \
	case $$b in */buildah) set -- bud ;; *) set -- build ;; esac; \
	$$b "$$@" -f deploy/container/Containerfile -t $(IMAGE) bin/image

# Installs the binary and the systemd unit as the README's install section
# describes (user, directories, permissions); root only.
PREFIX ?= /usr/local
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/ipsecgw
	install -D -m 0644 deploy/systemd/ipsecgw.service $(DESTDIR)/etc/systemd/system/ipsecgw.service

clean:
	rm -rf bin results
	$(GO) clean -testcache
