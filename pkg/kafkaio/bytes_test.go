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
	// A retry rewinds the records it resends.
	rewind([]kafka.Record{{Value: &r}})
	p := make([]byte, 3)
	if n, err := r.Read(p); err != nil || string(p[:n]) != "hel" {
		t.Fatalf("Read = %q, %v; want hel, nil", p[:n], err)
	}
	if got := r.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1) succeeded, want an error")
	}
	r.Reset([]byte("ab"))
	if b, err := io.ReadAll(&r); err != nil || string(b) != "ab" {
		t.Errorf("after Reset: read %q, %v; want ab, nil", b, err)
	}
}
