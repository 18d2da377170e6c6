package kafkaio

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestTopicID reads topic ids from kfake (e2e's TestKafkaExactness checks
// them against Apache Kafka's own tools): the same topic has the same id,
// a topic deleted and made again under its name another, and a missing
// topic is an error.
func TestTopicID(t *testing.T) {
	c := testClient(t, kfake.SeedTopics(1, "t", "u"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := func(topic string) TopicID {
		t.Helper()
		id, err := c.TopicID(ctx, topic)
		if err != nil {
			t.Fatalf("TopicID(%s): %v", topic, err)
		}
		return id
	}
	first, u := id("t"), id("u")
	if first == (TopicID{}) || first == u {
		t.Fatalf("ids of t and u: %x and %x, want two different non-zero ids", first, u)
	}
	if again := id("t"); again != first {
		t.Errorf("t's id changed from %x to %x", first, again)
	}
	if _, err := c.kc.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "t", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	if again := id("t"); again == first || again == (TopicID{}) {
		t.Errorf("t made again has id %x, was %x: want a new one", again, first)
	}
	if _, err := c.TopicID(ctx, "missing"); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("TopicID(missing): %v, want UnknownTopicOrPartition", err)
	}
}
