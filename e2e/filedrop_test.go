package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
)

// TestChaosFileDrop gives the producer an OUTPUT_DIR it cannot write: a
// read-only one, and a full one (a tiny tmpfs). The failures must be
// logged and counted in votestream_producer_file_errors_total, the files
// that are written must be whole, and the Kafka stream must go on: the
// counters' totals exact.
func TestChaosFileDrop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		// some: whether a few files fit before the failures start.
		some bool
	}{
		{"read-only", readOnly, false},
		{"full", tinyTmpfs, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := Binaries(t)
			broker := StartBroker(t)
			env := NewEnv(t, broker, 4)
			el := newElection(t, 3007)
			dir := t.TempDir()
			tc.setup(t, dir)
			f := newFleet(t, env)
			f.start("a")
			prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(pick(6*time.Second, 30*time.Second), "OUTPUT_DIR="+dir)...)...)
			addr := prod.MetricsAddr(t)
			// The error is counted while the producer runs.
			var fileErrors float64
			deadline := time.Now().Add(time.Minute)
			for fileErrors == 0 && !prod.Exited() {
				if time.Now().After(deadline) {
					t.Fatal("votestream_producer_file_errors_total still 0 after a minute")
				}
				fileErrors = scrapeValue(addr, "votestream_producer_file_errors_total")
				time.Sleep(50 * time.Millisecond)
			}
			if fileErrors == 0 {
				t.Error("votestream_producer_file_errors_total never rose above 0 while the producer ran")
			}
			waitProducer(t, prod)

			batches := int((el.want.Total() + perBatch() - 1) / perBatch())
			_, files, err := ReadVoteFiles(dir)
			if err != nil {
				t.Fatalf("the files that were written are not whole: %v", err)
			}
			logged := strings.Count(prod.Output(), `msg="cannot write JSON batch file; the Kafka stream goes on"`)
			if files+logged != batches {
				t.Errorf("%d files written and %d failures logged, want %d batches in all", files, logged, batches)
			}
			if tc.some && files == 0 || !tc.some && files != 0 {
				t.Errorf("%d files written", files)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".votes-*"))
			if len(left) > 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
			t.Logf("%s OUTPUT_DIR: %d of %d files written, %d failures logged, file_errors_total reached %v while running", tc.name, files, batches, logged, fileErrors)
			finish(t, f, env, &el.want, chaosRow{Fault: tc.name + " OUTPUT_DIR", Injected: logged,
				RecoveryMeaning: "- (the stream never stops)", recoveryNotMeasure: true,
				ExtraNotes: fmt.Sprintf("%d of %d JSON files written, each failure logged and counted", files, batches)}, nil)
			f.stopAll()
		})
	}
}

// readOnly makes dir read-only even to root: a read-only bind mount, or a
// mode of 0555 for anyone else.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	mount(t, "--bind", dir, dir)
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
}

// tinyTmpfs mounts a tmpfs on dir where two batch files fit (a vote is
// under 200 bytes in the file format), then the disk is full.
func tinyTmpfs(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	size := (2*perBatch()*200 + perBatch()*100) / 1024
	mount(t, "-t", "tmpfs", "-o", fmt.Sprintf("size=%dk", size), "tmpfs", dir)
}

func mount(t *testing.T, args ...string) {
	t.Helper()
	dir := args[len(args)-1]
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("cannot mount (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// scrapeValue reads one unlabelled metric, 0 if absent or unreachable.
func scrapeValue(addr, name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	families, err := testbed.Metrics(ctx, addr)
	if err != nil {
		return 0
	}
	for _, m := range families[name].GetMetric() {
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}
