package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one real process the bench drives, with its peak RSS sampled from
// /proc/<pid>/status (VmHWM) while it runs and taken from wait4's rusage
// when it ends.
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time

	mu   sync.Mutex
	out  bytes.Buffer
	hwm  int64 // KiB
	done chan struct{}
	err  error
	end  time.Time
	cpu  time.Duration // user + system, once it has ended

	tree     bool    // the process and its descendants (a JVM under Python)
	treeKiB  int64   // peak of the sum of the tree's VmRSS
	treeCPU  float64 // CPU seconds of the tree, at the last sample
	lastTree time.Time
}

func startProc(name, bin string, args, env []string) (*proc, error) {
	return start(name, bin, args, env, false)
}

// startTree starts a process measured with its descendants, in a process
// group of its own so that killTree ends them all.
func startTree(name, bin string, args, env []string) (*proc, error) {
	return start(name, bin, args, env, true)
}

func start(name, bin string, args, env []string, tree bool) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), tree: tree}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: tree}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.sample()
			}
		}
	}()
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err, p.end = err, time.Now()
		if st := p.cmd.ProcessState; st != nil {
			p.cpu = st.UserTime() + st.SystemTime()
			if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > p.hwm {
				p.hwm = ru.Maxrss // KiB on Linux
			}
		}
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) sample() {
	if p.tree {
		// A tree (a JVM's threads) costs more to walk: every 100 ms.
		p.mu.Lock()
		due := time.Since(p.lastTree) >= 100*time.Millisecond
		if due {
			p.lastTree = time.Now()
		}
		p.mu.Unlock()
		if due {
			p.sampleTree()
		}
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			p.mu.Lock()
			p.hwm = max(p.hwm, n)
			p.mu.Unlock()
		}
	}
}

// peakMiB is the highest resident set size seen, in MiB.
func (p *proc) peakMiB() float64 {
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(max(p.hwm, p.treeKiB)) / 1024
}

// cpuSeconds is the CPU time the process used (user + system), known once
// it has ended.
func (p *proc) cpuSeconds() float64 {
	<-p.done
	return p.cpu.Seconds()
}

// wait waits up to timeout for the process to exit by itself.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %v\n%s", p.name, p.err, tail(p.output(), 30))
		}
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s still running after %s: killed\n%s", p.name, timeout, tail(p.output(), 30))
	}
}

// stop sends SIGTERM and waits, bounded, for a clean exit.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(timeout)
}

// killTree sends SIGKILL to the process's whole group (startTree) and
// waits for the process.
func (p *proc) killTree() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitOutput waits up to timeout for a line matching re and returns its
// last submatch.
func (p *proc) waitOutput(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			return m[len(m)-1], nil
		}
		if p.exited() {
			return "", fmt.Errorf("%s exited before printing %s\n%s", p.name, re, tail(p.output(), 30))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not print %s within %s\n%s", p.name, re, timeout, tail(p.output(), 30))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
