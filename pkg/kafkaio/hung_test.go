package kafkaio

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// hungBroker listens on 127.0.0.1 and accepts connections it never
// answers, as the kernel of a paused (SIGSTOP) broker does; it is closed
// when t ends.
func hungBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// TestNemesisSeed103OpenPastHungBrokers: in the nemesis (seed 103, 5
// minutes) a counter started while a broker was paused exited 1 with
// "kafka at ... did not answer within 10s": kafka-go dials the bootstrap
// brokers in a random order and keeps the first that accepts, and a paused
// broker accepts and never answers. Two of three brokers hung here: Open
// must reach the third, every time.
func TestNemesisSeed103OpenPastHungBrokers(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := []string{hungBroker(t), hungBroker(t), cluster.ListenAddrs()[0]}
	for i := range 3 {
		cfg := Config{Brokers: brokers, Topic: "votes-hung", CheckpointTopic: "votes-hung.ckpt", DLQTopic: "votes-hung.dlq",
			Partitions: 2, ReplicationFactor: 1, CreateTopics: true, ClientID: "test", DialTimeout: time.Second, MetadataMaxAge: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, parts, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		cancel()
		if err != nil {
			t.Fatalf("open %d, brokers %v (two hung): %v", i+1, brokers, err)
		}
		c.Close()
		if parts["votes-hung"] != 2 {
			t.Fatalf("open %d: partitions %v, want votes-hung with 2", i+1, parts)
		}
	}
}
