package vote_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/votestream/votestream/pkg/vote"
)

// FuzzDecode checks that Decode never panics, never accepts what
// encoding/json rejects, and that what it accepts survives AppendJSON and
// AppendFileJSON. The seed corpus in testdata/fuzz/FuzzDecode holds valid
// votes and every rejection class of decodeRejectCases; regenerate it with
// go test ./pkg/vote -run TestWriteFuzzCorpus -write-fuzz-corpus.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(seedRecord))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstEncodingJSON(t, data)
		var v vote.Vote
		err := vote.Decode(data, &v)
		// A Decoder that has just read a canonical record, and so holds a
		// timestamp, agrees with Decode.
		var dec vote.Decoder
		var dv vote.Vote
		_ = dec.Decode(vote.AppendJSON(nil, &seedVote), &dv)
		dv = vote.Vote{}
		if derr := dec.Decode(data, &dv); fmt.Sprint(derr) != fmt.Sprint(err) || (err == nil && dv != v) {
			t.Fatalf("Decoder.Decode(%q) = %+v, %v; Decode = %+v, %v", data, dv, derr, v, err)
		}
		if err != nil {
			return
		}
		for _, enc := range []func([]byte, *vote.Vote) []byte{vote.AppendJSON, vote.AppendFileJSON} {
			out := enc(nil, &v)
			var back vote.Vote
			if err := vote.Decode(out, &back); err != nil {
				t.Fatalf("Decode(%q) = %+v, re-encoded as %q which does not decode: %v", data, v, out, err)
			}
			if back != v {
				t.Fatalf("Decode(%q) = %+v, re-encoded as %q which decodes to %+v", data, v, out, back)
			}
		}
	})
}

var writeFuzzCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite the seed corpus in testdata/fuzz/FuzzDecode")

// TestWriteFuzzCorpus writes FuzzDecode's seed corpus when asked to.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeFuzzCorpus {
		t.Skip("run with -write-fuzz-corpus to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		t.Helper()
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unsafe := regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)
	r := rand.New(rand.NewPCG(13, 13))
	for i := range 4 {
		v := randomVote(r)
		write(fmt.Sprintf("valid-compact-%d", i), vote.AppendJSON(nil, &v))
		write(fmt.Sprintf("valid-file-%d", i), vote.AppendFileJSON(nil, &v))
	}
	write("valid-seed-record", []byte(seedRecord))
	write("valid-escaped", []byte(strings.Replace(seedRecord, "Alabama", `Alab\u0061ma`, 1)))
	write("valid-zone", []byte(strings.Replace(seedRecord, `.123456"`, `.123456+02:00"`, 1)))
	for _, c := range decodeRejectCases() {
		if len(c.in) > vote.MaxRecordSize+1 {
			continue
		}
		write("reject-"+unsafe.ReplaceAllString(c.name, "_"), []byte(c.in))
	}
}
