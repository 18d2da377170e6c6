package testbed

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/stat and /proc/<pid>/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// sampleTree adds up the resident memory and CPU time of the process and
// all its descendants now, keeping the peak memory and the latest CPU.
// A child's CPU moves into its parent's cutime/cstime when it is reaped,
// so counting both fields of live processes counts each second once.
func (p *Process) sampleTree() {
	var kib int64
	var ticks float64
	for _, pid := range descendants(p.cmd.Process.Pid) {
		kib += statusKiB(pid, "VmRSS:")
		ticks += statTicks(pid)
	}
	if ticks == 0 {
		return // gone
	}
	p.mu.Lock()
	p.treeKiB = max(p.treeKiB, kib)
	p.treeCPU = max(p.treeCPU, ticks/clockTicks)
	p.mu.Unlock()
}

// CPUNow is the CPU seconds the process (and, with Options.Tree, its
// descendants) has used so far, while it runs.
func (p *Process) CPUNow() float64 {
	if !p.opt.Tree {
		return statTicks(p.cmd.Process.Pid) / clockTicks
	}
	p.sampleTree()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.treeCPU
}

// descendants is pid and every process below it, from each thread's
// children list.
func descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(out[i]) + "/task/*/children")
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func statusKiB(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// statTicks is utime+stime+cutime+cstime of pid, in clock ticks.
func statTicks(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime..cstime are fields 14..17.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0
	}
	var t float64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseFloat(v, 64)
		t += n
	}
	return t
}

// MachineCPU is the machine's CPU time since boot, in seconds over all its
// cores, from the first line of /proc/stat (user nice system idle iowait
// irq softirq steal; guest time is in user already).
type MachineCPU struct {
	Busy, Idle, Steal float64 // Idle counts I/O wait too
	Cores             int     // how many cores: one "cpuN" line each
}

// ReadMachineCPU reads MachineCPU; it is zero where there is no /proc/stat.
func ReadMachineCPU() MachineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}
	}
	lines := strings.Split(string(b), "\n")
	f := strings.Fields(lines[0])
	if len(f) < 9 || f[0] != "cpu" {
		return MachineCPU{}
	}
	var t [8]float64
	for i := range t {
		t[i], _ = strconv.ParseFloat(f[i+1], 64)
		t[i] /= clockTicks
	}
	m := MachineCPU{Busy: t[0] + t[1] + t[2] + t[5] + t[6], Idle: t[3] + t[4], Steal: t[7]}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "cpu") {
			m.Cores++
		}
	}
	return m
}
