# votestream: see README.md. Every target works on a bare machine with Go.
GO ?= go
BIN := bin
TEST_TIMEOUT ?= 40m
BROKER ?= kfake

.PHONY: all build run test vet fmt-check clean docs screenshots
all: build

build:
	$(GO) build -o $(BIN)/ ./producer ./counter ./deploy/broker

## run: local broker (BROKER=kafka: Apache Kafka, see make kafka-jars), one counter and the producer; Ctrl-C stops everything.
run: build
	BIN=$(BIN) BROKER=$(BROKER) ./deploy/local/run.sh

## test: vet, formatting, every test with the race detector, and every
## benchmark once in the same test binaries (so none can rot, at no second
## build of every package).
test: vet fmt-check
	$(GO) test -race -count=1 -bench . -benchtime 1x -timeout $(TEST_TIMEOUT) ./...

## docs: regenerate docs/configuration.md from the env tags and doc comments of pkg/config, pkg/kafkaio and pkg/logging.
docs:
	$(GO) generate ./pkg/config

## screenshots: the README's pictures (docs/images), from a make run of ELECTION=2024 in headless Chromium.
screenshots: build
	$(GO) test -count=1 -timeout 8m -run '^TestScreenshots$$' ./docs -args -screenshots -bin $(abspath $(BIN))

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN) vote_stream .kfake-data .kafka-data

-include deploy/compose.mk
-include bench/bench.mk
-include e2e/chaos.mk

## kafka-jars: Apache Kafka (deploy/kafka/pom.xml) from Maven into deploy/kafka/lib.
KAFKA_LIB := deploy/kafka/lib
kafka-jars: $(KAFKA_LIB)/.done
$(KAFKA_LIB)/.done: deploy/kafka/pom.xml
	rm -rf $(KAFKA_LIB)
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	touch $@
.PHONY: kafka-jars

## spark-deps: for the jobs in deploy/spark: pyspark, at the version
## deploy/spark/pom.xml pins, in .cache/spark-venv, and Spark's Kafka source
## from Maven into deploy/spark/lib (both git-ignored).
SPARK_LIB := deploy/spark/lib
SPARK_VENV := .cache/spark-venv
SPARK_VERSION = $(shell sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' deploy/spark/pom.xml)
spark-deps: $(SPARK_LIB)/.done $(SPARK_VENV)/.done
$(SPARK_LIB)/.done: deploy/spark/pom.xml
	rm -rf $(SPARK_LIB)
	mvn -q -B -f deploy/spark/pom.xml dependency:copy-dependencies
	touch $@
$(SPARK_VENV)/.done: deploy/spark/pom.xml
	python3 -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install -q pyspark==$(SPARK_VERSION)
	touch $@
.PHONY: spark-deps
