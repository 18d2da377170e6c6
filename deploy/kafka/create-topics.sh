#!/usr/bin/env bash
# Creates votestream's topics on Apache Kafka, or brings existing ones to the
# right configuration, so running it twice is harmless: the init service of
# deploy/compose/apache-kafka.yml runs it before the producer and counters
# start, with the image's kafka-topics.sh and kafka-configs.sh. The Redpanda
# twin is deploy/redpanda/create-topics.sh.
#
# The counter keeps its checkpoints in a compacted topic with one partition
# per votes partition, so both must have the same count.
set -euo pipefail

: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP, e.g. kafka:9092}"
bin=${KAFKA_BIN:-/opt/kafka/bin}
VOTES_TOPIC=${KAFKA_TOPIC:-votes}
CHECKPOINT_TOPIC=${KAFKA_CHECKPOINT_TOPIC:-votes.checkpoints}
DLQ_TOPIC=${KAFKA_DLQ_TOPIC:-votes.dlq}
PARTITIONS=${KAFKA_PARTITIONS:-12}
REPLICAS=${KAFKA_REPLICATION_FACTOR:-1}
topics() { "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" "$@"; }

# Bounded wait: the health check only saw the port open.
for i in $(seq 1 30); do
  if existing=$(topics --list 2>/dev/null); then break; fi
  if [ "$i" -eq 30 ]; then echo "init: kafka at $KAFKA_BOOTSTRAP not reachable after 60s" >&2; exit 1; fi
  sleep 2
done

# ensure TOPIC KEY=VALUE: creates TOPIC with the policy, or sets the policy
# on the existing topic (a no-op when it already holds).
ensure() {
  local topic=$1 kv=$2
  if grep -qxF "$topic" <<<"$existing"; then
    echo "init: $topic exists; enforcing $kv"
    "$bin/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --alter \
      --entity-type topics --entity-name "$topic" --add-config "$kv"
  else
    topics --create --if-not-exists --topic "$topic" --partitions "$PARTITIONS" \
      --replication-factor "$REPLICAS" --config "$kv"
  fi
}

ensure "$VOTES_TOPIC" retention.ms=-1
ensure "$CHECKPOINT_TOPIC" cleanup.policy=compact
ensure "$DLQ_TOPIC" cleanup.policy=delete

topics --list
