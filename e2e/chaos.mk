# Fault suite targets; the main Makefile includes this file
# (-include e2e/chaos.mk).
#   make chaos          every fault scenario in full (the seed's 1,146,500
#                       votes, more injections), then the figures table
#   make chaos-short    the same scenarios as `make test` runs them
# The table goes to stdout and to CHAOS_REPORT (default e2e/chaos-report.md).

CHAOS_REPORT ?= $(CURDIR)/e2e/chaos-report.md
CHAOS_TIMEOUT ?= 60m

.PHONY: chaos chaos-short

chaos:
	CHAOS=full CHAOS_REPORT=$(CHAOS_REPORT) $(GO) test -race -count=1 -timeout $(CHAOS_TIMEOUT) -run '^TestChaos' -v ./e2e

chaos-short:
	CHAOS_REPORT=$(CHAOS_REPORT) $(GO) test -race -count=1 -timeout 20m -run '^TestChaos' -v ./e2e

# The nemesis (docs/nemesis.md): random, overlapping faults drawn from a
# seed on three Apache Kafka nodes, then every cell checked exact.
#   make nemesis                 one seed (NEMESIS_SEED, default the time)
#                                over NEMESIS_DURATION (default 10m)
#   make nemesis-sweep N=20      N seeds one after another, listing those
#                                that fail
# A failed run leaves every process's whole output under
# NEMESIS_LOGS/<seed>/.
NEMESIS_DURATION ?= 10m
NEMESIS_LOGS ?= /tmp/votestream-nemesis
N ?= 20

.PHONY: nemesis nemesis-sweep

nemesis:
	seed=$${NEMESIS_SEED:-$$(date +%s)}; \
	NEMESIS_SEED=$$seed NEMESIS_DURATION=$(NEMESIS_DURATION) E2E_LOG_DIR=$(NEMESIS_LOGS)/$$seed \
	$(GO) test -race -count=1 -timeout 90m -run '^TestNemesis$$' -v ./e2e

nemesis-sweep:
	GO=$(GO) N=$(N) NEMESIS_DURATION=$(NEMESIS_DURATION) NEMESIS_LOGS=$(NEMESIS_LOGS) ./e2e/nemesis-sweep.sh
