package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaHarness checks the cluster harness itself on three nodes: a
// replicated topic gets a leader, killing it moves leadership to another
// node, and the restarted node rejoins until every ISR is full again.
func TestKafkaHarness(t *testing.T) {
	k := StartKafka(t, KafkaOptions{Nodes: 3})
	t.Logf("%s, %d nodes at %s", k.Version, len(k.Nodes), k.Addr)
	topic := NewEnv(t, k, 3).Topic

	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(k.Nodes[0].Addr), Transport: tr}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 3, ReplicationFactor: 3},
	}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	k.WaitHealthy(30 * time.Second)

	old := k.Leader(topic, 0)
	k.Node(old).Kill()
	start := time.Now()
	var moved int
	for moved == 0 || moved == old {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("leader of %s/0 still %d 30s after killing it", topic, old)
		}
		time.Sleep(200 * time.Millisecond)
		m, err := k.Metadata(ctx, topic)
		if err != nil {
			continue
		}
		moved = m.Topics[0].Partitions[0].Leader.ID
		for _, p := range m.Topics[0].Partitions {
			if p.ID == 0 {
				moved = p.Leader.ID
			}
		}
	}
	t.Logf("leader of %s/0 moved from %d to %d in %s", topic, old, moved, time.Since(start).Round(time.Millisecond))
	k.Node(old).Start()
	t.Logf("full ISR again %s after the restart", k.WaitHealthy(60*time.Second).Round(time.Millisecond))
	if got := k.Coordinator("harness-" + topic); got < 1 || got > 3 {
		t.Errorf("coordinator = %d, want a node id 1-3", got)
	}
}
