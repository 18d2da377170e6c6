package kafkaio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// TopicID is a topic's id (KIP-516): a topic deleted and created again
// under the same name gets another. The zero id is unknown.
type TopicID = [16]byte

// metadataTopicIDVersion is the first Metadata version whose answer
// carries topic ids (Kafka 2.8).
const metadataTopicIDVersion = 10

// TopicID returns topic's id, or the zero id when the cluster cannot say
// it (a broker older than Kafka 2.8). kafka-go v0.4.51 speaks Metadata up
// to version 8, without ids, so this sends one Metadata v10 request of its
// own, on kafka-go's connections (TLS and SASL as configured).
func (c *Client) TopicID(ctx context.Context, topic string) (TopicID, error) {
	var id TopicID
	av, err := c.kc.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err == nil {
		err = av.Error
	}
	if err != nil {
		return id, fmt.Errorf("topic id of %s: api versions: %w", topic, err)
	}
	supported := false
	for _, k := range av.ApiKeys {
		if protocol.ApiKey(k.ApiKey) == protocol.Metadata && k.MaxVersion >= metadataTopicIDVersion {
			supported = true
		}
	}
	if !supported {
		return id, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.kc.Timeout)
	defer cancel()
	res, err := c.kc.Transport.RoundTrip(ctx, c.kc.Addr, &topicIDRequest{topic: topic, clientID: c.cfg.ClientID})
	if err != nil {
		return id, fmt.Errorf("topic id of %s: %w", topic, err)
	}
	r := res.(*topicIDResponse)
	if r.err != nil {
		return id, fmt.Errorf("topic id of %s: %w", topic, c.Denied(r.err, OpDescribe, Topic(topic)))
	}
	return r.id, nil
}

// topicIDRequest is a Metadata v10 request for one topic, written and read
// by hand (protocol.RawExchanger): kafka-go's own Metadata types stop at
// version 8.
type topicIDRequest struct{ topic, clientID string }

func (*topicIDRequest) ApiKey() protocol.ApiKey                 { return protocol.Metadata }
func (*topicIDRequest) Required(map[protocol.ApiKey]int16) bool { return true }

// RawExchange writes the request and reads its answer on the broker
// connection kafka-go's transport lends it.
func (r *topicIDRequest) RawExchange(rw io.ReadWriter) (protocol.Message, error) {
	const correlationID = 0x7e1d
	if _, err := rw.Write(r.encode(correlationID)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(rw, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 16<<20 {
		return nil, fmt.Errorf("metadata v10 answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rw, body); err != nil {
		return nil, err
	}
	return decodeTopicID(body, correlationID, r.topic)
}

// encode is the request: header v2 (client id a nullable string, no tagged
// fields), then the body in the flexible encoding: one topic by name.
func (r *topicIDRequest) encode(correlationID int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(protocol.Metadata))
	b = binary.BigEndian.AppendUint16(b, metadataTopicIDVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.clientID)))
	b = append(b, r.clientID...)
	b = append(b, 0)                   // header tagged fields
	b = binary.AppendUvarint(b, 1+1)   // topics: one
	b = append(b, make([]byte, 16)...) // topic id: unknown, so by name
	b = binary.AppendUvarint(b, uint64(len(r.topic))+1)
	b = append(b, r.topic...)
	b = append(b, 0)       // topic tagged fields
	b = append(b, 0, 0, 0) // no auto creation, no authorized operations
	b = append(b, 0)       // tagged fields
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// topicIDResponse is what RawExchange read: the topic's id or its error.
type topicIDResponse struct {
	id  TopicID
	err error
}

func (*topicIDResponse) ApiKey() protocol.ApiKey { return protocol.Metadata }

var errShortMetadata = errors.New("metadata v10 answer cut short")

// decodeTopicID reads a Metadata v10 answer (header v1) up to the first
// topic's id.
func decodeTopicID(b []byte, correlationID int32, topic string) (*topicIDResponse, error) {
	d := flexReader{b: b}
	if id := d.int32(); d.err == nil && id != correlationID {
		return nil, fmt.Errorf("metadata v10 answer to request %d, want %d", id, correlationID)
	}
	d.tags()
	d.skip(4) // throttle time
	for range d.count() {
		d.skip(4) // node id
		d.str()   // host
		d.skip(4) // port
		d.str()   // rack
		d.tags()
	}
	d.str()   // cluster id
	d.skip(4) // controller id
	if d.count() < 1 {
		d.fail()
	}
	code := d.int16()
	name := d.str()
	var id TopicID
	d.skip(copy(id[:], d.b))
	if d.err == nil && len(d.b) == 0 {
		d.fail() // the id was cut short: more fields follow it
	}
	if d.err != nil {
		return nil, d.err
	}
	if code != 0 {
		return &topicIDResponse{err: kafka.Error(code)}, nil
	}
	if string(name) != topic {
		return nil, fmt.Errorf("metadata v10 answer for topic %q, want %q", name, topic)
	}
	return &topicIDResponse{id: id}, nil
}

// flexReader reads the flexible encoding's fields, failing once.
type flexReader struct {
	b   []byte
	err error
}

func (d *flexReader) fail() {
	if d.err == nil {
		d.err = errShortMetadata
	}
	d.b = nil
}

// take returns the next n bytes, or fails and returns nil if there are
// fewer.
func (d *flexReader) take(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *flexReader) skip(n int) { d.take(n) }

func (d *flexReader) int16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (d *flexReader) int32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (d *flexReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a compact array's length (a null array is empty).
func (d *flexReader) count() int {
	n := d.uvarint()
	if n == 0 || n-1 > uint64(len(d.b)) {
		return 0
	}
	return int(n - 1)
}

// str reads a compact (nullable) string.
func (d *flexReader) str() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n-1 > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	return d.take(int(n - 1))
}

// tags skips tagged fields.
func (d *flexReader) tags() {
	for range d.uvarint() {
		d.uvarint()
		d.skip(int(d.uvarint()))
	}
}
