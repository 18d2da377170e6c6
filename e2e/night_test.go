package e2e

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// nightScale is the seed's 0.5% sample of 2024's certified votes: 776,000
// votes, every state's winner as certified.
const nightScale = 0.005

// TestElectionNight2024 replays 2024's night (ELECTION=2024, DC included)
// through the producer, a counter and its live page in headless Chromium.
// Midway through the night (the producer stopped with SIGSTOP so the page
// can catch up) the page must show the clock and some states grey (polls
// not closed), some leading and some called; at the end /results is the
// generator's truth, 312 to 226, and the page shows it. Both are saved as
// screenshots.
func TestElectionNight2024(t *testing.T) {
	chromium := webtest.Chromium(t)
	bin := Binaries(t)
	b := webtest.Start(t, chromium) // first: its start is not the count's time
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	broker := StartBroker(t)
	env := NewEnv(t, broker, 12)
	cfg := votegen.Config{Seed: testSeed, Scale: nightScale, IncludeDC: true, Election: votegen.Election2024}
	truth := truthResults(t, cfg)
	model := []string{"ELECTION=2024", "INCLUDE_DC=true", "SCALE=" + strconv.FormatFloat(nightScale, 'f', -1, 64)}

	counter := Start(t, "counter", bin.Counter, env.Vars(append(model, "REPLICA_ID=a", "BATCH_MAX_WAIT=200ms")...)...)
	base := "http://" + counter.MetricsAddr(t)
	page := b.NewPage(ctx, t)
	page.Viewport(ctx, t, 1280, 900, false)
	page.Navigate(ctx, t, base+"/")

	started := time.Now()
	prod := Start(t, "producer", bin.Producer, env.Vars(append(model,
		"SEED="+strconv.Itoa(testSeed), "BATCH_INTERVAL=150ms", "OUTPUT_DIR=")...)...)

	// Midway: once the counted clock passes 9:30 p.m. ET, hold the producer.
	midway := time.Date(2024, 11, 6, 2, 30, 0, 0, time.UTC)
	for r := mustResults(ctx, t, base); r.Night.Clock.Before(midway); r = mustResults(ctx, t, base) {
		if prod.Exited() || ctx.Err() != nil {
			t.Fatalf("the night ended (producer exited: %v) before the count reached %s: clock %s", prod.Exited(), midway, r.Night.Clock)
		}
		time.Sleep(200 * time.Millisecond)
	}
	prod.Signal(syscall.SIGSTOP)
	t.Logf("midway after %s", time.Since(started).Round(time.Millisecond))
	_, mid := page.WaitShows(ctx, t, 30*time.Second, func() results.Results { return mustResults(ctx, t, base) })
	checkMidway(ctx, t, page, &mid)
	page.Screenshot(ctx, t, "e2e-night-2024-midway.png")
	prod.Signal(syscall.SIGCONT)

	if err := prod.Wait(3 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Logf("producer done after %s", time.Since(started).Round(time.Millisecond))
	got := waitResults(ctx, t, base, truth.Counted, time.Minute)
	t.Logf("all counted after %s", time.Since(started).Round(time.Millisecond))
	checkResults(t, "/results at the end of the night", &got, &truth)
	if trump, harris := got.Candidates[0].ElectoralVotesWon, got.Candidates[1].ElectoralVotesWon; trump != 312 || harris != 226 {
		t.Errorf("electoral votes: Trump %d, Harris %d, want 312, 226", trump, harris)
	}
	if _, end := votegen.Night(); !got.Night.Clock.Equal(end) || got.Night.PollsClosed != got.Night.States {
		t.Errorf("night at the end: clock %s (want %s), polls closed in %d of %d", got.Night.Clock, end, got.Night.PollsClosed, got.Night.States)
	}
	shown, _ := page.WaitShows(ctx, t, 30*time.Second, func() results.Results { return mustResults(ctx, t, base) })
	if !strings.Contains(shown.Winner, "Donald J. Trump") {
		t.Errorf("winner banner: %q", shown.Winner)
	}
	page.Screenshot(ctx, t, "e2e-night-2024-end.png")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
	}
}

// checkMidway checks that r, which the page shows, is midway through the
// night, and that the page shows its clock, its polls closed and states
// grey, striped (leading) and solid (called) on the map.
func checkMidway(ctx context.Context, t *testing.T, page *webtest.Page, r *results.Results) {
	t.Helper()
	status := map[results.Status]int{}
	for _, s := range r.States {
		status[s.Status]++
	}
	t.Logf("midway at %s: polls closed in %d of %d, %v", r.Night.Clock, r.Night.PollsClosed, r.Night.States, status)
	if r.Night.PollsClosed == 0 || r.Night.PollsClosed == r.Night.States {
		t.Errorf("midway: polls closed in %d of %d states", r.Night.PollsClosed, r.Night.States)
	}
	if status[results.NoVotes] == 0 || status[results.Leading] == 0 || status[results.Called] == 0 {
		t.Errorf("midway: want states without votes, leading and called, got %v", status)
	}
	var dom struct {
		Hidden             bool
		Clock, PollsClosed string
		Grey, Striped      int
		Solid              int
	}
	page.EvalInto(ctx, t, `(() => {
  const paths = [...document.querySelectorAll("#map path[data-code]")];
  return {
    Hidden: document.getElementById("night").hidden,
    Clock: document.getElementById("clock").textContent,
    PollsClosed: document.getElementById("polls-closed").textContent,
    Grey: paths.filter((p) => p.classList.contains("none")).length,
    Striped: paths.filter((p) => p.style.fill.includes("hatch")).length,
    Solid: paths.filter((p) => p.style.fill && !p.style.fill.includes("hatch")).length,
  };
})()`, &dom)
	est := time.FixedZone("EST", -5*3600)
	if want := r.Night.Clock.In(est).Format("3:04"); dom.Hidden || !strings.HasPrefix(dom.Clock, want) {
		t.Errorf("page clock %q (hidden %v), want %s ET", dom.Clock, dom.Hidden, want)
	}
	if dom.PollsClosed != strconv.Itoa(r.Night.PollsClosed) {
		t.Errorf("page: polls closed %q, want %d", dom.PollsClosed, r.Night.PollsClosed)
	}
	if dom.Grey != status[results.NoVotes] || dom.Striped != status[results.Leading] || dom.Solid != status[results.Called] {
		t.Errorf("map: %d grey, %d striped, %d solid; want %d, %d, %d", dom.Grey, dom.Striped, dom.Solid,
			status[results.NoVotes], status[results.Leading], status[results.Called])
	}
}
