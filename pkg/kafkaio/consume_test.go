package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Consume goes on after the last record fn read, even when fn stops
// early in a fetch, and says where the partition ends when asked for an
// offset past it.
func TestConsumeEarlyStopAndOutOfRange(t *testing.T) {
	c := testClient(t, kfake.SeedTopics(1, "t"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var msgs []Message
	for i := range 6 {
		msgs = append(msgs, Message{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"), Time: time.Now()})
	}
	if err := c.ProduceMessages(ctx, "t", 0, Snappy, msgs); err != nil {
		t.Fatal(err)
	}
	var seen []string
	cctx, stop := context.WithCancel(ctx)
	err := c.Consume(cctx, "t", 0, 0, ConsumeOptions{}, func(f *Fetch) error {
		for i := 0; i < 2; i++ { // two records a fetch at most
			r := f.Next()
			if r == nil {
				break
			}
			seen = append(seen, fmt.Sprintf("%d:%s", r.Offset, r.Key))
		}
		if len(seen) >= 6 {
			stop()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(seen, " "), "0:k0 1:k1 2:k2 3:k3 4:k4 5:k5"; got != want {
		t.Errorf("read %q, want %q", got, want)
	}
	err = c.Consume(ctx, "t", 0, 100, ConsumeOptions{}, func(*Fetch) error { return nil })
	if !errors.Is(err, ErrOffsetOutOfRange) || !strings.Contains(err.Error(), "the partition ends at 6") {
		t.Errorf("Consume past the end: %v, want offset out of range saying the partition ends at 6", err)
	}
}
