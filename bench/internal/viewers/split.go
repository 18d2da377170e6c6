package viewers

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/votegen"
)

// The split run (-split): counting and serving apart (ROLE=count and
// ROLE=serve), each on a core of its own: the broker and the counting
// replica on CPU 0, the serving replica and this process (the viewers'
// client) on CPU 1. Each pair counts the same topic alone and under the
// viewers' load; beside it the same pair with ROLE=hybrid (serving on the
// counting core) and the load on a stand-in server, for what serving a
// viewer-update costs.

// CPUs of the split run.
const (
	countCPU = "0" // the broker and the counting replica
	serveCPU = "1" // the serving replica (or stand-in) and this process
)

// splitKind is one kind of run of the split bench.
type splitKind int

const (
	splitAlone   splitKind = iota // ROLE=count, a ROLE=serve replica idle
	splitLoaded                   // the same, the load on the serving replica
	hybridAlone                   // ROLE=hybrid alone
	hybridLoaded                  // ROLE=hybrid, the load on it
	splitStandIn                  // ROLE=count, the load on a stand-in server
	numSplitKinds
)

var splitNames = [numSplitKinds]string{
	"split: ROLE=count alone (a ROLE=serve replica idle)",
	"split: ROLE=count, the load on ROLE=serve",
	"hybrid: ROLE=hybrid alone",
	"hybrid: ROLE=hybrid, the load on it",
	"split: ROLE=count, the load on a stand-in server",
}

// splitRun is one count of the split bench.
type splitRun struct {
	row       bed.Row
	report    viewerReport
	polled    float64
	counter   float64 // the counting replica's CPU, in cores, while timed
	server    float64 // the serving replica's or stand-in's, likewise
	updates   float64 // viewer-updates sent per second while timed
	serverRSS float64 // MiB
}

// perVote is the counting replica's CPU per vote, in seconds.
func (r splitRun) perVote() float64 { return r.counter / max(r.row.Rate(), 1) }

// perUpdate is the server's CPU per viewer-update, in seconds.
func (r splitRun) perUpdate() float64 { return r.server / max(r.updates, 1) }

// SplitRuns are the split bench's pairs.
type SplitRuns struct {
	Config
	runs [numSplitKinds][]splitRun
}

// Pin sets the CPU affinity of every thread of process pid (taskset -a):
// threads started later inherit it.
func Pin(pid int, cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -c %s %d: %v: %s", cpus, pid, err, out)
	}
	return nil
}

// PinBench pins the broker to CPU 0 and this process to CPU 1, as the
// split bench needs, on a machine with at least 2 CPUs.
func PinBench(b *bed.Bed) error {
	if err := Pin(b.Broker.Pid(), countCPU); err != nil {
		return err
	}
	return Pin(os.Getpid(), serveCPU)
}

// Run counts topic once of each kind.
func (v *SplitRuns) Run(ctx context.Context, b *bed.Bed, topic bed.Names, scale float64) error {
	if err := raiseFileLimit(v.Viewers); err != nil {
		return err
	}
	for k := range numSplitKinds {
		r, err := v.count(ctx, b, topic, scale, k)
		if err != nil {
			return fmt.Errorf("%s: %w", splitNames[k], err)
		}
		v.runs[k] = append(v.runs[k], r)
		fmt.Fprintf(b.Log, "bench: %s: %s votes/s, counter %.2f cores (%.3f µs/vote), server %.2f cores, p99 delay %s, %d dropped\n",
			splitNames[k], bed.Human(r.row.Rate()), r.counter, 1e6*r.perVote(), r.server,
			r.report.quantile(0.99).Round(time.Millisecond), r.report.dropped)
	}
	return nil
}

// count counts the complete topic with a fresh counting replica pinned to
// CPU 0 and, as k says, a serving replica or stand-in on CPU 1 and the
// viewers' load on it.
func (v *SplitRuns) count(ctx context.Context, b *bed.Bed, topic bed.Names, scale float64, k splitKind) (splitRun, error) {
	var w splitRun
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.Cfg.Seed, Scale: scale})
	if err != nil {
		return w, err
	}
	n := b.NewNames("split")
	n.Topic = topic.Topic
	role := "ROLE=count"
	if k == hybridAlone || k == hybridLoaded {
		role = "ROLE=hybrid"
	}
	counterBin := filepath.Join(b.Cfg.Bin, "counter")
	maxViewers := "HTTP_MAX_VIEWERS=" + strconv.Itoa(v.Viewers+16)
	p, err := bed.StartProc("counter", "taskset", []string{"-c", countCPU, counterBin}, b.Env(n, role, maxViewers))
	if err != nil {
		return w, err
	}
	defer stopQuietly(p)
	addr, err := bed.CounterAddr(p)
	if err != nil {
		return w, err
	}
	var server *testbed.Process
	target := addr
	switch k {
	case splitAlone, splitLoaded:
		s, err := bed.StartProc("web", "taskset", []string{"-c", serveCPU, counterBin}, b.Env(n, "ROLE=serve", maxViewers))
		if err != nil {
			return w, err
		}
		defer stopQuietly(s)
		if target, err = b.CounterReady(s); err != nil {
			return w, fmt.Errorf("ROLE=serve: %w", err)
		}
		server = s
	case splitStandIn:
		s, saddr, err := startStandIn(b, scale)
		if err != nil {
			return w, err
		}
		defer stopQuietly(s)
		if err := Pin(s.Pid(), serveCPU); err != nil {
			return w, err
		}
		target, server = saddr, s
	}
	readyc := make(chan time.Time, 1)
	go func() { t, _ := b.WaitReady(p, addr); readyc <- t }()
	from := time.Now()
	var load *viewerLoad
	if k == splitLoaded || k == hybridLoaded || k == splitStandIn {
		if load, err = connectViewers(ctx, target, v.Viewers); err != nil {
			return w, err
		}
		defer load.close()
		load.startPolling(v.PollRate)
		from = time.Now()
	}
	ready := <-readyc
	if ready.IsZero() {
		return w, fmt.Errorf("counter not ready:\n%s", testbed.Tail(p.Output(), 20))
	}
	from = later(from, ready)
	start, frames0 := markCPU(p, b.Broker, server), load.frameCount()
	if _, err := b.WaitExact(ctx, addr, &want, true); err != nil {
		return w, err
	}
	end, frames := markCPU(p, b.Broker, server), load.frameCount()-frames0
	cpu := end.since(start)
	w.counter, w.server = cpu.counter, cpu.server
	w.updates = float64(frames*v.Viewers) / end.at.Sub(start.at).Seconds()
	if load != nil {
		w.polled = load.pollRateNow()
		if k != splitStandIn {
			time.Sleep(4 * time.Second) // every viewer gets the final frame
		}
		load.close()
	}
	w.row = bed.Row{Name: splitNames[k], RSSMiB: p.PeakMiB()}
	if server != nil {
		w.serverRSS = server.PeakMiB()
	}
	if err := bed.Finished(p, p.Stop(30*time.Second)); err != nil {
		return w, err
	}
	ckpts, err := readCheckpoints(ctx, b, n.Ckpt, b.Cfg.Partitions)
	if err != nil {
		return w, err
	}
	w.row.Votes, w.row.Seconds = countedSince(ckpts, from, want.Total())
	w.row.Wall = w.row.Seconds
	if load != nil && k != splitStandIn {
		if w.report, err = load.reportSince(ctx, b, n.Topic, ckpts, from); err != nil {
			return w, err
		}
	}
	return w, nil
}

func stopQuietly(p *testbed.Process) {
	if !p.Exited() {
		_ = p.Stop(10 * time.Second)
	}
}

// frameCount is how many frames the monitor has seen; 0 without a load.
func (l *viewerLoad) frameCount() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order)
}

// ratios are each run of kind k over the alone run of its pair.
func (v *SplitRuns) ratios(k, alone splitKind) []float64 {
	out := make([]float64, len(v.runs[k]))
	for j, r := range v.runs[k] {
		out[j] = r.row.Rate() / v.runs[alone][j].row.Rate()
	}
	return out
}

// median of f over the runs of kind k.
func (v *SplitRuns) median(k splitKind, f func(splitRun) float64) float64 {
	x := make([]float64, len(v.runs[k]))
	for j, r := range v.runs[k] {
		x[j] = f(r)
	}
	return bed.Median(x)
}

// Rows are the split bench's loaded runs as rows of the main table: the
// median rate of each, and its ratio to its pair's pinned count alone.
func (v *SplitRuns) Rows() []bed.Row {
	pairs := len(v.runs[splitAlone])
	if pairs == 0 {
		return nil
	}
	var rows []bed.Row
	for _, k := range []struct {
		kind, alone splitKind
		name        string
	}{
		{splitLoaded, splitAlone, fmt.Sprintf("votestream counter ROLE=count, %d viewers on a ROLE=serve replica (pinned apart)", v.Viewers)},
		{hybridLoaded, hybridAlone, fmt.Sprintf("votestream counter ROLE=hybrid, the same %d viewers on it (pinned)", v.Viewers)},
	} {
		r := v.runs[k.kind][pairs/2]
		r.row.Name = k.name
		r.row.Seconds = float64(r.row.Votes) / max(v.median(k.kind, func(r splitRun) float64 { return r.row.Rate() }), 1)
		r.row.RSSMiB = v.median(k.kind, func(r splitRun) float64 { return r.row.RSSMiB })
		r.row.CPU = 0 // the table's CPU is a whole process's; the split's is its timed share
		ratio := bed.Median(v.ratios(k.kind, k.alone))
		r.row.Versus = fmt.Sprintf("%.2f of the same pinned count alone (median of %d)", ratio, pairs)
		if math.IsNaN(ratio) || math.IsInf(ratio, 0) || r.row.Votes == 0 {
			// A count too small ends before the load is on.
			r.row.Versus = "- (the count ended before the load was on: too few votes to time)"
		}
		rows = append(rows, r.row)
	}
	return rows
}

// Print writes the split bench's table and its goals.
func (v *SplitRuns) Print(w io.Writer) {
	pairs := len(v.runs[splitAlone])
	if pairs == 0 {
		return
	}
	fmt.Fprintf(w, "Pinned with taskset: broker + counting replica on CPU %s; serving replica (or stand-in) + the viewers' client on CPU %s. "+
		"Load: %d viewers on /events + /results asked for at %d requests/s (answered: %.0f/s on ROLE=serve, %.0f/s on ROLE=hybrid, %.0f/s on the stand-in). Medians of %d pairs.\n\n",
		countCPU, serveCPU, v.Viewers, v.PollRate, v.median(splitLoaded, func(r splitRun) float64 { return r.polled }),
		v.median(hybridLoaded, func(r splitRun) float64 { return r.polled }), v.median(splitStandIn, func(r splitRun) float64 { return r.polled }), pairs)
	fmt.Fprintln(w, "| run | votes/s | over its pair's alone run | counter CPU µs/vote | serving CPU µs/viewer-update | p99 delay | viewers dropped | peak RSS counter / server MiB |")
	fmt.Fprintln(w, "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
	alone := [numSplitKinds]splitKind{splitAlone, splitAlone, hybridAlone, hybridAlone, splitAlone}
	for k := range numSplitKinds {
		rate := v.median(k, func(r splitRun) float64 { return r.row.Rate() })
		ratio := "-"
		if alone[k] != k {
			rs := v.ratios(k, alone[k])
			ratio = fmt.Sprintf("%.2f (%s)", bed.Median(rs), bed.JoinRatios(rs))
		}
		update, delay, dropped := "-", "-", "-"
		if k == splitLoaded || k == hybridLoaded || k == splitStandIn {
			if k != hybridLoaded { // serving and counting share one process there
				update = fmt.Sprintf("%.2f", 1e6*v.median(k, splitRun.perUpdate))
			}
			if k != splitStandIn {
				delay = fmt.Sprintf("%.2f s", v.median(k, func(r splitRun) float64 { return r.report.quantile(0.99).Seconds() }))
				dropped = fmt.Sprintf("%.0f", v.median(k, func(r splitRun) float64 { return float64(r.report.dropped) }))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.3f | %s | %s | %s | %.0f / %.0f |\n", splitNames[k], bed.Human(rate), ratio,
			1e6*v.median(k, splitRun.perVote), update, delay, dropped,
			v.median(k, func(r splitRun) float64 { return r.row.RSSMiB }), v.median(k, func(r splitRun) float64 { return r.serverRSS }))
	}
	goal := bed.Median(v.ratios(splitLoaded, splitAlone))
	verdict := "met"
	if goal < 0.95 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "\nGoal: the split count under load >= 0.95 of the same pinned count alone: %.2f, %s (hybrid: %.2f).\n",
		goal, verdict, bed.Median(v.ratios(hybridLoaded, hybridAlone)))
	fmt.Fprintf(w, "Counting replica's CPU per vote, loaded over alone: split %.2f, hybrid %.2f. ",
		v.median(splitLoaded, splitRun.perVote)/v.median(splitAlone, splitRun.perVote),
		v.median(hybridLoaded, splitRun.perVote)/v.median(hybridAlone, splitRun.perVote))
	fmt.Fprintf(w, "Serving replica's CPU per viewer-update over the stand-in's: %.2f. Worst across pairs, split / hybrid: p99 delay %s / %s (goal <= 2 s), viewers dropped %d / %d (goal 0).\n",
		v.median(splitLoaded, splitRun.perUpdate)/max(v.median(splitStandIn, splitRun.perUpdate), 1e-12),
		v.worstDelay(splitLoaded), v.worstDelay(hybridLoaded), v.worstDropped(splitLoaded), v.worstDropped(hybridLoaded))
}

func (v *SplitRuns) worstDelay(k splitKind) time.Duration {
	var d time.Duration
	for _, r := range v.runs[k] {
		d = max(d, r.report.quantile(0.99))
	}
	return d.Round(time.Millisecond)
}

func (v *SplitRuns) worstDropped(k splitKind) int {
	n := 0
	for _, r := range v.runs[k] {
		n = max(n, r.report.dropped)
	}
	return n
}
