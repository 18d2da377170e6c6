package kafkaio

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/pkg/config"
)

// TestProduceRetrySendsSameRecords drops the connection after the broker
// has read a produce request, as a broker that stops does: the retry must
// send the same keys and values, not the drained readers of the first
// attempt (which wrote empty records, each a vote lost).
func TestProduceRetrySendsSameRecords(t *testing.T) {
	c, failed := failFirstProduce(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := []kafka.Record{
		{Key: kafka.NewBytes([]byte("k1")), Value: kafka.NewBytes([]byte("v1"))},
		{Key: kafka.NewBytes([]byte("k2")), Value: kafka.NewBytes([]byte("v2"))},
	}
	if err := c.Produce(ctx, "t", 0, kafka.Lz4, recs); err != nil {
		t.Fatal(err)
	}
	if !*failed {
		t.Fatal("the first produce request was not failed: the test proves nothing")
	}
	if got := values(ctx, t, c); strings.Join(got, " ") != "k1=v1 k2=v2" {
		t.Errorf("got %q, want [k1=v1 k2=v2]", got)
	}
}

// TestProduceBatchRetryLeavesMemory fails a batch's first produce request:
// the retry sends the same records, and the batch then has memory of its
// own, the first attempt's being left to kafka-go (which may still read a
// request it was given after its caller gave up); its count stands until
// Reset, and it takes the next records as before.
func TestProduceBatchRetryLeavesMemory(t *testing.T) {
	c, failed := failFirstProduce(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b Batch
	b.Grow(2)
	b.Add(time.Now(), []byte("v1"), []byte("p"), 0)
	b.Add(time.Now(), []byte("v2"), []byte("p"), 1)
	before := unsafe.SliceData(b.data)
	if err := c.ProduceBatch(ctx, "t", 0, Snappy, &b); err != nil {
		t.Fatal(err)
	}
	if !*failed {
		t.Fatal("the first produce request was not failed: the test proves nothing")
	}
	if b.Len() != 2 || unsafe.SliceData(b.data) == before {
		t.Fatalf("after a retried produce: %d records (want 2), data reused %v", b.Len(), unsafe.SliceData(b.data) == before)
	}
	b.Reset()
	b.Add(time.Now(), []byte("v3"), []byte("p"), 2)
	if err := c.ProduceBatch(ctx, "t", 0, Snappy, &b); err != nil {
		t.Fatal(err)
	}
	k := func(seq int64) string { return string(AppendSeqKey(nil, []byte("p"), seq)) }
	if got, want := strings.Join(values(ctx, t, c), " "), k(0)+"=v1 "+k(1)+"=v2 "+k(2)+"=v3"; got != want {
		t.Errorf("read back %q, want %q", got, want)
	}
}

// failFirstProduce is a client of a one-broker kfake with topic t whose
// first produce request is read and then dropped with the connection, as
// by a broker that stops; *failed tells whether that happened.
func failFirstProduce(t *testing.T) (*Client, *bool) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	failed := new(bool)
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		*failed = true
		return nil, errors.New("connection dropped after the request was read"), true
	})
	c, err := New(config.Kafka{Brokers: cluster.ListenAddrs(), DialTimeout: 5 * time.Second, ClientID: "test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, failed
}

// values reads back topic t's partition 0, in order, as key=value.
func values(ctx context.Context, t *testing.T, c *Client) []string {
	t.Helper()
	var got []string
	err := c.ScanBack(ctx, "t", 0, 64, func(r Record) bool {
		got = append([]string{string(r.Key) + "=" + string(r.Value)}, got...) // ScanBack goes from the end
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
