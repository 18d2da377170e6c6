package kafkaio

import (
	"io"

	"github.com/segmentio/kafka-go"
)

// Bytes is a record key or value over a byte slice, like kafka.NewBytes,
// but a plain value rather than a new object per record: a producer keeps a
// slice of them and resets them for each request, so building a request
// does not allocate per record. A retry reads the same bytes with new
// readers (see Client.produce).
type Bytes struct {
	b   []byte
	off int
}

var _ kafka.Bytes = (*Bytes)(nil)

// Reset makes r read b from its start. r keeps b, it does not copy it.
func (r *Bytes) Reset(b []byte) { r.b, r.off = b, 0 }

// Len is the number of bytes left to read.
func (r *Bytes) Len() int { return len(r.b) - r.off }

func (r *Bytes) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

// WriteTo lets io.Copy, which kafka-go's encoder uses, skip its buffer.
func (r *Bytes) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.b[r.off:])
	r.off += n
	return int64(n), err
}

// Close does nothing: the bytes belong to the caller.
func (r *Bytes) Close() error { return nil }
