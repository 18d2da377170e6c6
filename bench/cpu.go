package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/votestream/votestream/internal/rig"
)

// The viewers run's CPU: a count that keeps every core busy is slowed by
// whatever else runs, so the run shows where the machine's CPU went
// while each count was timed: the machine's idle and stolen time, and what
// the counter, the broker, the server of the load (the stand-in's) and
// the client (this process: viewers and pollers) used.

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuMark is the CPU used so far, by the machine and by the processes.
type cpuMark struct {
	at                time.Time
	busy, idle, steal float64 // the machine's CPU seconds, all cores
	procs             [3]float64
	client            float64
}

// cpuUse is a window's CPU, in cores: CPU seconds per second.
type cpuUse struct {
	busy, idle, steal               float64 // the machine's
	counter, broker, server, client float64
}

// markCPU reads the CPU used so far by the machine (zero where there is no
// /proc/stat) and by counter, broker and server (any may be nil).
func markCPU(counter, broker, server *rig.Process) cpuMark {
	m := cpuMark{at: time.Now()}
	m.busy, m.idle, m.steal, _ = machineCPU()
	for i, p := range []*rig.Process{counter, broker, server} {
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
		busy: per(m.busy, start.busy), idle: per(m.idle, start.idle), steal: per(m.steal, start.steal),
		counter: per(m.procs[0], start.procs[0]), broker: per(m.procs[1], start.procs[1]),
		server: per(m.procs[2], start.procs[2]), client: per(m.client, start.client),
	}
}

// machineCPU is the machine's busy, idle (with I/O wait) and stolen CPU
// seconds since boot, from the first line of /proc/stat: user nice system
// idle iowait irq softirq steal (guest time is in user already); and how
// many cores they are of, one "cpuN" line each.
func machineCPU() (busy, idle, steal float64, cores int) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0, 0
	}
	lines := strings.Split(string(b), "\n")
	f := strings.Fields(lines[0])
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, 0, 0
	}
	var t [8]float64
	for i := range t {
		t[i], _ = strconv.ParseFloat(f[i+1], 64)
		t[i] /= clockTicks
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "cpu") {
			cores++
		}
	}
	return t[0] + t[1] + t[2] + t[5] + t[6], t[3] + t[4], t[7], cores
}

func cores() int {
	_, _, _, n := machineCPU()
	return n
}

// printCPU says where the CPU went in the viewers runs, each figure the
// median over the pairs. Serving cost the counter what it used beyond
// what its count alone used per vote, at the watched count's rate.
func (v *viewerRuns) printCPU(w io.Writer) {
	if len(v.watched) == 0 || v.watched[0].cpu.busy+v.watched[0].cpu.idle == 0 {
		return // no /proc/stat here
	}
	med := func(f func(j int) float64) float64 {
		x := make([]float64, len(v.watched))
		for j := range x {
			x[j] = f(j)
		}
		slices.Sort(x)
		return x[(len(x)-1)/2]
	}
	serving := func(j int) float64 {
		a, wr := v.alone[j], v.watched[j]
		perVote := a.cpu.counter / max(a.row.rate(), 1)
		return wr.cpu.counter - perVote*wr.row.rate()
	}
	fmt.Fprintf(w, "viewers' CPU, in cores of this machine's %d, median of %d pairs: idle %.2f alone, %.2f watched, %.2f with the stand-in (stolen %.2f alone); "+
		"the counter used %.2f alone and %.2f watched, %.2f of it serving beyond its count's own; the stand-in server used %.2f; "+
		"the client (viewers and pollers) used %.2f watched, %.2f with the stand-in; the broker %.2f alone, %.2f watched\n",
		cores(), len(v.watched),
		med(func(j int) float64 { return v.alone[j].cpu.idle }), med(func(j int) float64 { return v.watched[j].cpu.idle }),
		med(func(j int) float64 { return v.standIn[j].cpu.idle }), med(func(j int) float64 { return v.alone[j].cpu.steal }),
		med(func(j int) float64 { return v.alone[j].cpu.counter }), med(func(j int) float64 { return v.watched[j].cpu.counter }),
		med(serving), med(func(j int) float64 { return v.standIn[j].cpu.server }),
		med(func(j int) float64 { return v.watched[j].cpu.client }), med(func(j int) float64 { return v.standIn[j].cpu.client }),
		med(func(j int) float64 { return v.alone[j].cpu.broker }), med(func(j int) float64 { return v.watched[j].cpu.broker }))
}
