package viewers

import (
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/internal/testbed"
)

// The viewers run's CPU: a count that keeps every core busy is slowed by
// whatever else runs, so the run shows where the machine's CPU went
// while each count was timed: the machine's idle and stolen time, and what
// the counter, the broker, the server of the load (the stand-in's) and
// the client (this process: viewers and pollers) used.

// cpuMark is the CPU used so far, by the machine and by the processes.
type cpuMark struct {
	at      time.Time
	machine testbed.MachineCPU
	procs   [3]float64 // counter, broker, server
	client  float64
}

// cpuUse is a window's CPU, in cores: CPU seconds per second.
type cpuUse struct {
	cores                           int // the machine's; 0 if unknown
	busy, idle, steal               float64
	counter, broker, server, client float64
}

// markCPU reads the CPU used so far by the machine and by counter, broker
// and server (any may be nil).
func markCPU(counter, broker, server *testbed.Process) cpuMark {
	m := cpuMark{at: time.Now(), machine: testbed.ReadMachineCPU()}
	for i, p := range []*testbed.Process{counter, broker, server} {
		if p != nil {
			m.procs[i] = p.CPUNow()
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		m.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return m
}

// since is the CPU used from start to m, per second.
func (m cpuMark) since(start cpuMark) cpuUse {
	s := m.at.Sub(start.at).Seconds()
	if s <= 0 {
		return cpuUse{}
	}
	per := func(a, b float64) float64 { return (a - b) / s }
	return cpuUse{
		cores: m.machine.Cores,
		busy:  per(m.machine.Busy, start.machine.Busy), idle: per(m.machine.Idle, start.machine.Idle),
		steal:   per(m.machine.Steal, start.machine.Steal),
		counter: per(m.procs[0], start.procs[0]), broker: per(m.procs[1], start.procs[1]),
		server: per(m.procs[2], start.procs[2]), client: per(m.client, start.client),
	}
}

// printCPU says where the CPU went in the viewers runs, each figure the
// median over the pairs. What serving cost the counter is what it used
// beyond counting: its CPU per vote in the stand-in's run, where the same
// load ran beside it, times its watched rate.
func (v *Runs) printCPU(w io.Writer) {
	if len(v.watched) == 0 || v.watched[0].cpu.cores == 0 {
		return // no /proc/stat here
	}
	kinds := [][]watchedRun{v.alone, v.watched, v.standIn}
	med := func(runs []watchedRun, f func(j int, r watchedRun) float64) float64 {
		x := make([]float64, len(runs))
		for j, r := range runs {
			x[j] = f(j, r)
		}
		return bed.Median(x)
	}
	// each is one figure of the three kinds of run, as "alone / watched / stand-in".
	each := func(f func(r watchedRun) float64) string {
		out := make([]string, len(kinds))
		for k, runs := range kinds {
			out[k] = fmt.Sprintf("%.2f", med(runs, func(_ int, r watchedRun) float64 { return f(r) }))
		}
		return strings.Join(out, " / ")
	}
	perVote := func(r watchedRun) float64 { return r.cpu.counter / max(r.row.Rate(), 1) } // seconds
	serving := med(v.watched, func(j int, r watchedRun) float64 {
		return r.cpu.counter - perVote(v.standIn[j])*r.row.Rate()
	})
	server := med(v.standIn, func(_ int, r watchedRun) float64 { return r.cpu.server })
	fmt.Fprintf(w, "viewers' CPU, in cores of this machine's %d, median of %d pairs, alone / watched / stand-in: machine idle %s, stolen %s; "+
		"counter %s (%s µs per vote counted); broker %s; client (viewers and pollers) %s; "+
		"serving the load took the stand-in server %.2f and votestream's counter %.2f (its CPU beyond counting at the stand-in run's µs per vote)\n",
		v.watched[0].cpu.cores, len(v.watched), each(func(r watchedRun) float64 { return r.cpu.idle }), each(func(r watchedRun) float64 { return r.cpu.steal }),
		each(func(r watchedRun) float64 { return r.cpu.counter }), each(func(r watchedRun) float64 { return 1e6 * perVote(r) }),
		each(func(r watchedRun) float64 { return r.cpu.broker }), each(func(r watchedRun) float64 { return r.cpu.client }),
		server, serving)
}
