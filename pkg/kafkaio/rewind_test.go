package kafkaio

import (
	"io"
	"testing"

	"github.com/segmentio/kafka-go"
)

// A retried produce must send the same bytes: kafka-go consumes a record's
// Bytes while encoding, so Produce rewinds them before each retry.
func TestRewindRestoresRecordBytes(t *testing.T) {
	recs := []kafka.Record{{Key: kafka.NewBytes([]byte("key")), Value: kafka.NewBytes([]byte(`{"v":1}`))}}
	for _, b := range []kafka.Bytes{recs[0].Key, recs[0].Value} {
		if _, err := io.ReadAll(b); err != nil {
			t.Fatal(err)
		}
	}
	rewind(recs)
	if got, _ := io.ReadAll(recs[0].Key); string(got) != "key" {
		t.Errorf("key after rewind: got %q, want %q", got, "key")
	}
	if got, _ := io.ReadAll(recs[0].Value); string(got) != `{"v":1}` {
		t.Errorf("value after rewind: got %q, want %q", got, `{"v":1}`)
	}
}
