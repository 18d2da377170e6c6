// Package checkpoint is one partition's counting state: the totals of the
// votes in offsets [0, Offset) and what is needed to go on from there. The
// counter saves it to Kafka as one record, so totals and offset are always
// written together and no checkpoint can disagree with itself.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/votestream/votestream/pkg/vote"
)

// State is what one partition has counted.
type State struct {
	// Topic and TopicID name the votes topic the state counts (KIP-516's
	// id, zero when the broker did not say it): a checkpoint of another
	// topic, or of a topic deleted and created again under the same name,
	// covers none of this topic's records. Version 2 checkpoints have
	// neither.
	Topic     string
	TopicID   [16]byte
	Partition int32
	// Offset is the next offset to read: every record before it is counted
	// (or rejected) and every one from it on is not.
	Offset   int64
	Tally    vote.Tally
	Rejected [vote.NumReasons]int64
	// Producers holds, per producer id, the highest sequence number counted
	// from that producer in this partition. A producer writes each
	// partition's sequence numbers in increasing order, so a record at or
	// below it is a retry of one already counted. There are few producers, so
	// a slice searched in order beats a map and never allocates per record.
	Producers []ProducerSeq
	// Latest is the newest timestamp of a vote counted (Unix microseconds):
	// in a replayed election night, the night's clock as far as this
	// partition knows it.
	Latest int64
	// Written is when the checkpoint was written (Unix milliseconds) and
	// Owner which replica wrote it: for people, not for counting.
	Written int64
	Owner   string
}

// Bounds on the producers a partition's state remembers, so whoever can
// write to the votes topic cannot grow every checkpoint past what the
// broker accepts: 64 ids of up to 256 bytes are 17 KiB at most.
const (
	MaxProducers  = 64
	MaxProducerID = 256
)

// ProducerSeq is the last sequence counted from one producer.
type ProducerSeq struct {
	ID  string
	Seq int64
}

// Clone returns a deep copy, safe to encode while s goes on counting.
func (s *State) Clone() *State {
	c := *s
	c.Producers = append([]ProducerSeq(nil), s.Producers...)
	return &c
}

// Count applies one record. producer and seq come from the record's key;
// a record without them (producer empty) is counted without deduplication.
// It returns the reason the record was not counted, or vote.ReasonNone. A
// producer id longer than MaxProducerID, or a new one past MaxProducers, is
// rejected (vote.ReasonProducer): counting it without its sequence could
// count a retried vote twice, and the dead-letter topic keeps it.
func (s *State) Count(v *vote.Vote, producer []byte, seq int64) vote.Reason {
	if len(producer) > 0 {
		if len(producer) > MaxProducerID {
			s.Rejected[vote.ReasonProducer]++
			return vote.ReasonProducer
		}
		i := 0
		for i < len(s.Producers) && s.Producers[i].ID != string(producer) {
			i++
		}
		if i == len(s.Producers) {
			if i >= MaxProducers {
				s.Rejected[vote.ReasonProducer]++
				return vote.ReasonProducer
			}
			s.Producers = append(s.Producers, ProducerSeq{ID: string(producer), Seq: -1})
		}
		if seq <= s.Producers[i].Seq {
			s.Rejected[vote.ReasonDuplicate]++
			return vote.ReasonDuplicate
		}
		s.Producers[i].Seq = seq
	}
	s.Tally.Add(v)
	s.Latest = max(s.Latest, v.Time)
	return vote.ReasonNone
}

// Reject counts a record that is not a valid vote.
func (s *State) Reject(r vote.Reason) { s.Rejected[r]++ }

// Votes is the number of votes counted.
func (s *State) Votes() int64 { return s.Tally.Total() }

// Version 2 adds Latest at the end, version 3 Topic and TopicID after it;
// checkpoints of versions 1 and 2, without them, are still read.
const (
	magic   = "VSCP"
	version = 3
)

// ErrCorrupt is returned for bytes that are not a checkpoint.
var ErrCorrupt = errors.New("corrupt checkpoint")

// ErrForeign is a checkpoint that does not count the votes topic asked
// about: none of its totals, offsets or sequences apply to it.
var ErrForeign = errors.New("checkpoint of another votes topic")

// Covers returns nil if s counts votes topic topic, of id id (zero when
// unknown), or an error wrapping ErrForeign that says why not: another
// topic's name, or the same name with another id (a topic deleted and
// made again). A checkpoint that names no topic (versions 1 and 2, written
// before checkpoints did) counts topic only when untagged says so; a
// checkpoint written without the id is taken on its name.
func (s *State) Covers(topic string, id [16]byte, untagged bool) error {
	switch {
	case s.Topic == "" && !untagged:
		return fmt.Errorf("%w: it names no topic (written before checkpoints did) and is not in %s's default checkpoint topic", ErrForeign, topic)
	case s.Topic == "":
		return nil
	case s.Topic != topic:
		return fmt.Errorf("%w: it counts topic %q, not %q", ErrForeign, s.Topic, topic)
	case s.TopicID != [16]byte{} && id != [16]byte{} && s.TopicID != id:
		return fmt.Errorf("%w: it counts an earlier topic %q (id %x, now %x), deleted and made again", ErrForeign, topic, s.TopicID, id)
	}
	return nil
}

// AppendBinary appends the checkpoint's encoding to dst: a magic, a version,
// then varints. Every cell of the tally is written, so a checkpoint is a
// few kilobytes whatever the count.
func (s *State) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, magic...)
	dst = append(dst, version)
	dst = binary.AppendVarint(dst, int64(s.Partition))
	dst = binary.AppendVarint(dst, s.Offset)
	dst = binary.AppendVarint(dst, s.Written)
	dst = binary.AppendUvarint(dst, uint64(len(s.Owner)))
	dst = append(dst, s.Owner...)
	dst = binary.AppendUvarint(dst, vote.NumCandidates)
	dst = binary.AppendUvarint(dst, vote.NumStates)
	dst = binary.AppendUvarint(dst, vote.NumAgeGroups)
	for c := range s.Tally {
		for st := range s.Tally[c] {
			for a := range s.Tally[c][st] {
				dst = binary.AppendUvarint(dst, uint64(s.Tally[c][st][a]))
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(vote.NumReasons))
	for _, n := range s.Rejected {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Producers)))
	for _, p := range s.Producers {
		dst = binary.AppendUvarint(dst, uint64(len(p.ID)))
		dst = append(dst, p.ID...)
		dst = binary.AppendVarint(dst, p.Seq)
	}
	dst = binary.AppendVarint(dst, s.Latest)
	dst = binary.AppendUvarint(dst, uint64(len(s.Topic)))
	dst = append(dst, s.Topic...)
	dst = append(dst, s.TopicID[:]...)
	return dst, nil
}

// MarshalBinary encodes the checkpoint.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(make([]byte, 0, 2048)) }

// UnmarshalBinary decodes a checkpoint written by MarshalBinary.
func (s *State) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if len(b) < len(magic)+1 || string(b[:len(magic)]) != magic {
		return fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	v := b[len(magic)]
	if v < 1 || v > version {
		return fmt.Errorf("%w: version %d, want 1 to %d", ErrCorrupt, v, version)
	}
	r.b = b[len(magic)+1:]
	*s = State{}
	s.Partition = int32(r.varint())
	s.Offset = r.varint()
	s.Written = r.varint()
	s.Owner = string(r.bytes())
	if r.uvarint() != vote.NumCandidates || r.uvarint() != vote.NumStates || r.uvarint() != vote.NumAgeGroups {
		if r.err == nil {
			r.err = errors.New("tally shape differs from this build's")
		}
	}
	for c := range s.Tally {
		for st := range s.Tally[c] {
			for a := range s.Tally[c][st] {
				s.Tally[c][st][a] = int64(r.uvarint())
			}
		}
	}
	nr := r.uvarint()
	for i := uint64(0); i < nr && r.err == nil; i++ {
		n := int64(r.uvarint())
		if i < uint64(len(s.Rejected)) {
			s.Rejected[i] = n
		}
	}
	np := r.uvarint()
	if np > uint64(len(r.b)) {
		r.fail()
	}
	for i := uint64(0); i < np && r.err == nil; i++ {
		id := string(r.bytes())
		s.Producers = append(s.Producers, ProducerSeq{ID: id, Seq: r.varint()})
	}
	if v >= 2 {
		s.Latest = r.varint()
	}
	if v >= 3 {
		s.Topic = string(r.bytes())
		if len(r.b) < len(s.TopicID) {
			r.fail()
		}
		r.b = r.b[copy(s.TopicID[:], r.b):]
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	if s.Offset < 0 {
		return fmt.Errorf("%w: negative offset", ErrCorrupt)
	}
	return nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated")
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
