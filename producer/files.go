package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/vote"
)

// fileDrop writes each batch as OUTPUT_DIR/votes_F-L.json in the seed's
// format: one JSON array on one line, as Python's json.dump writes it; F and
// L are the sequence numbers of its first and last vote. Naming files by
// their votes, not by batch number, lets a resumed run with another
// VOTES_PER_BATCH write only the votes no file holds yet: every vote is in
// exactly one file. Each file is written under a hidden temporary name and
// renamed, so Spark's file source, which lists the folder, never reads half
// a file. A file that cannot be written is logged and counted; the Kafka
// stream goes on, since the topic, not the folder, is the system of record.
type fileDrop struct {
	dir      string // empty: disabled
	election string // the election's name, kept in markerName
	log      *slog.Logger
	errors   prometheus.Counter
	buf      []byte
	enc      vote.Encoder

	have   []span // sequence ranges in files, sorted, not overlapping
	marked bool   // markerName names this election
}

// span is the sequence numbers [first, end) of one file.
type span struct{ first, end int64 }

// markerName is a hidden file naming the election whose votes the folder
// holds (Spark's file source skips hidden files), so that a run of another
// election does not take that one's files for its own.
const markerName = ".election"

// errForeignFiles disables the file drop: the folder holds votes this run
// cannot place, and writing beside them would mix elections or repeat votes.
var errForeignFiles = errors.New("OUTPUT_DIR holds vote files of another election, or of a producer that named them by batch number: empty it or set another OUTPUT_DIR")

// init creates the folder and finds which votes its files already hold.
func (f *fileDrop) init() error {
	if f.dir == "" {
		return nil
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		f.errors.Inc()
		return err
	}
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		f.errors.Inc()
		return err
	}
	var other bool
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "votes_") || !strings.HasSuffix(name, ".json") {
			continue
		}
		var s span
		_, err := fmt.Sscanf(name, "votes_%d-%d.json", &s.first, &s.end)
		s.end++ // the name holds the last
		if err != nil || s.first < 0 || s.end <= s.first || name != s.name() {
			other = true
			continue
		}
		f.have = append(f.have, s)
	}
	slices.SortFunc(f.have, func(a, b span) int { return cmp.Compare(a.first, b.first) })
	if b, err := os.ReadFile(filepath.Join(f.dir, markerName)); err == nil && strings.TrimSpace(string(b)) == f.election {
		f.marked = true
	}
	if other || len(f.have) > 0 && !f.marked || overlapping(f.have) {
		f.dir, f.have = "", nil
		return errForeignFiles
	}
	return nil
}

func (s span) name() string { return fmt.Sprintf("votes_%d-%d.json", s.first, s.end-1) }

func overlapping(spans []span) bool {
	for i := 1; i < len(spans); i++ {
		if spans[i].first < spans[i-1].end {
			return true
		}
	}
	return false
}

// write drops the votes with sequence numbers first, first+1, ... that no
// file holds yet, as one file per run of them (one unless an earlier run's
// files cover part of the batch).
func (f *fileDrop) write(first int64, votes []vote.Vote) {
	if f.dir == "" || len(votes) == 0 {
		return
	}
	end := first + int64(len(votes))
	// The first file that ends after first; those before cannot overlap.
	i, _ := slices.BinarySearchFunc(f.have, first, func(s span, seq int64) int {
		if s.end <= seq {
			return -1
		}
		return 1
	})
	for at := first; at < end; {
		next := end // the end of the votes to write from at
		if i < len(f.have) && f.have[i].first <= at {
			at = min(f.have[i].end, end) // held: skip them
			i++
			continue
		}
		if i < len(f.have) {
			next = min(next, f.have[i].first)
		}
		s := span{at, next}
		if f.writeSpan(s, votes[at-first:next-first]) {
			f.have = slices.Insert(f.have, i, s)
			i++
		}
		at = next
	}
}

// writeSpan writes one file and reports whether it is there.
func (f *fileDrop) writeSpan(s span, votes []vote.Vote) bool {
	if !f.marked {
		// Before the first file: a marker that cannot be written goes with
		// a file that cannot be either, logged below.
		f.marked = writeAtomic(f.dir, filepath.Join(f.dir, markerName), []byte(f.election+"\n")) == nil
	}
	b := append(f.buf[:0], '[')
	for i := range votes {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = f.enc.AppendFileJSON(b, &votes[i])
	}
	b = append(b, ']')
	f.buf = b
	path := filepath.Join(f.dir, s.name())
	if err := writeAtomic(f.dir, path, b); err != nil {
		f.errors.Inc()
		f.log.Error("cannot write JSON batch file; the Kafka stream goes on", "file", path, "err", err)
		return false
	}
	return true
}

// writeAtomic writes b to a temporary file in dir, syncs it and renames it
// to path, so readers see the whole file or none.
func writeAtomic(dir, path string, b []byte) error {
	tmp, err := os.CreateTemp(dir, ".votes-*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
