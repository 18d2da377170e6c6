package vote

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// MaxRecordSize bounds a vote record; the largest valid one is about 200
// bytes, so anything far larger is rejected before it is parsed.
const MaxRecordSize = 4096

// Reason says why a record is not a valid vote. Reasons label metrics and
// dead letters, so their names are stable.
type Reason uint8

// The reasons a record is rejected.
const (
	ReasonNone      Reason = iota
	ReasonEmpty            // no value at all
	ReasonOversized        // longer than MaxRecordSize
	ReasonJSON             // not one well-formed JSON object
	ReasonField            // a field missing, unknown or repeated
	ReasonType             // a field of the wrong JSON type
	ReasonVoteID           // vote_id is not a UUID
	ReasonTimestamp        // timestamp is not ISO-8601
	ReasonState            // unknown state
	ReasonCandidate        // unknown candidate
	ReasonAgeGroup         // unknown age group
	ReasonVoteCount        // vote_count is not 1
	ReasonDuplicate        // a producer sequence already counted
	ReasonProducer         // a producer id too long, or one too many in its partition
	NumReasons
)

var reasonNames = [NumReasons]string{
	"none", "empty", "oversized", "json", "field", "type", "vote_id",
	"timestamp", "state", "candidate", "age_group", "vote_count", "duplicate", "producer",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// DecodeError is a record that is not a valid vote.
type DecodeError struct {
	Reason Reason
	Offset int // byte offset in the record where it went wrong
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("invalid vote: %s (at byte %d)", e.Reason, e.Offset)
}

// The field names, in the seed's order.
const (
	fieldVoteID = iota
	fieldTimestamp
	fieldState
	fieldCandidate
	fieldAgeGroup
	fieldVoteCount
	numFields
)

var fieldNames = [numFields]string{"vote_id", "timestamp", "state", "candidate", "age_group", "vote_count"}

// AppendJSON appends v as one compact JSON object, the Kafka record format.
func AppendJSON(dst []byte, v *Vote) []byte { return appendJSON(dst, v, false, nil) }

// AppendFileJSON appends v as Python's json.dump writes it (", " and ": "
// separators), the seed's file format.
func AppendFileJSON(dst []byte, v *Vote) []byte { return appendJSON(dst, v, true, nil) }

// Encoder appends votes exactly as AppendJSON and AppendFileJSON do, but
// formats a timestamp once for a run of votes cast at the same instant, as
// a producer's batch is: the timestamp is about half the work of encoding a
// vote. The zero value is ready to use; an Encoder is not safe for
// concurrent use.
type Encoder struct {
	t  int64
	ts []byte // t formatted, empty before the first vote
}

// AppendJSON is AppendJSON with the timestamp cached.
func (e *Encoder) AppendJSON(dst []byte, v *Vote) []byte {
	return appendJSON(dst, v, false, e.timestamp(v.Time))
}

// AppendFileJSON is AppendFileJSON with the timestamp cached.
func (e *Encoder) AppendFileJSON(dst []byte, v *Vote) []byte {
	return appendJSON(dst, v, true, e.timestamp(v.Time))
}

func (e *Encoder) timestamp(t int64) []byte {
	if len(e.ts) == 0 || e.t != t {
		e.t, e.ts = t, AppendTimestamp(e.ts[:0], t)
	}
	return e.ts
}

// appendJSON writes v with its timestamp formatted as ts, or formatted
// afresh when ts is nil.
func appendJSON(dst []byte, v *Vote, spaced bool, ts []byte) []byte {
	sep, colon := `,"`, `":"`
	if spaced {
		sep, colon = `, "`, `": "`
	}
	dst = append(dst, `{"vote_id`...)
	dst = append(dst, colon...)
	dst = AppendID(dst, &v.ID)
	dst = append(dst, '"')
	dst = append(dst, sep...)
	dst = append(dst, `timestamp`...)
	dst = append(dst, colon...)
	if ts != nil {
		dst = append(dst, ts...)
	} else {
		dst = AppendTimestamp(dst, v.Time)
	}
	dst = append(dst, '"')
	dst = append(dst, sep...)
	dst = append(dst, `state`...)
	dst = append(dst, colon...)
	dst = append(dst, states[v.State].Name...)
	dst = append(dst, '"')
	dst = append(dst, sep...)
	dst = append(dst, `candidate`...)
	dst = append(dst, colon...)
	dst = append(dst, candidates[v.Candidate].Name...)
	dst = append(dst, '"')
	dst = append(dst, sep...)
	dst = append(dst, `age_group`...)
	dst = append(dst, colon...)
	dst = append(dst, ageGroups[v.AgeGroup]...)
	dst = append(dst, '"')
	dst = append(dst, sep...)
	dst = append(dst, `vote_count`...)
	if spaced {
		dst = append(dst, `": 1}`...)
	} else {
		dst = append(dst, `":1}`...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendID appends a vote ID in the canonical UUID form.
func AppendID(dst []byte, id *[16]byte) []byte {
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}

// Decode parses one record value into v. It accepts exactly a JSON object
// with the seed's six fields, in any order, each once, of the right type and
// a known value, and vote_count the integer 1; anything else is a
// *DecodeError whose Reason says what. It does not allocate unless a string
// holds escapes.
func Decode(data []byte, v *Vote) error { return decode(data, v, nil) }

// Decoder decodes exactly as Decode does, accepting and rejecting the same
// records for the same reasons, but remembers the last timestamp it parsed
// on the canonical fast path: a producer's batch shares one timestamp, so a
// run of records need not parse it again. The zero value is ready to use; a
// Decoder is not safe for concurrent use.
type Decoder struct {
	ts  [maxCachedTimestamp]byte
	n   int // length of ts in use; 0 before the first
	val int64
}

// maxCachedTimestamp is the longest timestamp a Decoder remembers: the
// canonical one is 26 bytes, with a zone 32.
const maxCachedTimestamp = 32

// Decode is Decode with the timestamp cache.
func (d *Decoder) Decode(data []byte, v *Vote) error { return decode(data, v, d) }

// timestamp parses s, or returns the last value parsed if s is the same
// bytes (ParseTimestamp is a pure function of them).
func (d *Decoder) timestamp(s []byte) (int64, bool) {
	if d.n > 0 && string(s) == string(d.ts[:d.n]) {
		return d.val, true
	}
	t, ok := ParseTimestamp(s)
	if ok && len(s) <= maxCachedTimestamp {
		d.n = copy(d.ts[:], s)
		d.val = t
	}
	return t, ok
}

func decode(data []byte, v *Vote, cache *Decoder) error {
	if len(data) == 0 {
		return &DecodeError{ReasonEmpty, 0}
	}
	if len(data) > MaxRecordSize {
		return &DecodeError{ReasonOversized, MaxRecordSize}
	}
	if decodeCanonical(data, v, cache) {
		return nil
	}
	d := decoder{data: data}
	if r := d.object(v); r != ReasonNone {
		return &DecodeError{r, d.pos}
	}
	return nil
}

// The canonical record, as AppendJSON writes it, between its values.
const (
	canonVoteID    = `{"vote_id":"`
	canonTimestamp = `","timestamp":"`
	canonState     = `","state":"`
	canonCandidate = `","candidate":"`
	canonAgeGroup  = `","age_group":"`
	canonEnd       = `","vote_count":1}`
)

// decodeCanonical is Decode's fast path for records exactly as AppendJSON
// writes them: the seed's field order, no white space, no escapes. It reports
// false, leaving v alone, for anything else, which the general decoder then
// reads (and accepts or rejects) with the same strict rules. Every record it
// accepts is one the general decoder accepts with the same result.
func decodeCanonical(data []byte, v *Vote, cache *Decoder) bool {
	var out Vote
	d, ok := cutPrefix(data, canonVoteID)
	if !ok || len(d) < 36 || !parseUUID(d[:36], &out.ID) {
		return false
	}
	var val []byte
	if d, ok = cutPrefix(d[36:], canonTimestamp); !ok {
		return false
	}
	if val, d, ok = cutString(d); !ok {
		return false
	}
	if cache != nil {
		out.Time, ok = cache.timestamp(val)
	} else {
		out.Time, ok = ParseTimestamp(val)
	}
	if !ok {
		return false
	}
	if d, ok = cutPrefix(d, canonState); !ok {
		return false
	}
	if val, d, ok = cutString(d); !ok {
		return false
	}
	if out.State, ok = ParseState(val); !ok {
		return false
	}
	if d, ok = cutPrefix(d, canonCandidate); !ok {
		return false
	}
	if val, d, ok = cutString(d); !ok {
		return false
	}
	if out.Candidate, ok = ParseCandidate(val); !ok {
		return false
	}
	if d, ok = cutPrefix(d, canonAgeGroup); !ok {
		return false
	}
	if val, d, ok = cutString(d); !ok {
		return false
	}
	if out.AgeGroup, ok = ParseAgeGroup(val); !ok {
		return false
	}
	if string(d) != canonEnd {
		return false
	}
	*v = out
	return true
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// cutString returns the bytes before the next '"' and the rest from that
// quote on. A value holding a backslash or a control byte is not
// canonical; the known names and timestamps never hold one, so they fail to
// parse and the general decoder takes over.
func cutString(b []byte) (val, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '"')
	if i < 0 {
		return nil, b, false
	}
	return b[:i], b[i:], true
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// next skips white space and reports the next byte, 0 at the end.
func (d *decoder) next() byte {
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) object(v *Vote) Reason {
	if d.next() != '{' {
		if d.pos < len(d.data) && d.validValue() {
			if d.skipSpace(); d.pos == len(d.data) {
				return ReasonType // JSON, but not an object
			}
		}
		return ReasonJSON
	}
	d.pos++
	var seen uint8
	// A bad value is remembered while the rest is still checked for being
	// well-formed JSON: malformed input is reported as such first.
	bad, badAt := ReasonNone, 0
	for i := 0; ; i++ {
		c := d.next()
		if c == '}' && i == 0 {
			d.pos++
			break
		}
		if c != '"' {
			return ReasonJSON
		}
		key, ok := d.str()
		if !ok {
			return ReasonJSON
		}
		if d.next() != ':' {
			return ReasonJSON
		}
		d.pos++
		d.skipSpace()
		at := d.pos
		f := fieldIndex(key)
		if f < 0 || seen&(1<<f) != 0 {
			if !d.validValue() {
				return ReasonJSON
			}
			if bad == ReasonNone {
				bad, badAt = ReasonField, at
			}
		} else {
			seen |= 1 << f
			if r := d.field(f, v); r != ReasonNone {
				if r == ReasonJSON {
					return r
				}
				if bad == ReasonNone {
					bad, badAt = r, at
				}
			}
		}
		switch d.next() {
		case ',':
			d.pos++
			continue
		case '}':
			d.pos++
		default:
			return ReasonJSON
		}
		break
	}
	// Not d.next() != 0: next reports a NUL byte as the end.
	if d.skipSpace(); d.pos != len(d.data) {
		return ReasonJSON // trailing bytes after the object
	}
	if bad != ReasonNone {
		d.pos = badAt // the error's offset: where the bad value starts
		return bad
	}
	if seen != 1<<numFields-1 {
		return ReasonField
	}
	return ReasonNone
}

func fieldIndex(key []byte) int {
	for i := range fieldNames {
		if string(key) == fieldNames[i] {
			return i
		}
	}
	return -1
}

// field parses field f's value at d.pos into v.
func (d *decoder) field(f int, v *Vote) Reason {
	if f == fieldVoteCount {
		start := d.pos
		if d.pos < len(d.data) && d.data[d.pos] != '-' && (d.data[d.pos] < '0' || d.data[d.pos] > '9') {
			if !d.validValue() {
				return ReasonJSON
			}
			return ReasonType
		}
		if !d.number() {
			return ReasonJSON
		}
		if string(d.data[start:d.pos]) != "1" {
			return ReasonVoteCount
		}
		return ReasonNone
	}
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		if !d.validValue() {
			return ReasonJSON
		}
		return ReasonType
	}
	s, ok := d.str()
	if !ok {
		return ReasonJSON
	}
	switch f {
	case fieldVoteID:
		if !parseUUID(s, &v.ID) {
			return ReasonVoteID
		}
	case fieldTimestamp:
		t, ok := ParseTimestamp(s)
		if !ok {
			return ReasonTimestamp
		}
		v.Time = t
	case fieldState:
		if v.State, ok = ParseState(s); !ok {
			return ReasonState
		}
	case fieldCandidate:
		if v.Candidate, ok = ParseCandidate(s); !ok {
			return ReasonCandidate
		}
	case fieldAgeGroup:
		if v.AgeGroup, ok = ParseAgeGroup(s); !ok {
			return ReasonAgeGroup
		}
	}
	return ReasonNone
}

// str reads a JSON string at d.pos (which is '"') and returns its contents.
// Strings with escapes, never written by our producer, take a slow path.
func (d *decoder) str() ([]byte, bool) {
	start := d.pos + 1
	escaped := false
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			if !escaped {
				return d.data[start:i], true
			}
			var s string
			if json.Unmarshal(d.data[start-1:i+1], &s) != nil {
				return nil, false
			}
			return []byte(s), true
		case c == '\\':
			escaped = true
			i++ // the escaped byte cannot end the string
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number reads a JSON number token at d.pos.
func (d *decoder) number() bool {
	p, b := d.pos, d.data
	if p < len(b) && b[p] == '-' {
		p++
	}
	switch {
	case p < len(b) && b[p] == '0':
		p++
	case p < len(b) && b[p] >= '1' && b[p] <= '9':
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			p++
		}
	default:
		return false
	}
	if p < len(b) && b[p] == '.' {
		p++
		if p >= len(b) || b[p] < '0' || b[p] > '9' {
			return false
		}
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			p++
		}
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		if p >= len(b) || b[p] < '0' || b[p] > '9' {
			return false
		}
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			p++
		}
	}
	d.pos = p
	return true
}

// validValue skips one well-formed JSON value of any type at d.pos.
func (d *decoder) validValue() bool {
	end, ok := skipValue(d.data, d.pos, 0)
	d.pos = end
	return ok
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

func skipValue(b []byte, p, depth int) (int, bool) {
	if depth > maxDepth || p >= len(b) {
		return p, false
	}
	d := decoder{data: b, pos: p}
	switch c := b[p]; {
	case c == '"':
		_, ok := d.str()
		return d.pos, ok
	case c == '-' || (c >= '0' && c <= '9'):
		ok := d.number()
		return d.pos, ok
	case c == 't', c == 'f', c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(b)-p >= len(lit) && string(b[p:p+len(lit)]) == lit {
				return p + len(lit), true
			}
		}
		return p, false
	case c == '[' || c == '{':
		closer := byte(']')
		if c == '{' {
			closer = '}'
		}
		d.pos++
		if d.next() == closer {
			return d.pos + 1, true
		}
		for {
			if c == '{' {
				if d.next() != '"' {
					return d.pos, false
				}
				if _, ok := d.str(); !ok {
					return d.pos, false
				}
				if d.next() != ':' {
					return d.pos, false
				}
				d.pos++
			}
			d.skipSpace()
			end, ok := skipValue(b, d.pos, depth+1)
			if !ok {
				return end, false
			}
			d.pos = end
			switch d.next() {
			case ',':
				d.pos++
			case closer:
				return d.pos + 1, true
			default:
				return d.pos, false
			}
		}
	}
	return p, false
}

func parseUUID(s []byte, id *[16]byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	// Eight digits at a time, as the bytes of one word (see hex8).
	w0 := binary.LittleEndian.Uint64(s[0:8])
	w1 := uint64(binary.LittleEndian.Uint32(s[9:13])) | uint64(binary.LittleEndian.Uint32(s[14:18]))<<32
	w2 := uint64(binary.LittleEndian.Uint32(s[19:23])) | uint64(binary.LittleEndian.Uint32(s[24:28]))<<32
	w3 := binary.LittleEndian.Uint64(s[28:36])
	b0, ok0 := hex8(w0)
	b1, ok1 := hex8(w1)
	b2, ok2 := hex8(w2)
	b3, ok3 := hex8(w3)
	if !(ok0 && ok1 && ok2 && ok3) {
		return false
	}
	binary.LittleEndian.PutUint32(id[0:4], b0)
	binary.LittleEndian.PutUint32(id[4:8], b1)
	binary.LittleEndian.PutUint32(id[8:12], b2)
	binary.LittleEndian.PutUint32(id[12:16], b3)
	return true
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hex8 decodes the eight hex digits (either case) held in w's bytes, first
// digit in the low byte, into four bytes, first in the low byte, and
// reports whether all eight were hex digits. It tests every byte at once:
// for a byte b under 0x80, b+(0x80-lo) has its high bit set exactly when
// b >= lo, and b+(0x7f-hi) exactly when b > hi, and neither sum carries
// into the next byte.
func hex8(w uint64) (uint32, bool) {
	if w&highs != 0 {
		return 0, false
	}
	digit := (w + (0x80-'0')*ones) &^ (w + (0x7f-'9')*ones) & highs
	l := w | 0x20*ones // lower case; only letters are read from it
	letter := (l + (0x80-'a')*ones) &^ (l + (0x7f-'f')*ones) & highs
	if digit|letter != highs {
		return 0, false
	}
	// Each byte's value: its low four bits, plus 9 for a letter.
	v := w&(0x0f*ones) + (letter>>7)*9
	// Pair the digits: each 16-bit lane's low byte becomes hi<<4 | lo.
	v = (v<<4 | v>>8) & 0x00ff00ff00ff00ff
	// Gather the four lanes' low bytes.
	v = (v | v>>8) & 0x0000ffff0000ffff
	v = (v | v>>16) & 0xffffffff
	return uint32(v), true
}
