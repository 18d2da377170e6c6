package testbed

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcess runs a real shell: its output is kept and waited for, its
// memory measured, and Stop ends it with SIGTERM.
func TestProcess(t *testing.T) {
	p, err := Start("sh", Command("sh", []string{"-c", "echo ready $FOO; exec sleep 30"}, "FOO=bar"), Options{Measure: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.WaitOutput(regexp.MustCompile(`ready (\w+)`), 10*time.Second)
	if err != nil || got != "bar" {
		t.Fatalf("WaitOutput = %q, %v", got, err)
	}
	if p.Exited() || p.PeakMiB() <= 0 {
		t.Errorf("exited %v, peak %.1f MiB while sleeping", p.Exited(), p.PeakMiB())
	}
	err = p.Stop(10 * time.Second)
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); err == nil || !ok || ws.Signal() != syscall.SIGTERM {
		t.Errorf("Stop: %v, want the exit of a SIGTERM", err)
	}
	if !p.Exited() || p.Ended().Before(p.Started) {
		t.Errorf("exited %v, ended %s", p.Exited(), p.Ended())
	}
}

// TestProcessTree kills a process group: the child of the shell goes too.
func TestProcessTree(t *testing.T) {
	p, err := Start("tree", Command("sh", []string{"-c", "sleep 30 & echo child $!; wait"}), Options{Tree: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.WaitOutput(regexp.MustCompile(`child (\d+)`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(s)
	p.KillTree()
	for deadline := time.Now().Add(10 * time.Second); alive(child); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the shell's child %d outlived KillTree", child)
		}
	}
}

// alive reports whether pid runs: not gone, not a zombie waiting for init.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(st) > 0 && st[0] != "Z"
}

// TestNewClusterID: kafka-storage format takes an id starting with "-" for
// an option, so none may.
func TestNewClusterID(t *testing.T) {
	for range 2000 {
		if id := NewClusterID(); len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q", id)
		}
	}
}
