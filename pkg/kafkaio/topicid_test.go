package kafkaio

import (
	"context"
	"encoding/binary"
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

// TestDecodeTopicID reads a Metadata v10 answer written by hand: whole, it
// gives the topic's id; cut anywhere before the fields after the id, it is
// the cut-short error, never a panic nor an id.
func TestDecodeTopicID(t *testing.T) {
	const corr = 7
	want := TopicID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b := binary.BigEndian.AppendUint32(nil, corr)
	b = append(b, 0)                        // header tagged fields
	b = binary.BigEndian.AppendUint32(b, 0) // throttle time
	b = append(b, 1+1)                      // brokers: one
	b = binary.BigEndian.AppendUint32(b, 1) // node id
	b = append(append(b, 9+1), "127.0.0.1"...)
	b = binary.BigEndian.AppendUint32(b, 9092) // port
	b = append(b, 0, 0)                        // no rack, tagged fields
	b = append(append(b, 3+1), "abc"...)       // cluster id
	b = binary.BigEndian.AppendUint32(b, 1)    // controller id
	b = append(b, 1+1, 0, 0, 1+1, 't')         // topics: one, no error, named t
	b = append(b, want[:]...)
	b = append(b, 0, 0+1, 0, 0, 0, 0, 0, 0) // not internal, no partitions, operations, tagged fields twice

	r, err := decodeTopicID(b, corr, "t")
	if err != nil || r.id != want || r.err != nil {
		t.Fatalf("decodeTopicID = %+v, %v; want id %x", r, err, want)
	}
	for n := range len(b) - 7 {
		if r, err := decodeTopicID(b[:n], corr, "t"); !errors.Is(err, errShortMetadata) {
			t.Errorf("cut at %d of %d bytes: %+v, %v; want %v", n, len(b), r, err, errShortMetadata)
		}
	}
}
