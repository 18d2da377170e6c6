package testbed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/kafkaio"
)

// KRaftNode is a one-node Apache Kafka run from deploy/kafka/lib (make
// kafka-jars), for what kfake cannot serve: Spark's Kafka source and Kafka
// Streams, in the benchmarks. The tests' clusters (e2e) are made of the
// same nodes.
type KRaftNode struct {
	KafkaNode
	proc *Process
}

// StartKRaftNode formats a fresh log in dir and starts the node on two free
// loopback ports; it returns once the broker has started and its group
// coordinator answers.
func StartKRaftNode(ctx context.Context, dir string) (*KRaftNode, error) {
	lib, err := KafkaLib()
	if err != nil {
		return nil, err
	}
	ports, err := FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	n := KafkaNode{ID: 1, Addr: ports[0], ControllerAddr: ports[1], Dir: dir}
	if err := n.WriteConfig(KafkaProps(n, []KafkaNode{n})); err != nil {
		return nil, err
	}
	if err := n.Format(lib, NewClusterID()); err != nil {
		return nil, err
	}
	p, err := Start("kafka", KafkaJava(lib, "512m", "kafka.Kafka", n.ConfigFile()), Options{Measure: true})
	if err != nil {
		return nil, err
	}
	k := &KRaftNode{KafkaNode: n, proc: p}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = WaitBrokers(ctx, n.Addr, 1)
	if err == nil {
		err = WaitCoordinator(ctx, n.Addr)
	}
	if err != nil {
		k.Stop()
		return nil, fmt.Errorf("kafka: %w\n%s", err, Tail(p.Output(), 30))
	}
	return k, nil
}

// WaitCoordinator waits until the brokers at addrs name a group
// coordinator, or ctx ends. The first FindCoordinator of a new cluster
// creates its offsets topic (50 partitions), about a second on 2 cores:
// a cost a cluster in use paid long ago, which a measured consumer's first
// group join should not carry.
func WaitCoordinator(ctx context.Context, addrs string) error {
	c, tr := probe(addrs)
	defer tr.CloseIdleConnections()
	for {
		res, err := c.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: "votestream-testbed", KeyType: kafka.CoordinatorKeyTypeConsumer})
		if err == nil {
			err = res.Error
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no group coordinator at %s: %w", addrs, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitBrokers waits until the metadata from the brokers at addrs lists
// want brokers, or ctx ends.
func WaitBrokers(ctx context.Context, addrs string, want int) error {
	for {
		c, tr := probe(addrs)
		m, err := c.Metadata(ctx, &kafka.MetadataRequest{})
		tr.CloseIdleConnections()
		if err == nil && len(m.Brokers) == want {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%d brokers in the metadata", len(m.Brokers))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not %d brokers at %s: %w", want, addrs, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// probe is a kafka-go client of the brokers at addrs for one short
// question while a cluster starts; close its transport's connections after.
func probe(addrs string) (*kafka.Client, *kafka.Transport) {
	tr := &kafka.Transport{DialTimeout: 3 * time.Second}
	return &kafka.Client{Addr: kafka.TCP(strings.Split(addrs, ",")...), Timeout: 5 * time.Second, Transport: tr}, tr
}

// FreeAddrs are n loopback addresses with ports the OS just gave out, for
// a program that needs its ports in its config before it starts (Kafka).
func FreeAddrs(n int) ([]string, error) {
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

// Pid is the JVM's process id.
func (k *KRaftNode) Pid() int { return k.proc.Pid() }

// Stop ends the node (SIGTERM, then SIGKILL after 20 s) and waits for it.
func (k *KRaftNode) Stop() { _ = k.proc.Stop(20 * time.Second) }

// CreateTopics creates the votes, checkpoint and dead-letter topics of k
// and waits until every votes partition has a leader that answers: on a
// real broker a topic can be in the metadata a moment before its leaders
// serve, and the producer's first request would fail.
func CreateTopics(ctx context.Context, k kafkaio.Config) error {
	k.CreateTopics = true
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
		_, err := c.EndOffsets(ctx, k.Topic, k.Partitions)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("topic %s has no leaders yet", k.Topic), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// KafkaAdmin is kafka-go's own client of the brokers at addrs
// (comma-separated), for the admin calls tests make and the services never
// do (delete a topic, add partitions, give a topic a retention): kafkaio
// keeps its client to itself. Call the returned close when done.
func KafkaAdmin(addrs string) (*kafka.Client, func()) {
	tr := &kafka.Transport{DialTimeout: 10 * time.Second}
	return &kafka.Client{Addr: kafka.TCP(strings.Split(addrs, ",")...), Timeout: 30 * time.Second, Transport: tr}, tr.CloseIdleConnections
}
