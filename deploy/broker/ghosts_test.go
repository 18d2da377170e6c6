package main

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGhostMemberEvicted: a member killed while its first JoinGroup waits
// for the rebalance may never get the answer; kfake then keeps it, with its
// partitions, for good (no session timer runs for it) unless another
// rebalance comes. The broker must evict it, so the live member gets every
// partition.
func TestGhostMemberEvicted(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second),
		kfake.SeedTopics(2, "votes"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var evicted evictions
	go evictGhosts(ctx, cluster, addr, time.Second, slog.New(&evicted))

	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "g", Brokers: []string{addr}, Topics: []string{"votes"},
		SessionTimeout: time.Second, RebalanceTimeout: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond,
		JoinGroupBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	next := func() *kafka.Generation {
		t.Helper()
		nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
		defer ncancel()
		gen, err := cg.Next(nctx)
		if err != nil {
			t.Fatalf("next generation: %v", err)
		}
		gen.Start(func(gctx context.Context) { <-gctx.Done() })
		return gen
	}
	if gen := next(); len(gen.Assignments["votes"]) != 2 {
		t.Fatalf("alone, got %v", gen.Assignments)
	}

	// kfake answers a closed connection's join or not at random (a select
	// on two ready channels); only an unanswered one leaves a ghost. An
	// answered one kfake times out itself, so try until a ghost is evicted.
	for attempt := 1; evicted.n.Load() == 0; attempt++ {
		if attempt > 10 {
			t.Fatal("no ghost evicted in 10 members killed in their join")
		}
		joinAndDie(t, cluster, addr)
		if n := len(next().Assignments["votes"]); n != 1 {
			t.Fatalf("with the dying member joined, want 1 of 2 partitions, got %d", n)
		}
		if n := len(next().Assignments["votes"]); n != 2 {
			t.Fatalf("after the dying member's session, want 2 partitions, got %d", n)
		}
	}
}

// evictions counts what evictGhosts logs at warning level: its evictions.
type evictions struct{ n atomic.Int64 }

func (e *evictions) Enabled(context.Context, slog.Level) bool { return true }
func (e *evictions) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *evictions) WithGroup(string) slog.Handler            { return e }
func (e *evictions) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		e.n.Add(1)
	}
	return nil
}

// joinAndDie sends a first JoinGroup (v1, as kafka-go does) and closes the
// connection before the answer, as a process killed in the join does; it
// returns once kfake counts the member in.
func joinAndDie(t *testing.T, cluster *kfake.Cluster, addr string) {
	t.Helper()
	before := 0
	if info := cluster.GroupInfo("g"); info != nil {
		before = len(info.Members)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 1
	req.Group = "g"
	req.SessionTimeoutMillis = 1000
	req.RebalanceTimeoutMillis = 2000
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"votes"}
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "range"
	proto.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, proto)
	_, err = conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("ghost")).AppendRequest(nil, req, 1))
	conn.Close() // at once: long before the live member rejoins and the answer is due
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if info := cluster.GroupInfo("g"); info != nil && len(info.Members) > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("kfake did not take the join within 10s")
		}
	}
}
