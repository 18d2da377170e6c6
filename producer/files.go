package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/vote"
)

// fileDrop writes each batch as OUTPUT_DIR/votes_N.json in the seed's
// format: one JSON array on one line, as Python's json.dump writes it. Each
// file is written under a hidden temporary name and renamed, so Spark's file
// source, which lists the folder, never reads half a file. A file that
// cannot be written is logged and counted; the Kafka stream goes on, since
// the topic, not the folder, is the system of record.
type fileDrop struct {
	dir    string // empty: disabled
	log    *slog.Logger
	errors prometheus.Counter
	buf    []byte
	enc    vote.Encoder
}

func (f *fileDrop) init() error {
	if f.dir == "" {
		return nil
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		f.errors.Inc()
		return err
	}
	return nil
}

func (f *fileDrop) path(n int) string { return filepath.Join(f.dir, fmt.Sprintf("votes_%d.json", n)) }

// exists reports whether batch n's file is already there (from a run that
// was interrupted); files are complete or absent, never partial.
func (f *fileDrop) exists(n int) bool {
	if f.dir == "" {
		return true
	}
	_, err := os.Stat(f.path(n))
	return err == nil
}

func (f *fileDrop) write(n int, votes []vote.Vote) {
	if f.dir == "" {
		return
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
	if err := writeAtomic(f.dir, f.path(n), b); err != nil {
		f.errors.Inc()
		f.log.Error("cannot write JSON batch file; the Kafka stream goes on", "file", f.path(n), "err", err)
	}
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
