package kafkaio

import (
	"errors"
	"io"

	"github.com/segmentio/kafka-go"
)

// Bytes is a record key or value over a byte slice, like kafka.NewBytes,
// but a plain value rather than a new object per record: a producer keeps a
// slice of them and resets them for each request, so building a request
// does not allocate per record. It rewinds (io.Seeker) for a retry.
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

// Seek moves the read position, as kafkaio's retry does to rewind.
func (r *Bytes) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += int64(r.off)
	case io.SeekEnd:
		offset += int64(len(r.b))
	}
	if offset < 0 || offset > int64(len(r.b)) {
		return int64(r.off), errors.New("kafkaio: seek out of range")
	}
	r.off = int(offset)
	return offset, nil
}

// Close does nothing: the bytes belong to the caller.
func (r *Bytes) Close() error { return nil }
