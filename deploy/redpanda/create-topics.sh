#!/usr/bin/env bash
# Creates votestream's topics on the compose Redpanda, or brings existing ones
# to the right configuration, so running it twice is harmless. It runs once,
# in the `init` service, before the producer and the counters start.
#
# The counter keeps its checkpoints in a compacted topic with one partition
# per votes partition, so both must have the same count.
set -euo pipefail

: "${RPK_BROKERS:?set RPK_BROKERS, e.g. redpanda:9092}"
VOTES_TOPIC=${KAFKA_TOPIC:-votes}
CHECKPOINT_TOPIC=${KAFKA_CHECKPOINT_TOPIC:-$VOTES_TOPIC.checkpoints}
DLQ_TOPIC=${KAFKA_DLQ_TOPIC:-$VOTES_TOPIC.dlq}
PARTITIONS=${KAFKA_PARTITIONS:-12}
REPLICAS=${KAFKA_REPLICATION_FACTOR:-1}

# Bounded wait: the compose health check should have let us through already.
for i in $(seq 1 30); do
  if rpk cluster info >/dev/null 2>&1; then break; fi
  if [ "$i" -eq 30 ]; then echo "init: redpanda at $RPK_BROKERS not reachable after 60s" >&2; exit 1; fi
  sleep 2
done

# ensure TOPIC PARTITIONS KEY=VALUE...
ensure() {
  local topic=$1 partitions=$2; shift 2
  local cfg=()
  for kv in "$@"; do cfg+=(-c "$kv"); done
  if rpk topic describe "$topic" >/dev/null 2>&1; then
    echo "init: $topic exists; enforcing $*"
    for kv in "$@"; do rpk topic alter-config "$topic" --set "$kv"; done
  else
    rpk topic create "$topic" -p "$partitions" -r "$REPLICAS" "${cfg[@]}"
  fi
}

ensure "$VOTES_TOPIC" "$PARTITIONS" retention.ms=-1
ensure "$CHECKPOINT_TOPIC" "$PARTITIONS" cleanup.policy=compact
ensure "$DLQ_TOPIC" "$PARTITIONS" cleanup.policy=delete

rpk topic list
