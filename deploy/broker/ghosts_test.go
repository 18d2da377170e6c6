package main

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGhostMemberEvicted: a member killed while its first JoinGroup waits
// for the rebalance never gets the answer; kfake then keeps it, with its
// partitions, for good (no session timer runs for it). The broker must
// evict it, so the live member gets every partition.
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
	go evictGhosts(ctx, cluster, addr, time.Second, slog.New(slog.DiscardHandler))

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

	joinAndDie(t, cluster, addr)
	gen := next()
	if n := len(gen.Assignments["votes"]); n != 1 {
		t.Fatalf("with the dying member joined, want 1 partition, got %d", n)
	}
	// kfake would drop a member silent for a session; the broker must not
	// wait much longer than that and a rebalance.
	gen = next()
	if n := len(gen.Assignments["votes"]); n != 2 {
		t.Fatalf("after the dead member's session, want 2 partitions, got %d", n)
	}
}

// joinAndDie sends a first JoinGroup (v1, as kafka-go does) and closes the
// connection before the answer, as a process killed in the join does.
func joinAndDie(t *testing.T, cluster *kfake.Cluster, addr string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
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
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("ghost")).AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	// The join is parked until the live member rejoins; make sure kfake has
	// read it before the connection closes.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if info := cluster.GroupInfo("g"); info != nil && len(info.Members) >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("kfake did not take the join within 10s")
		}
	}
}
