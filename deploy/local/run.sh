#!/usr/bin/env bash
# make run: the whole pipeline on a bare machine. The broker runs in its own
# session so Ctrl-C reaches the producer and counter first; it is stopped
# last, after the counter has written its final checkpoint.
#   BROKER       kfake (default: bin/broker) or kafka (a local Apache Kafka
#                node, deploy/kafka/local.sh)
#   BROKER_ADDR  the local broker's address (default 127.0.0.1:9092)
#   PRODUCER_HTTP_ADDR, COUNTER_HTTP_ADDR  the services' HTTP_ADDR
set -uo pipefail

bin=${BIN:-./bin}
broker=${BROKER:-kfake}
broker_addr=${BROKER_ADDR:-127.0.0.1:9092}
export KAFKA_BROKERS=${KAFKA_BROKERS:-$broker_addr}

broker_pid= counter_pid= producer_pid=
stop() {
	trap '' INT TERM
	echo "votestream: stopping..." >&2
	[ -n "$producer_pid" ] && kill -TERM "$producer_pid" 2>/dev/null
	[ -n "$counter_pid" ] && kill -TERM "$counter_pid" 2>/dev/null
	[ -n "$producer_pid" ] && wait "$producer_pid" 2>/dev/null
	[ -n "$counter_pid" ] && wait "$counter_pid" 2>/dev/null
	if [ -n "$broker_pid" ]; then
		kill -TERM "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
	fi
	echo "votestream: stopped" >&2
	exit 0
}
trap stop INT TERM

case $broker in
kfake) broker_cmd=("$bin/broker") wait_tenths=100 ;;
kafka) broker_cmd=("$(dirname "$0")/../kafka/local.sh") wait_tenths=1200 ;;
*) echo "votestream: BROKER=$broker: must be kfake or kafka" >&2; exit 1 ;;
esac

if [ "$KAFKA_BROKERS" = "$broker_addr" ]; then
	case $broker in kfake) data=${BROKER_DATA_DIR:-./.kfake-data} ;; kafka) data=${KAFKA_DATA_DIR:-./.kafka-data} ;; esac
	[ -d "$data" ] && echo "votestream: $data is kept from the last run: this run resumes its election (make clean starts a new one)" >&2
	BROKER_ADDR=$broker_addr KAFKA_ADDR=$broker_addr setsid "${broker_cmd[@]}" &
	broker_pid=$!
	host=${broker_addr%:*} port=${broker_addr##*:}
	for _ in $(seq "$wait_tenths"); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break
		kill -0 "$broker_pid" 2>/dev/null || { echo "votestream: the $broker broker did not start (its error is above; if $broker_addr is taken, set BROKER_ADDR)" >&2; exit 1; }
		sleep 0.1
	done
else
	echo "votestream: KAFKA_BROKERS=$KAFKA_BROKERS: using that cluster, no local broker" >&2
fi

env ${COUNTER_HTTP_ADDR:+HTTP_ADDR=$COUNTER_HTTP_ADDR} "$bin/counter" &
counter_pid=$!
env ${PRODUCER_HTTP_ADDR:+HTTP_ADDR=$PRODUCER_HTTP_ADDR} "$bin/producer" &
producer_pid=$!
wait "$producer_pid"
status=$?
producer_pid=
if [ $status -ne 0 ]; then
	echo "votestream: the producer failed (exit $status)" >&2
	stop
fi
echo "votestream: every vote is published; the counter and broker keep serving (metrics: http://localhost:9102/metrics). Ctrl-C stops them." >&2
wait "$counter_pid"
counter_pid=
stop
