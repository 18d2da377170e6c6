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
