package vote_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/vote"
)

// seedRecord is a vote as the seed's generator writes it (one element of
// its json.dump list), with Python's separators and isoformat timestamp.
const seedRecord = `{"vote_id": "0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f", "timestamp": "2024-11-05T20:15:30.123456", "state": "Alabama", "candidate": "Kamala Harris", "age_group": "26-40", "vote_count": 1}`

// seedVote is seedRecord decoded.
var seedVote = vote.Vote{
	ID:        [16]byte{0x0b, 0x6d, 0x1f, 0x2e, 0x3c, 0x4a, 0x4b, 0x5d, 0x8e, 0x6f, 0x7a, 0x8b, 0x9c, 0x0d, 0x1e, 0x2f},
	Time:      time.Date(2024, 11, 5, 20, 15, 30, 123456000, time.UTC).UnixMicro(),
	State:     0,
	Candidate: 1,
	AgeGroup:  1,
}

// seedFields is the seed's schema as encoding/json sees it.
type seedFields struct {
	VoteID    string `json:"vote_id"`
	Timestamp string `json:"timestamp"`
	State     string `json:"state"`
	Candidate string `json:"candidate"`
	AgeGroup  string `json:"age_group"`
	VoteCount int    `json:"vote_count"`
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// decodeReason returns the reason Decode rejects data for, or ReasonNone.
// sharedDecoder has seen other records, so its timestamp cache is in play
// when decodeReason checks that it agrees with Decode.
var sharedDecoder vote.Decoder

func decodeReason(t testing.TB, data []byte, v *vote.Vote) vote.Reason {
	t.Helper()
	err := vote.Decode(data, v)
	var dv vote.Vote
	if derr := sharedDecoder.Decode(data, &dv); fmt.Sprint(derr) != fmt.Sprint(err) || (err == nil && dv != *v) {
		t.Errorf("Decoder.Decode(%q) = %+v, %v; Decode = %+v, %v", data, dv, derr, *v, err)
	}
	if err == nil {
		return vote.ReasonNone
	}
	var de *vote.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode(%q) error %v (%T) is not a *DecodeError", data, err, err)
	}
	if de.Reason == vote.ReasonNone {
		t.Fatalf("Decode(%q) returned a DecodeError with ReasonNone", data)
	}
	if de.Offset < 0 || de.Offset > len(data) {
		t.Errorf("Decode(%q) error offset %d outside the record (length %d)", data, de.Offset, len(data))
	}
	return de.Reason
}

func TestEncodeSchema(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	encoders := []struct {
		name   string
		append func([]byte, *vote.Vote) []byte
	}{
		{"AppendJSON", vote.AppendJSON},
		{"AppendFileJSON", vote.AppendFileJSON},
	}
	for _, enc := range encoders {
		t.Run(enc.name, func(t *testing.T) {
			for range 2000 {
				v := randomVote(r)
				data := enc.append(nil, &v)

				// The seed's six fields, with their JSON types.
				var raw map[string]any
				if err := json.Unmarshal(data, &raw); err != nil {
					t.Fatalf("%s output %q is not JSON: %v", enc.name, data, err)
				}
				if len(raw) != 6 {
					t.Errorf("%q has %d fields, want 6", data, len(raw))
				}
				for _, f := range []string{"vote_id", "timestamp", "state", "candidate", "age_group"} {
					if _, ok := raw[f].(string); !ok {
						t.Errorf("%q: %s is %T, want string", data, f, raw[f])
					}
				}
				if n, ok := raw["vote_count"].(float64); !ok || n != 1 {
					t.Errorf("%q: vote_count is %T %v, want number 1", data, raw["vote_count"], raw["vote_count"])
				}

				var got seedFields
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("%q does not fit the seed's schema: %v", data, err)
				}
				want := seedFields{
					VoteID:    string(vote.AppendID(nil, &v.ID)),
					Timestamp: time.UnixMicro(v.Time).UTC().Format(isoMicroUTC),
					State:     v.State.String(),
					Candidate: v.Candidate.String(),
					AgeGroup:  v.AgeGroup.String(),
					VoteCount: 1,
				}
				if got != want {
					t.Errorf("%q decodes to %+v, want %+v", data, got, want)
				}
				if !uuidV4.MatchString(got.VoteID) {
					t.Errorf("vote_id %q is not a canonical v4 UUID", got.VoteID)
				}

				var back vote.Vote
				if err := vote.Decode(data, &back); err != nil {
					t.Fatalf("Decode(%q): %v", data, err)
				}
				if back != v {
					t.Errorf("Decode(%s(v)) = %+v, want %+v", enc.name, back, v)
				}
			}
		})
	}
}

// TestEncodeFormat pins the exact bytes: compact for Kafka, Python's
// json.dump separators for files.
func TestEncodeFormat(t *testing.T) {
	v := seedVote
	v.Time = time.Date(2024, 11, 5, 20, 15, 30, 123456000, time.UTC).UnixMicro()
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"AppendJSON", vote.AppendJSON(nil, &v),
			`{"vote_id":"0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f","timestamp":"2024-11-05T20:15:30.123456Z","state":"Alabama","candidate":"Kamala Harris","age_group":"26-40","vote_count":1}`},
		{"AppendFileJSON", vote.AppendFileJSON(nil, &v),
			`{"vote_id": "0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f", "timestamp": "2024-11-05T20:15:30.123456Z", "state": "Alabama", "candidate": "Kamala Harris", "age_group": "26-40", "vote_count": 1}`},
		{"AppendJSON appends", vote.AppendJSON([]byte("x"), &v)[:2], `x{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}

	// json.dump's separators: every ", " and ": " outside strings, never
	// a bare "," or ":".
	file := vote.AppendFileJSON(nil, &v)
	var compact bytes.Buffer
	if err := json.Compact(&compact, file); err != nil {
		t.Fatal(err)
	}
	spaced := strings.NewReplacer(`","`, `", "`, `":"`, `": "`, `":1}`, `": 1}`).Replace(compact.String())
	if string(file) != spaced {
		t.Errorf("AppendFileJSON = %s, want json.dump's separators: %s", file, spaced)
	}
}

func TestDecodeAccepts(t *testing.T) {
	base := map[string]string{
		"vote_id":    `"0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f"`,
		"timestamp":  `"2024-11-05T20:15:30.123456"`,
		"state":      `"Alabama"`,
		"candidate":  `"Kamala Harris"`,
		"age_group":  `"26-40"`,
		"vote_count": `1`,
	}
	withTime := func(us int64) vote.Vote { v := seedVote; v.Time = us; return v }
	tests := []struct {
		name string
		in   string
		want vote.Vote
	}{
		{"seed record", seedRecord, seedVote},
		{"compact", strings.NewReplacer(`": `, `":`, `, "`, `,"`).Replace(seedRecord), seedVote},
		{"reversed order", object(base, "vote_count", "age_group", "candidate", "state", "timestamp", "vote_id"), seedVote},
		{"shuffled order", object(base, "state", "vote_count", "vote_id", "age_group", "timestamp", "candidate"), seedVote},
		{"white space everywhere", " \t\r\n{ \"vote_id\" :\n\"0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f\"\t,\"timestamp\"\r:\"2024-11-05T20:15:30.123456\" , \"state\" : \"Alabama\" , \"candidate\":\"Kamala Harris\",\"age_group\":\"26-40\",\"vote_count\":1 }\n\n", seedVote},
		{"escaped state", replace(seedRecord, `"Alabama"`, `"Alab\u0061ma"`), seedVote},
		{"escaped first letter", replace(seedRecord, `"Alabama"`, `"\u0041labama"`), seedVote},
		{"escaped candidate", replace(seedRecord, `"Kamala Harris"`, `"Kamala\u0020Harris"`), seedVote},
		{"escaped solidus", replace(seedRecord, `"26-40"`, `"26\u002d40"`), seedVote},
		{"escaped key", replace(seedRecord, `"vote_count"`, `"vote\u005fcount"`), seedVote},
		{"escaped uuid", replace(seedRecord, `"0b6d`, `"\u0030b6d`), seedVote},
		{"upper-case uuid", replace(seedRecord, `0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f`, `0B6D1F2E-3C4A-4B5D-8E6F-7A8B9C0D1E2F`), seedVote},
		{"time no fraction", replace(seedRecord, `.123456"`, `"`), withTime(seedVote.Time - 123456)},
		{"time Z", replace(seedRecord, `.123456"`, `.123456Z"`), seedVote},
		{"time +02:00", replace(seedRecord, `.123456"`, `.123456+02:00"`), withTime(seedVote.Time - 2*3600e6)},
		{"time -05:30 no fraction", replace(seedRecord, `.123456"`, `-05:30"`), withTime(seedVote.Time - 123456 + 5.5*3600e6)},
		{"time nanoseconds", replace(seedRecord, `.123456"`, `.123456789Z"`), seedVote},
		{"time milliseconds", replace(seedRecord, `.123456"`, `.123"`), withTime(seedVote.Time - 456)},
		{"DC", replace(seedRecord, `"Alabama"`, `"District of Columbia"`), func() vote.Vote { v := seedVote; v.State = vote.NumStates - 1; return v }()},
		{"Wyoming, last of the sorted", replace(seedRecord, `"Alabama"`, `"Wyoming"`), func() vote.Vote { v := seedVote; v.State = vote.NumStates - 2; return v }()},
		{"exactly MaxRecordSize", seedRecord + strings.Repeat(" ", vote.MaxRecordSize-len(seedRecord)), seedVote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got vote.Vote
			if err := vote.Decode([]byte(tt.in), &got); err != nil {
				t.Fatalf("Decode(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Decode(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if !json.Valid([]byte(tt.in)) {
				t.Errorf("test case %q is not valid JSON", tt.in)
			}
		})
	}
}

// object builds a JSON object from fields in the given order.
func object(fields map[string]string, order ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + k + `":` + fields[k])
	}
	b.WriteByte('}')
	return b.String()
}

// replace replaces the one occurrence of old in s; it panics if there is
// not exactly one, so a test case cannot silently test the seed record.
func replace(s, old, new string) string {
	if strings.Count(s, old) != 1 {
		panic("replace: " + old + " is not in " + s + " exactly once")
	}
	return strings.Replace(s, old, new, 1)
}

// decodeRejectCases are records Decode must reject, with the reason. The
// fuzz seed corpus is built from them too.
func decodeRejectCases() []struct {
	name string
	in   string
	want vote.Reason
} {
	field := func(name, value string) string {
		i := strings.Index(seedRecord, `"`+name+`": `)
		if i < 0 {
			panic(name)
		}
		j := i + len(name) + 4
		k := strings.IndexAny(seedRecord[j:], ",}")
		if seedRecord[j] == '"' {
			k = strings.IndexByte(seedRecord[j+1:], '"') + 2
		}
		return seedRecord[:j] + value + seedRecord[j+k:]
	}
	return []struct {
		name string
		in   string
		want vote.Reason
	}{
		{"empty", "", vote.ReasonEmpty},
		{"oversized", seedRecord + strings.Repeat(" ", vote.MaxRecordSize-len(seedRecord)+1), vote.ReasonOversized},
		{"oversized garbage", strings.Repeat("x", 1<<20), vote.ReasonOversized},
		{"white space only", " \n\t", vote.ReasonJSON},
		{"not json", "hello", vote.ReasonJSON},
		{"open brace", "{", vote.ReasonJSON},
		{"close brace", "}", vote.ReasonJSON},
		{"missing colon", `{"vote_id" "x"}`, vote.ReasonJSON},
		{"missing comma", replace(seedRecord, `", "state"`, `" "state"`), vote.ReasonJSON},
		{"trailing comma", replace(seedRecord, `1}`, `1,}`), vote.ReasonJSON},
		{"leading comma", replace(seedRecord, `{"vote_id"`, `{,"vote_id"`), vote.ReasonJSON},
		{"single quotes", strings.ReplaceAll(seedRecord, `"`, `'`), vote.ReasonJSON},
		{"unquoted key", replace(seedRecord, `"state":`, `state:`), vote.ReasonJSON},
		{"control char in string", replace(seedRecord, `Alabama`, "Ala\tbama"), vote.ReasonJSON},
		{"bad escape", replace(seedRecord, `Alabama`, `Ala\xbama`), vote.ReasonJSON},
		{"short unicode escape", replace(seedRecord, `Alabama`, `Ala\u61zz`), vote.ReasonJSON},
		{"unterminated string", `{"vote_id":"abc`, vote.ReasonJSON},
		{"escaped closing quote", `{"vote_id":"abc\"}`, vote.ReasonJSON},
		{"truncated", seedRecord[:len(seedRecord)-1], vote.ReasonJSON},
		{"truncated in number", seedRecord[:len(seedRecord)-1] + "-", vote.ReasonJSON},
		{"trailing garbage", seedRecord + "x", vote.ReasonJSON},
		{"trailing brace", seedRecord + "}", vote.ReasonJSON},
		{"two records", seedRecord + seedRecord, vote.ReasonJSON},
		{"two records newline", seedRecord + "\n" + seedRecord, vote.ReasonJSON},
		{"trailing NUL", seedRecord + "\x00", vote.ReasonJSON},
		{"trailing space NUL", seedRecord + " \x00", vote.ReasonJSON},
		{"leading NUL", "\x00" + seedRecord, vote.ReasonJSON},
		{"BOM", "\xef\xbb\xbf" + seedRecord, vote.ReasonJSON},
		{"array of the record", "[" + seedRecord + "]", vote.ReasonType},
		{"array", "[]", vote.ReasonType},
		{"string", `"vote"`, vote.ReasonType},
		{"number", "1", vote.ReasonType},
		{"null", "null", vote.ReasonType},
		{"true", " true ", vote.ReasonType},
		{"array then garbage", "[1] x", vote.ReasonJSON},
		{"string then garbage", `"a"b`, vote.ReasonJSON},
		{"number then NUL", "1\x00", vote.ReasonJSON},
		{"bad literal", "nul", vote.ReasonJSON},
		{"bad array", "[1,]", vote.ReasonJSON},
		{"empty object", "{}", vote.ReasonField},
		{"missing vote_count", replace(seedRecord, `, "vote_count": 1`, ``), vote.ReasonField},
		{"missing vote_id", replace(seedRecord, `"vote_id": "0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f", `, ``), vote.ReasonField},
		{"unknown field", replace(seedRecord, `1}`, `1, "extra": 1}`), vote.ReasonField},
		{"unknown field object", replace(seedRecord, `1}`, `1, "extra": {"a": [1, 2, {"b": null}]}}`), vote.ReasonField},
		{"unknown field instead", replace(seedRecord, `"age_group"`, `"age"`), vote.ReasonField},
		{"field case", replace(seedRecord, `"state"`, `"State"`), vote.ReasonField},
		{"duplicate field", replace(seedRecord, `1}`, `1, "state": "Alabama"}`), vote.ReasonField},
		{"duplicate vote_count", replace(seedRecord, `1}`, `1, "vote_count": 1}`), vote.ReasonField},
		{"unknown field truncated", replace(seedRecord, `1}`, `1, "extra": [1, 2}`), vote.ReasonJSON},
		{"vote_id number", field("vote_id", `123`), vote.ReasonType},
		{"timestamp number", field("timestamp", `1730837730`), vote.ReasonType},
		{"state null", field("state", `null`), vote.ReasonType},
		{"candidate array", field("candidate", `["Kamala Harris"]`), vote.ReasonType},
		{"age_group object", field("age_group", `{}`), vote.ReasonType},
		{"age_group number", field("age_group", `26`), vote.ReasonType},
		{"vote_count string", field("vote_count", `"1"`), vote.ReasonType},
		{"vote_count null", field("vote_count", `null`), vote.ReasonType},
		{"vote_count true", field("vote_count", `true`), vote.ReasonType},
		{"vote_count array", field("vote_count", `[1]`), vote.ReasonType},
		{"vote_count 0", field("vote_count", `0`), vote.ReasonVoteCount},
		{"vote_count 2", field("vote_count", `2`), vote.ReasonVoteCount},
		{"vote_count 1.0", field("vote_count", `1.0`), vote.ReasonVoteCount},
		{"vote_count -1", field("vote_count", `-1`), vote.ReasonVoteCount},
		{"vote_count 1e0", field("vote_count", `1e0`), vote.ReasonVoteCount},
		{"vote_count 10", field("vote_count", `10`), vote.ReasonVoteCount},
		{"vote_count 01", field("vote_count", `01`), vote.ReasonJSON},
		{"vote_count +1", field("vote_count", `+1`), vote.ReasonJSON},
		{"vote_count 1.", field("vote_count", `1.`), vote.ReasonJSON},
		{"vote_count -", field("vote_count", `-`), vote.ReasonJSON},
		{"vote_count missing value", field("vote_count", ``), vote.ReasonJSON},
		{"unknown state", field("state", `"Atlantis"`), vote.ReasonState},
		{"state lower case", field("state", `"alabama"`), vote.ReasonState},
		{"state code", field("state", `"AL"`), vote.ReasonState},
		{"state empty", field("state", `""`), vote.ReasonState},
		{"state padded", field("state", `" Alabama"`), vote.ReasonState},
		{"unknown candidate", field("candidate", `"Bob"`), vote.ReasonCandidate},
		{"candidate empty", field("candidate", `""`), vote.ReasonCandidate},
		{"unknown age group", field("age_group", `"17-"`), vote.ReasonAgeGroup},
		{"age group 60", field("age_group", `"60"`), vote.ReasonAgeGroup},
		{"uuid empty", field("vote_id", `""`), vote.ReasonVoteID},
		{"uuid words", field("vote_id", `"not-a-uuid"`), vote.ReasonVoteID},
		{"uuid short", field("vote_id", `"0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2"`), vote.ReasonVoteID},
		{"uuid long", field("vote_id", `"0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f0"`), vote.ReasonVoteID},
		{"uuid bad hex", field("vote_id", `"0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2g"`), vote.ReasonVoteID},
		{"uuid no dashes", field("vote_id", `"0b6d1f2e3c4a4b5d8e6f7a8b9c0d1e2f"`), vote.ReasonVoteID},
		{"uuid dash moved", field("vote_id", `"0b6d1f2-e3c4a-4b5d-8e6f-7a8b9c0d1e2f"`), vote.ReasonVoteID},
		{"uuid braces", field("vote_id", `"{0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f}"`), vote.ReasonVoteID},
		{"uuid urn", field("vote_id", `"urn:uuid:0b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f"`), vote.ReasonVoteID},
		{"uuid sign", field("vote_id", `"+b6d1f2e-3c4a-4b5d-8e6f-7a8b9c0d1e2f"`), vote.ReasonVoteID},
		{"timestamp month 13", field("timestamp", `"2024-13-05T20:15:30.123456"`), vote.ReasonTimestamp},
		{"timestamp Feb 30", field("timestamp", `"2024-02-30T20:15:30"`), vote.ReasonTimestamp},
		{"timestamp missing T", field("timestamp", `"2024-11-05 20:15:30.123456"`), vote.ReasonTimestamp},
		{"timestamp bad zone", field("timestamp", `"2024-11-05T20:15:30+25:00"`), vote.ReasonTimestamp},
		{"timestamp zone name", field("timestamp", `"2024-11-05T20:15:30 UTC"`), vote.ReasonTimestamp},
		{"timestamp date only", field("timestamp", `"2024-11-05"`), vote.ReasonTimestamp},
		{"timestamp empty", field("timestamp", `""`), vote.ReasonTimestamp},
		{"timestamp year 10000", field("timestamp", `"9999-12-31T23:59:59-01:00"`), vote.ReasonTimestamp},
		// Malformed JSON is reported before a bad value.
		{"bad state then truncated", field("state", `"Atlantis"`)[:len(seedRecord)-1], vote.ReasonJSON},
		{"bad state then garbage", field("state", `"Atlantis"`) + "x", vote.ReasonJSON},
		{"unknown field then truncated", `{"extra": 1, "state": "Alabama"`, vote.ReasonJSON},
		// The first bad value is reported.
		{"bad state and candidate", replace(field("candidate", `"Bob"`), `"Alabama"`, `"Atlantis"`), vote.ReasonState},
		{"unknown field before bad value", replace(field("vote_count", `2`), `{`, `{"extra": 0, `), vote.ReasonField},
		{"bad value before missing field", replace(field("state", `"Atlantis"`), `, "vote_count": 1`, ``), vote.ReasonState},
		{"deep nesting", replace(seedRecord, `1}`, `1, "x": `+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`), vote.ReasonJSON},
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tt := range decodeRejectCases() {
		t.Run(tt.name, func(t *testing.T) {
			var v vote.Vote
			got := decodeReason(t, []byte(tt.in), &v)
			if got != tt.want {
				t.Errorf("Decode(%.120q) reason = %v, want %v", tt.in, got, tt.want)
			}
			if valid := json.Valid([]byte(tt.in)); !valid && got != vote.ReasonJSON && got != vote.ReasonEmpty && got != vote.ReasonOversized {
				t.Errorf("Decode(%.120q) reason = %v for invalid JSON, want json", tt.in, got)
			}
		})
	}
}

func TestDecodeTruncatedAtEveryLength(t *testing.T) {
	for _, rec := range []string{seedRecord, string(vote.AppendJSON(nil, &seedVote)), " " + seedRecord + " "} {
		// A record that ends in white space is still whole without it.
		whole := len(strings.TrimRight(rec, " "))
		for n := range whole {
			var v vote.Vote
			want := vote.ReasonJSON
			if n == 0 {
				want = vote.ReasonEmpty
			}
			if got := decodeReason(t, []byte(rec[:n]), &v); got != want {
				t.Errorf("Decode(%q) reason = %v, want %v", rec[:n], got, want)
			}
		}
	}
}

func TestDecodeErrorOffset(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason vote.Reason
		offset int
	}{
		{"bad state", replace(seedRecord, "Alabama", "Atlantis"), vote.ReasonState, strings.Index(seedRecord, `"Alabama"`)},
		{"vote_count 2", replace(seedRecord, ": 1}", ": 2}"), vote.ReasonVoteCount, len(seedRecord) - 2},
		{"unknown field", replace(seedRecord, "1}", `1, "x": [1]}`), vote.ReasonField, len(seedRecord) + 6},
		{"missing field", replace(seedRecord, `, "vote_count": 1`, ``), vote.ReasonField, len(seedRecord) - len(`, "vote_count": 1`)},
		{"unterminated string", seedRecord[:20], vote.ReasonJSON, strings.Index(seedRecord, `"0b6d`)},
		{"truncated after a value", seedRecord[:len(seedRecord)-1], vote.ReasonJSON, len(seedRecord) - 1},
		{"oversized", strings.Repeat(" ", vote.MaxRecordSize+1), vote.ReasonOversized, vote.MaxRecordSize},
		{"empty", "", vote.ReasonEmpty, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v vote.Vote
			err := vote.Decode([]byte(tt.in), &v)
			var de *vote.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if de.Reason != tt.reason || de.Offset != tt.offset {
				t.Errorf("Decode(%.80q) = %v at %d, want %v at %d", tt.in, de.Reason, de.Offset, tt.reason, tt.offset)
			}
			if got, want := err.Error(), "invalid vote: "+tt.reason.String()+" (at byte "; !strings.HasPrefix(got, want) {
				t.Errorf("Error() = %q, want prefix %q", got, want)
			}
		})
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]vote.Reason{}
	for r := range vote.NumReasons {
		name := r.String()
		if name == "" || strings.ContainsAny(name, " ()") {
			t.Errorf("Reason(%d).String() = %q, want a metric label", r, name)
		}
		if prev, ok := seen[name]; ok {
			t.Errorf("reasons %d and %d are both named %q", prev, r, name)
		}
		seen[name] = r
	}
	if got := vote.ReasonNone.String(); got != "none" {
		t.Errorf("ReasonNone = %q, want none", got)
	}
}

// TestDecodeDifferential mutates valid records at random and checks Decode
// against encoding/json: what encoding/json rejects Decode rejects as json,
// and what Decode accepts encoding/json reads as the same six fields.
func TestDecodeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	var corpus [][]byte
	for range 20 {
		v := randomVote(r)
		corpus = append(corpus, vote.AppendJSON(nil, &v), vote.AppendFileJSON(nil, &v))
	}
	corpus = append(corpus, []byte(seedRecord))
	for _, c := range decodeRejectCases() {
		if len(c.in) <= vote.MaxRecordSize {
			corpus = append(corpus, []byte(c.in))
		}
	}
	n := 30000
	if testing.Short() {
		n = 3000
	}
	var invalid, accepted int
	for i := range n {
		data := mutate(r, corpus[i%len(corpus)])
		checkAgainstEncodingJSON(t, data)
		if !json.Valid(data) {
			invalid++
		}
		var v vote.Vote
		if vote.Decode(data, &v) == nil {
			accepted++
		}
	}
	t.Logf("%d mutated records: %d invalid JSON, %d accepted", n, invalid, accepted)
	if invalid < n/4 {
		t.Errorf("only %d of %d mutations are invalid JSON: the corpus tests little", invalid, n)
	}
}

// checkAgainstEncodingJSON checks Decode against encoding/json on one input;
// the fuzz target shares it.
func checkAgainstEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	var v vote.Vote
	reason := decodeReason(t, data, &v)
	valid := json.Valid(data)
	switch {
	case len(data) == 0:
		if reason != vote.ReasonEmpty {
			t.Fatalf("Decode(%q) reason = %v, want empty", data, reason)
		}
	case len(data) > vote.MaxRecordSize:
		if reason != vote.ReasonOversized {
			t.Fatalf("Decode(%.100q...) reason = %v, want oversized", data, reason)
		}
	case !valid:
		if reason != vote.ReasonJSON {
			t.Fatalf("Decode(%q) reason = %v, but encoding/json rejects it: want json", data, reason)
		}
	case reason == vote.ReasonJSON:
		// Valid JSON is rejected as json only for nesting Decode bounds.
		if depth(data) <= 64 {
			t.Fatalf("Decode(%q) reason = json, but encoding/json accepts it", data)
		}
	case reason == vote.ReasonNone:
		var got seedFields
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("Decode accepts %q, encoding/json cannot read the schema: %v", data, err)
		}
		want := seedFields{
			VoteID:    got.VoteID,
			Timestamp: got.Timestamp,
			State:     v.State.String(),
			Candidate: v.Candidate.String(),
			AgeGroup:  v.AgeGroup.String(),
			VoteCount: 1,
		}
		if got != want {
			t.Fatalf("Decode(%q) = %+v; encoding/json reads %+v", data, v, got)
		}
		var id [16]byte
		if !parseIDForTest(got.VoteID, &id) || id != v.ID {
			t.Fatalf("Decode(%q) ID = %x; encoding/json reads vote_id %q", data, v.ID, got.VoteID)
		}
		if ts, ok := vote.ParseTimestamp([]byte(got.Timestamp)); !ok || ts != v.Time {
			t.Fatalf("Decode(%q) Time = %d; encoding/json reads timestamp %q", data, v.Time, got.Timestamp)
		}
	}
}

// depth is the deepest nesting of arrays and objects, ignoring strings.
func depth(data []byte) int {
	d, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			d++
			deepest = max(deepest, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return deepest
}

func parseIDForTest(s string, id *[16]byte) bool {
	if len(s) != 36 {
		return false
	}
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	for i := range id {
		var b byte
		for _, c := range []byte(h[2*i : 2*i+2]) {
			switch {
			case c >= '0' && c <= '9':
				b = b<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				b = b<<4 | (c - 'a' + 10)
			case c >= 'A' && c <= 'F':
				b = b<<4 | (c - 'A' + 10)
			default:
				return false
			}
		}
		id[i] = b
	}
	return true
}

// interesting are bytes that matter to a JSON parser.
var interesting = []byte("{}[]:,\"\\ \t\n\r\x00-+.0123456789eEtrufalsn\x7f\xff\u00e9abcdefABCDEF")

// mutate returns a copy of b with one to three random edits.
func mutate(r *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	for range 1 + r.IntN(3) {
		if len(out) == 0 {
			out = append(out, interesting[r.IntN(len(interesting))])
			continue
		}
		i := r.IntN(len(out))
		switch r.IntN(7) {
		case 0: // delete a byte
			out = append(out[:i], out[i+1:]...)
		case 1: // insert a byte
			out = append(out[:i], append([]byte{interesting[r.IntN(len(interesting))]}, out[i:]...)...)
		case 2: // replace a byte
			out[i] = interesting[r.IntN(len(interesting))]
		case 3: // truncate
			out = out[:i]
		case 4: // duplicate a span
			j := i + r.IntN(len(out)-i+1)
			out = append(out[:j], append(append([]byte(nil), out[i:j]...), out[j:]...)...)
		case 5: // delete a span
			j := i + r.IntN(min(len(out)-i, 12)+1)
			out = append(out[:i], out[j:]...)
		case 6: // flip a bit
			out[i] ^= 1 << r.IntN(8)
		}
	}
	return out
}

// TestEncoderMatchesAppend checks the cached-timestamp Encoder writes the
// same bytes as AppendJSON and AppendFileJSON, in runs of votes sharing a
// time and across changes of time, including a change back.
func TestEncoderMatchesAppend(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	var e vote.Encoder
	times := []int64{1730837730123456, 1730837730123456, 1730837730123457, 0, -1, 1730837730123456}
	for i := range 3000 {
		v := randomVote(r)
		if i%7 != 0 {
			v.Time = times[(i/50)%len(times)]
		}
		if got, want := e.AppendJSON([]byte("x"), &v), vote.AppendJSON([]byte("x"), &v); string(got) != string(want) {
			t.Fatalf("vote %d: Encoder.AppendJSON = %s, want %s", i, got, want)
		}
		if got, want := e.AppendFileJSON(nil, &v), vote.AppendFileJSON(nil, &v); string(got) != string(want) {
			t.Fatalf("vote %d: Encoder.AppendFileJSON = %s, want %s", i, got, want)
		}
	}
}

func TestEncoderDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	votes := make([]vote.Vote, 64)
	for i := range votes {
		votes[i] = randomVote(r)
		votes[i].Time = 1730837730123456 + int64(i/8)
	}
	var e vote.Encoder
	buf := make([]byte, 0, 512)
	buf = e.AppendJSON(buf, &votes[0]) // the first call sizes the cache
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		buf = e.AppendJSON(buf[:0], &votes[i%len(votes)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Encoder.AppendJSON allocates %.1f times per vote, want 0", allocs)
	}
}
