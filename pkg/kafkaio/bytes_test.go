package kafkaio

import (
	"bytes"
	"io"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestBytes(t *testing.T) {
	var r Bytes
	r.Reset([]byte("hello"))
	if got := r.Len(); got != 5 {
		t.Fatalf("Len = %d, want 5", got)
	}
	var w bytes.Buffer
	if n, err := io.Copy(&w, &r); err != nil || n != 5 || w.String() != "hello" {
		t.Fatalf("io.Copy = %d, %v, %q; want 5, nil, hello", n, err, w.String())
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len after reading = %d, want 0", got)
	}
	// A retry reads the same bytes with readers of its own, from the
	// start; the first attempt's reader is left as it was.
	again := reread([]kafka.Record{{Value: &r}})
	p := make([]byte, 3)
	if n, err := again[0].Value.Read(p); err != nil || string(p[:n]) != "hel" {
		t.Fatalf("Read = %q, %v; want hel, nil", p[:n], err)
	}
	if got := again[0].Value.Len(); got != 2 || r.Len() != 0 {
		t.Errorf("Len = %d and %d, want 2 and 0", got, r.Len())
	}
	r.Reset([]byte("ab"))
	if b, err := io.ReadAll(&r); err != nil || string(b) != "ab" {
		t.Errorf("after Reset: read %q, %v; want ab, nil", b, err)
	}
}
