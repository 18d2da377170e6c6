# Benchmarks (issue 6). Included by the Makefile with `-include bench/bench.mk`.
#
#   make bench         the whole table: broker, raw-read ceiling, naive
#                      baselines, votestream producer and counter, end to end,
#                      latency, the count with 10,000 live-page viewers
#                      (about 5 minutes on 2 cores; BENCH_FLAGS=-viewers=0
#                      skips the viewers); last, -repeat pairs of the
#                      split bench (pinned) for its two split rows
#   make bench-split   counting and serving apart (ROLE=count, ROLE=serve),
#                      pinned with taskset, 5 pairs with 10,000 viewers and
#                      ROLE=hybrid beside them (docs/serving.md)
#   make bench-stages  go test benchmarks of each stage, ns/vote and allocs/vote
#   make bench-smoke   every go test benchmark once (-benchtime=1x), for CI
#   make bench-peers   votestream's counter, Spark Structured Streaming and
#                      Kafka Streams counting one topic on Apache Kafka
#                      (issue 12; PEERS_FLAGS, e.g. -broker kfake -kill=false)
BENCH_FLAGS ?=
PEERS_FLAGS ?=

.PHONY: bench bench-split bench-stages bench-smoke bench-peers peers-deps
bench: build
	$(GO) build -o $(BIN)/bench ./bench
	$(BIN)/bench -bin $(BIN) $(BENCH_FLAGS)

bench-split: build
	$(GO) build -o $(BIN)/bench ./bench
	$(BIN)/bench -bin $(BIN) -split $(BENCH_FLAGS)

bench-stages:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/votegen ./pkg/vote ./counter ./pkg/checkpoint

bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

bench-peers: build kafka-jars spark-deps peers-deps
	$(GO) build -o $(BIN)/bench ./bench
	$(BIN)/bench peers -bin $(BIN) $(PEERS_FLAGS)

## peers-deps: the Kafka Streams peer (bench/peers) compiled, its jars in
## bench/peers/lib (git-ignored).
peers-deps: bench/peers/lib/.done
bench/peers/lib/.done: bench/peers/pom.xml $(wildcard bench/peers/src/main/java/io/votestream/peers/*.java)
	rm -rf bench/peers/lib bench/peers/target
	mvn -q -B -f bench/peers/pom.xml compile dependency:copy-dependencies
	touch $@
