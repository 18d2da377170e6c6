package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/e2e"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestFilesResumeOtherBatchSize stops a run at 50 votes per batch after
// about 20 files, then resumes at 100 per batch: every vote of the election
// must be in exactly one file, the files' votes the generator's cell by
// cell, and the topic's too.
func TestFilesResumeOtherBatchSize(t *testing.T) {
	const seed, scale, partitions = 5, 0.00005, 3
	addr, topic, base := testTopic(t, partitions)
	dir := t.TempDir()
	environ := append(base, "SEED=5", "SCALE=0.00005", "OUTPUT_DIR="+dir)
	want, err := votegen.TrueTotals(votegen.Config{Seed: seed, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append(environ, "VOTES_PER_BATCH=50", "BATCH_INTERVAL=10ms"), io.Discard, io.Discard)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n < 20; n = countFiles(t, dir) {
		if time.Now().After(deadline) {
			t.Fatalf("%d files after 30s, want 20", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, errIncomplete) {
		t.Fatalf("first run: %v, want it stopped midway", err)
	}
	first := countFiles(t, dir)

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, append(environ, "VOTES_PER_BATCH=100", "BATCH_INTERVAL=0"), io.Discard, &out); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	got, files, err := e2e.ReadVoteFiles(dir) // fails on a vote twice
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Diff(&want, 5); len(d) > 0 || got.Total() != want.Total() {
		t.Errorf("%d files hold %d votes, want %d; wrong cells: %+v", files, got.Total(), want.Total(), d)
	}
	if t.Failed() {
		t.Log(out.String())
	}
	t.Logf("first run: %d files of 50, then %d files in all for %d votes", first, files, want.Total())
	inTopic := readTopic(t, addr, topic, partitions, nil)
	if d := inTopic.Diff(&want, 5); len(d) > 0 || inTopic.Total() != want.Total() {
		t.Errorf("topic holds %d votes, want %d; wrong cells: %+v", inTopic.Total(), want.Total(), d)
	}
}

// TestFilesOfAnotherElection starts a run whose OUTPUT_DIR holds another
// election's files, or files named by batch number: it writes no file,
// says why in one line, and publishes the election all the same.
func TestFilesOfAnotherElection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string, environ []string)
	}{
		{"another seed", func(t *testing.T, dir string, environ []string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := run(ctx, append(environ, "SEED=6", "OUTPUT_DIR="+dir), io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
		}},
		{"named by batch", func(t *testing.T, dir string, _ []string) {
			if err := os.WriteFile(filepath.Join(dir, "votes_0.json"), []byte("[]"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, base := testTopic(t, 2)
			dir := t.TempDir()
			environ := append(base, "SCALE=0.00002", "BATCH_INTERVAL=0")
			tc.setup(t, dir, environ)
			before := listFiles(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out strings.Builder
			if err := run(ctx, append(environ, "SEED=5", "OUTPUT_DIR="+dir), io.Discard, &out); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out.String(), errForeignFiles.Error()); n != 1 {
				t.Errorf("the run said %d times that OUTPUT_DIR holds other files, want once:\n%s", n, out.String())
			}
			if after := listFiles(t, dir); after != before {
				t.Errorf("the files changed from\n%s\nto\n%s", before, after)
			}
		})
	}
}

// TestFilesWriteAroundHeld writes batches over files an earlier run left:
// only the votes no file holds are written, one file per run of them.
func TestFilesWriteAroundHeld(t *testing.T) {
	dir := t.TempDir()
	f := &fileDrop{dir: dir, election: "e", log: slog.New(slog.DiscardHandler), errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
	votes := make([]vote.Vote, 300)
	for i := range votes {
		votes[i].ID = uuid.New()
	}
	if err := f.init(); err != nil {
		t.Fatal(err)
	}
	f.write(0, votes[0:50])
	f.write(50, votes[50:100])
	f.write(150, votes[150:200])
	g := &fileDrop{dir: dir, election: "e", log: f.log, errors: f.errors}
	if err := g.init(); err != nil {
		t.Fatal(err)
	}
	g.write(0, votes[0:120])
	g.write(120, votes[120:300])
	g.write(280, votes[280:300])
	want := "votes_0-49.json votes_100-119.json votes_120-149.json votes_150-199.json votes_200-299.json votes_50-99.json"
	m, _ := filepath.Glob(filepath.Join(dir, "votes_*.json"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	if got := strings.Join(m, " "); got != want {
		t.Errorf("files %s, want %s", got, want)
	}
	if _, n, err := e2e.ReadVoteFiles(dir); err != nil || n != 6 {
		t.Errorf("ReadVoteFiles: %d files, %v", n, err)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "votes_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// listFiles names every file of dir with its size and time.
func listFiles(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Name() + " " + info.ModTime().String() + "\n")
	}
	return b.String()
}
