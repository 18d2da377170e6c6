package web

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
)

// The age of the results changes while they do not, so a frame holds
// their JSON without it, cut where it goes, and what is served is an
// edition: the frame with its age as of the moment, in tenths of a second.
// An edition is made at most once per tenth and shared meanwhile by every
// reply and viewer, so a stalled view is shown ageing while each change
// is still encoded and compressed once.

// ageMark is the age the results are encoded with, to find where the age
// goes: no age served is so small but not zero.
const ageMark = 1e-300

var (
	ageField    = []byte(`"age_seconds":`)
	ageMarkJSON = []byte(`"age_seconds":1e-300`)
)

// cutAge splits body, the results encoded with their age at ageMark,
// into what comes before the age's value and what after. ok is false if
// body has no age.
func cutAge(body []byte) (head, tail []byte, ok bool) {
	// The first: the results' own field comes before any nested object.
	i := bytes.Index(body, ageMarkJSON)
	if i < 0 {
		return body, nil, false
	}
	return body[:i+len(ageField)], body[i+len(ageMarkJSON):], true
}

// edition is a frame served at an age.
type edition struct {
	f      *frame
	tenths int64  // the age in tenths of a second, -1 if the results have none
	age    []byte // its text in the JSON

	event, gzEvent         piece // the frame as an event, plain and in a gzip stream
	keepAlive, gzKeepAlive piece // a keep-alive that carries the age

	gzAge            deflated // the age as a deflate block, for /results gzipped
	gzTrailer        []byte   // the end of /results gzipped: final block, CRC-32, length
	etag, gzTag      string   // of /results, plain and gzipped
	length, gzLength int      // of /results, plain and gzipped
}

// at is f's edition for the time now, made if need be.
func (f *frame) at(now time.Time) *edition {
	tenths := int64(-1)
	if !f.asOf.IsZero() {
		tenths = max(int64(math.Round(now.Sub(f.asOf).Seconds()*10)), 0)
	}
	if ed := f.ed.Load(); ed != nil && ed.tenths == tenths {
		return ed
	}
	ed := f.edition(tenths)
	f.ed.Store(ed) // two made at once are the same
	return ed
}

func (f *frame) edition(tenths int64) *edition {
	ed := &edition{f: f, tenths: tenths, etag: f.etag}
	keepAlive := keepAliveText
	if tenths >= 0 {
		ed.age = strconv.AppendFloat(nil, float64(tenths)/10, 'f', -1, 64)
		keepAlive = ": keep-alive\nevent: age\ndata: {\"age_seconds\":" + string(ed.age) + "}\n\n"
		// Weak, naming the age to the second: a client revalidating within
		// it keeps a body at most a second younger (and the tag changes
		// about once a second, as it did with the frames alone).
		ed.etag = "W/" + strings.TrimSuffix(f.etag, `"`) + "-" + strconv.FormatInt(tenths/10, 10) + `"`
	}
	ed.gzTag = strings.TrimSuffix(ed.etag, `"`) + `-gzip"`
	ed.keepAlive = newPiece([]byte(keepAlive), nil)
	ka := stored([]byte(keepAlive))
	ed.gzKeepAlive = pieceOf(ka.data, ka.sum)

	var event []byte
	event = append(event, f.idLine...)
	event = append(event, f.head...)
	event = append(event, ed.age...)
	event = append(event, f.tail...)
	event = append(event, "\n\n"...)
	ed.event = newPiece(event, nil)
	ed.gzAge = stored(ed.age)
	gz := join(f.gzID, f.gzHead, ed.gzAge, f.gzTail, twoNewlines)
	ed.gzEvent = pieceOf(gz.data, gz.sum)

	ed.length = len(f.head) + len(ed.age) + len(f.tail) + 1
	json := f.gzHead.sum.then(ed.gzAge.sum).then(f.gzTail.sum).then(newline.sum)
	ed.gzTrailer = binary.LittleEndian.AppendUint32(append([]byte(nil), finalBlock...), json.crc)
	ed.gzTrailer = binary.LittleEndian.AppendUint32(ed.gzTrailer, json.size)
	ed.gzLength = len(gzipHeader) + len(f.gzHead.data) + len(ed.gzAge.data) + len(f.gzTail.data) +
		len(newline.data) + len(ed.gzTrailer)
	return ed
}

// writeJSON writes the results as /results serves them, plainly.
func (ed *edition) writeJSON(w interface{ Write([]byte) (int, error) }) {
	for _, b := range [][]byte{ed.f.head, ed.age, ed.f.tail, {'\n'}} {
		w.Write(b)
	}
}

// writeGzip writes the results as /results serves them gzipped: the
// frame's blocks compressed once, the age's stored around them.
func (ed *edition) writeGzip(w interface{ Write([]byte) (int, error) }) {
	for _, b := range [][]byte{gzipHeader, ed.f.gzHead.data, ed.gzAge.data, ed.f.gzTail.data, newline.data, ed.gzTrailer} {
		w.Write(b)
	}
}

// gzipHeader begins a gzip stream: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// finalBlock ends a deflate stream: an empty stored block, the last.
var finalBlock = []byte{1, 0, 0, 0xff, 0xff}

var (
	newline     = stored([]byte("\n"))
	twoNewlines = stored([]byte("\n\n"))
)

// deflated is text as deflate blocks that refer to nothing before them
// and end on a byte boundary, not final: any sequence of them is the
// deflate stream of their texts in order. sum is the text's.
type deflated struct {
	data []byte
	sum  textSum
}

// compress is text compressed as a deflated.
func compress(text []byte) deflated {
	return deflated{data: deflateAlone(text), sum: sumOf(text)}
}

// stored is text as stored blocks, for a text too short to compress,
// then an empty one, as a sync flush ends: some readers (Go's) hand out
// what they inflated only there.
func stored(text []byte) deflated {
	d := deflated{sum: sumOf(text)}
	for len(text) > 0 {
		n := min(len(text), math.MaxUint16)
		d.data = append(d.data, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		d.data = append(d.data, text[:n]...)
		text = text[n:]
	}
	d.data = append(d.data, 0, 0, 0, 0xff, 0xff)
	return d
}

// join is parts one after the other.
func join(parts ...deflated) deflated {
	n := 0
	for _, p := range parts {
		n += len(p.data)
	}
	d := deflated{data: make([]byte, 0, n), sum: sumOf(nil)}
	for _, p := range parts {
		d.data = append(d.data, p.data...)
		d.sum = d.sum.then(p.sum)
	}
	return d
}
