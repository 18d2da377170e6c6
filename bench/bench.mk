# Benchmarks (issue 6). Included by the Makefile with `-include bench/bench.mk`.
#
#   make bench         the whole table: broker, raw-read ceiling, naive
#                      baselines, votestream producer and counter, end to end,
#                      latency, the count with 10,000 live-page viewers
#                      (about 5 minutes on 2 cores; BENCH_FLAGS=-viewers=0
#                      skips the viewers)
#   make bench-stages  go test benchmarks of each stage, ns/vote and allocs/vote
#   make bench-smoke   every go test benchmark once (-benchtime=1x), for CI
BENCH_FLAGS ?=

.PHONY: bench bench-stages bench-smoke
bench: build
	$(GO) build -o $(BIN)/bench ./bench
	$(BIN)/bench -bin $(BIN) $(BENCH_FLAGS)

bench-stages:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/votegen ./pkg/vote ./counter ./pkg/checkpoint

bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
