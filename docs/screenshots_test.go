package docs

import (
	"context"
	"flag"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
)

var (
	screenshots = flag.Bool("screenshots", false, "take the README's screenshots (make screenshots)")
	binDir      = flag.String("bin", "../bin", "where make build put the services")
)

// TestScreenshots takes the pictures of the README, only when asked (make
// screenshots): the local pipeline of make run, through its own script,
// replays ELECTION=2024; once the night passes 9:30 p.m. ET the producer is
// held (SIGSTOP) and headless Chromium shoots the live page, then the last
// table the counter printed, laid out as a terminal shows it. The PNGs go
// to docs/images.
func TestScreenshots(t *testing.T) {
	if !*screenshots {
		t.Skip("make screenshots takes them (-screenshots)")
	}
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		t.Fatal(err)
	}
	images, err := filepath.Abs("images")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../deploy/local/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	b := webtest.Start(t, webtest.Chromium(t))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	addrs, err := testbed.FreeAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	cmd := testbed.Command(script, nil, "BIN="+bin, "BROKER_ADDR="+addrs[0],
		"COUNTER_HTTP_ADDR="+addrs[1], "PRODUCER_HTTP_ADDR="+addrs[2],
		"ELECTION=2024", "INCLUDE_DC=true", "BATCH_INTERVAL=1s")
	cmd.Dir = t.TempDir()
	run, err := testbed.Start("make run", cmd, testbed.Options{Tree: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run.Signal(syscall.SIGINT)
		if err := run.Wait(30 * time.Second); err != nil {
			run.KillTree()
			t.Logf("make run: %v\n%s", err, testbed.Tail(run.Output(), 3000))
		}
	})
	base := "http://" + addrs[1]

	// Midway: hold the producer once the night's clock passes 9:30 p.m. ET.
	midway := time.Date(2024, 11, 6, 2, 30, 0, 0, time.UTC)
	for {
		r, err := webtest.GetResults(ctx, base)
		if err == nil && !r.Night.Clock.Before(midway) {
			break
		}
		if run.Exited() || ctx.Err() != nil {
			t.Fatalf("make run ended or timed out before 9:30 p.m. ET (%v):\n%s", err, testbed.Tail(run.Output(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	producer := child(t, run.Pid(), "producer")
	if err := syscall.Kill(producer, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(producer, syscall.SIGCONT)

	page := b.NewPage(ctx, t)
	page.Viewport(ctx, t, 1200, 800, false)
	page.Navigate(ctx, t, base+"/")
	get := func() results.Results {
		r, err := webtest.GetResults(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	_, r := page.WaitShows(ctx, t, time.Minute, get)
	status := map[results.Status]int{}
	for _, s := range r.States {
		status[s.Status]++
	}
	if status[results.NoVotes] == 0 || status[results.Leading] == 0 || status[results.Called] == 0 {
		t.Fatalf("midway: want states grey, leading and called, got %v", status)
	}
	t.Setenv("SCREENSHOT_DIR", images)
	page.ScreenshotOf(ctx, t, "document.documentElement", 0.75, "live-page-2024-midway.png")
	// The README's picture: the same page without the table of states.
	page.Eval(ctx, t, `document.getElementById("st-title").closest("section").hidden = true`)
	page.ScreenshotOf(ctx, t, "document.documentElement", 0.75, "live-page-2024-midway-top.png")

	table := lastTable(t, run, r.Counted)
	doc := filepath.Join(t.TempDir(), "table.html")
	if err := os.WriteFile(doc, []byte(terminal(table)), 0o644); err != nil {
		t.Fatal(err)
	}
	page.Navigate(ctx, t, "file://"+doc)
	page.ScreenshotOf(ctx, t, `document.querySelector("pre")`, 1, "counter-table-2024-midway.png")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
	}
}

// child is the pid of parent's child named comm.
func child(t *testing.T, parent int, comm string) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", parent))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if name, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(name)) == comm {
				return pid
			}
		}
	}
	t.Fatalf("no child %q of %d", comm, parent)
	return 0
}

// lastTable waits up to a minute for the counter to print the table of
// counted votes, and returns it as printed.
func lastTable(t *testing.T, run *testbed.Process, counted int64) string {
	t.Helper()
	const rule = "-------------------------------------------\nElection"
	want := fmt.Sprintf("counted %d of ", counted)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		out := run.Output()
		if i := strings.LastIndex(out, rule); i >= 0 {
			block := out[i:]
			if end := strings.Index(block, "\ncounted "); end >= 0 {
				line, _, _ := strings.Cut(block[end+1:], "\n")
				if strings.HasPrefix(line, want) {
					return block[:end+1] + line + "\n"
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter printed no table of %d votes:\n%s", counted, testbed.Tail(out, 3000))
		}
	}
}

// terminal lays text out as a dark terminal window shows it.
func terminal(text string) string {
	return `<!doctype html><meta charset="utf-8"><style>
body { margin: 0; background: #fff; }
pre { display: inline-block; margin: 0; padding: 16px 20px; background: #1e1e1e; color: #d4d4d4;
  font: 14px/1.35 "DejaVu Sans Mono", monospace; border-radius: 6px; }
</style><pre>$ make run   # ELECTION=2024 INCLUDE_DC=true, the counter's table midway
` + html.EscapeString(text) + `</pre>`
}
