#!/usr/bin/env bash
# One Apache Kafka node (KRaft, broker and controller) on this machine, in
# the foreground, for `make run BROKER=kafka`: it formats its data folder the
# first time and keeps it between runs. SIGTERM shuts it down cleanly.
#   KAFKA_ADDR             client listener (default 127.0.0.1:9092)
#   KAFKA_CONTROLLER_ADDR  controller listener (default 127.0.0.1:9093)
#   KAFKA_DATA_DIR         data and config (default ./.kafka-data)
#   KAFKA_HEAP             the JVM's -Xmx (default 512m)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lib=$here/lib
addr=${KAFKA_ADDR:-127.0.0.1:9092}
controller=${KAFKA_CONTROLLER_ADDR:-127.0.0.1:9093}
data=${KAFKA_DATA_DIR:-./.kafka-data}

command -v java >/dev/null || { echo "kafka: java is not installed: install a JDK (17 or newer) to run a local Kafka" >&2; exit 1; }
[ -f "$lib/.done" ] || { echo "kafka: the Kafka jars are missing in $lib: run make kafka-jars" >&2; exit 1; }

mkdir -p "$data"
data=$(cd "$data" && pwd)
config=$data/server.properties
# Written at every start, so a new address applies to the same data.
cat >"$config" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$controller
listeners=PLAINTEXT://$addr,CONTROLLER://$controller
advertised.listeners=PLAINTEXT://$addr
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
PROPS

jvm=(java -Xms64m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseSerialGC -Djava.awt.headless=true
	"-Dlog4j2.configurationFile=$here/log4j2.yaml" -cp "$lib/*")
if [ ! -f "$data/logs/meta.properties" ]; then
	id=$("${jvm[@]}" kafka.tools.StorageTool random-uuid)
	"${jvm[@]}" kafka.tools.StorageTool format -t "$id" -c "$config" >/dev/null
	echo "kafka: formatted $data (cluster $id)" >&2
fi
echo "kafka: $(basename "$lib"/kafka_2.13-*.jar .jar | sed 's/kafka_2.13-/Apache Kafka /') on $addr, data in $data" >&2
exec "${jvm[@]}" kafka.Kafka "$config"
