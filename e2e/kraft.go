package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
)

// KRaftNode is a one-node Apache Kafka (broker and controller in one JVM)
// run from deploy/kafka/lib (make kafka-jars), for the peers that kfake
// cannot serve: Spark's Kafka source and Kafka Streams. It needs no
// testing.T, so the benchmarks start it too.
type KRaftNode struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// ModuleRoot is the repository's root directory (go env GOMOD).
func ModuleRoot() (string, error) { return moduleRoot() }

// KafkaLib is deploy/kafka/lib, or an error saying how to fill it.
func KafkaLib() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	lib := filepath.Join(root, "deploy", "kafka", "lib")
	if _, err := os.Stat(filepath.Join(lib, ".done")); err != nil {
		return "", fmt.Errorf("no Apache Kafka jars in %s: run make kafka-jars", lib)
	}
	return lib, nil
}

// StartKRaftNode formats a fresh log in dir and starts the node on two free
// loopback ports; it returns once the broker accepts connections.
func StartKRaftNode(ctx context.Context, dir string) (*KRaftNode, error) {
	lib, err := KafkaLib()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	k := &KRaftNode{Addr: ports[0], Dir: dir, done: make(chan struct{})}
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(kraftProperties(ports[0], ports[1], filepath.Join(dir, "data"))), 0o644); err != nil {
		return nil, err
	}
	cp := filepath.Join(lib, "*")
	var id [16]byte
	_, _ = rand.Read(id[:])
	format := exec.CommandContext(ctx, "java", "-cp", cp, "kafka.tools.StorageTool", "format", "--standalone",
		"-t", base64.RawURLEncoding.EncodeToString(id[:]), "-c", props)
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("format kafka storage: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "kafka.log"))
	if err != nil {
		return nil, err
	}
	k.cmd = exec.Command("java", "-Xms256m", "-Xmx512m", "-cp", cp,
		"-Dlog4j2.configurationFile="+filepath.Join(filepath.Dir(lib), "log4j2.yaml"), "kafka.Kafka", props)
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	go func() { _ = k.cmd.Wait(); logf.Close(); close(k.done) }()
	if err := k.waitReady(ctx, time.Minute); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// kraftProperties is a single node's configuration: every internal topic
// with one replica, no rebalance delay.
func kraftProperties(broker, controller, data string) string {
	return strings.Join([]string{
		"process.roles=broker,controller", "node.id=1",
		"controller.quorum.bootstrap.servers=" + controller,
		"listeners=PLAINTEXT://" + broker + ",CONTROLLER://" + controller,
		"advertised.listeners=PLAINTEXT://" + broker,
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + data,
		"offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
	}, "\n") + "\n"
}

func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func (k *KRaftNode) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(filepath.Join(k.Dir, "kafka.log"))
		if strings.Contains(string(b), "Kafka Server started") {
			return nil
		}
		select {
		case <-k.done:
			return fmt.Errorf("kafka exited while starting:\n%s", tail(string(b), 30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka not started within %s:\n%s", timeout, tail(string(b), 30))
		}
	}
}

// Pid is the JVM's process id.
func (k *KRaftNode) Pid() int { return k.cmd.Process.Pid }

// Stop ends the node (SIGTERM, then SIGKILL after 20 s) and waits for it.
func (k *KRaftNode) Stop() {
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(20 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.done
	}
}

// CreateTopics creates the votes, checkpoint and dead-letter topics of env
// and waits until every votes partition has a leader that answers: on a
// real broker a topic can be in the metadata a moment before its leaders
// serve, and the producer's first request would fail.
func CreateTopics(ctx context.Context, env Env) error {
	k := config.Kafka{Brokers: strings.Split(env.Brokers, ","), Topic: env.Topic, CheckpointTopic: env.CheckpointTopic,
		DLQTopic: env.DLQTopic, Partitions: env.Partitions, ReplicationFactor: 1, CreateTopics: true, DialTimeout: 10 * time.Second}
	c, err := kafkaio.New(k, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.EnsureTopics(ctx, kafkaio.Topics(k)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := c.EndOffsets(ctx, env.Topic, env.Partitions)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("topic %s has no leaders yet", env.Topic), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
