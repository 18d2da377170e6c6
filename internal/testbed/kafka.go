package testbed

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// KafkaNode is where one Apache Kafka node (KRaft, a broker and a
// controller in one JVM) listens and keeps its files.
type KafkaNode struct {
	ID             int
	Addr           string // the PLAINTEXT client listener
	ControllerAddr string
	Dir            string // config, data
}

// KafkaLib is deploy/kafka/lib, or an error saying how to fill it.
func KafkaLib() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	lib := filepath.Join(root, "deploy", "kafka", "lib")
	if _, err := os.Stat(filepath.Join(lib, ".done")); err != nil {
		return "", fmt.Errorf("no Apache Kafka jars in %s: run make kafka-jars", lib)
	}
	return lib, nil
}

// KafkaProps are node n's server properties in a cluster of nodes (a
// static quorum of all of them): small thread pools, internal topics with
// as many replicas as there are nodes up to 3, min.insync.replicas 2 (1
// for one node), no rebalance delay, group sessions as short as the tests
// use.
func KafkaProps(n KafkaNode, nodes []KafkaNode) map[string]string {
	voters := make([]string, len(nodes))
	for i, o := range nodes {
		voters[i] = fmt.Sprintf("%d@%s", o.ID, o.ControllerAddr)
	}
	rf := strconv.Itoa(min(3, len(nodes)))
	isr := strconv.Itoa(min(2, len(nodes)))
	return map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          strconv.Itoa(n.ID),
		"controller.quorum.voters":                         strings.Join(voters, ","),
		"listeners":                                        "PLAINTEXT://" + n.Addr + ",CONTROLLER://" + n.ControllerAddr,
		"advertised.listeners":                             "PLAINTEXT://" + n.Addr,
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                                         filepath.Join(n.Dir, "data"),
		"offsets.topic.replication.factor":                 rf,
		"offsets.topic.num.partitions":                     "6",
		"transaction.state.log.replication.factor":         rf,
		"transaction.state.log.min.isr":                    isr,
		"min.insync.replicas":                              isr,
		"group.initial.rebalance.delay.ms":                 "0",
		"group.min.session.timeout.ms":                     "1000",
		"num.network.threads":                              "2",
		"num.io.threads":                                   "2",
		"background.threads":                               "2",
		"num.recovery.threads.per.data.dir":                "1",
		"log.cleaner.threads":                              "1",
		"share.coordinator.state.topic.replication.factor": rf,
		"share.coordinator.state.topic.min.isr":            isr,
	}
}

// ConfigFile is the node's server.properties.
func (n KafkaNode) ConfigFile() string { return filepath.Join(n.Dir, "server.properties") }

// WriteConfig writes props as the node's server.properties.
func (n KafkaNode) WriteConfig(props map[string]string) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for _, key := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", key, props[key])
	}
	return os.WriteFile(n.ConfigFile(), []byte(b.String()), 0o600)
}

// KafkaJava is java running one of Kafka's main classes on the jars in
// lib with a small serial-GC heap, logging as deploy/kafka/log4j2.yaml
// says.
func KafkaJava(lib, heap, class string, args ...string) *exec.Cmd {
	argv := []string{
		"-Xms64m", "-Xmx" + heap, "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(filepath.Dir(lib), "log4j2.yaml"),
		"-cp", filepath.Join(lib, "*"), class,
	}
	return exec.Command("java", append(argv, args...)...)
}

// Format formats the node's storage for cluster id (kafka-storage format,
// through its main class); extra are more arguments, such as --add-scram.
func (n KafkaNode) Format(lib, clusterID string, extra ...string) error {
	args := append([]string{"format", "-t", clusterID, "-c", n.ConfigFile()}, extra...)
	if out, err := KafkaJava(lib, "256m", "kafka.tools.StorageTool", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("kafka-storage format node %d: %v\n%s", n.ID, err, out)
	}
	return nil
}

// NewClusterID is a random cluster id, as kafka-storage random-uuid makes
// one: never starting with "-", which kafka-storage's argument parser
// would take for an option (as Kafka's own Uuid.randomUuid avoids).
func NewClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}
