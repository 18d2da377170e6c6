// Package testbed runs the real things the end-to-end tests and the benchmarks
// drive: child processes (their output kept, their memory and CPU
// measured), Apache Kafka nodes, the Spark jobs, and the services' /metrics
// read back. It links no testing package: the benchmark binary uses it as
// the tests do.
package testbed

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one child process, its output kept. With Options.Measure its
// peak RSS is sampled from /proc/<pid>/status (VmHWM) while it runs and
// taken from wait4's rusage when it ends.
type Process struct {
	Name    string
	Started time.Time
	cmd     *exec.Cmd
	opt     Options

	out   Buffer
	mu    sync.Mutex
	hwm   int64 // KiB
	done  chan struct{}
	err   error
	ended time.Time
	cpu   time.Duration // user + system, once it has ended

	treeKiB  int64   // peak of the sum of the tree's VmRSS
	treeCPU  float64 // CPU seconds of the tree, at the last sample
	lastTree time.Time
}

// Options shape how a process is run.
type Options struct {
	// Measure samples the process's peak RSS every 10 ms.
	Measure bool
	// Tree runs it in a process group of its own, measured with its
	// descendants (a JVM under Python), so that KillTree ends them all.
	Tree bool
}

// Command is bin with args in a minimal environment: PATH, HOME and env.
func Command(bin string, args []string, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	return cmd
}

// Start runs cmd (its path, arguments and environment set). The process is
// killed by the kernel if the caller dies first.
func Start(name string, cmd *exec.Cmd, opt Options) (*Process, error) {
	p := &Process{Name: name, cmd: cmd, opt: opt, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = opt.Tree
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if opt.Measure || opt.Tree {
		go p.sampleEvery(10 * time.Millisecond)
	}
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.err, p.ended = err, time.Now()
	if st := p.cmd.ProcessState; st != nil {
		p.cpu = st.UserTime() + st.SystemTime()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > p.hwm {
			p.hwm = ru.Maxrss // KiB on Linux
		}
	}
	p.mu.Unlock()
	close(p.done)
}

func (p *Process) sampleEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.sample()
		}
	}
}

// Output is everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// KillTree sends SIGKILL to the process's whole group (Options.Tree; to
// the process alone without it) and waits for the process.
func (p *Process) KillTree() {
	if !p.opt.Tree {
		p.Kill()
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for the process to exit,
// returning its exit error (nil for exit 0). One still running is killed.
func (p *Process) Stop(timeout time.Duration) error {
	p.Signal(syscall.SIGTERM)
	return p.Wait(timeout)
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit error; one still running then is killed.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s still running after %s: killed", p.Name, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the exit error of a process that has ended.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Ended is when the process ended, once it has.
func (p *Process) Ended() time.Time {
	<-p.done
	return p.ended
}

// WaitOutput waits up to timeout for a line of output matching re and
// returns its last submatch (or the whole match).
func (p *Process) WaitOutput(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.Output()); m != nil {
			return m[len(m)-1], nil
		}
		if p.Exited() {
			return "", fmt.Errorf("%s exited (%v) before printing %s\n%s", p.Name, p.Err(), re, Tail(p.Output(), 50))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not print %s within %s\n%s", p.Name, re, timeout, Tail(p.Output(), 50))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Process) sample() {
	if p.opt.Tree {
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

// PeakMiB is the highest resident set size seen (of the tree, with
// Options.Tree), in MiB.
func (p *Process) PeakMiB() float64 {
	p.sample()
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(max(p.hwm, p.treeKiB)) / 1024
}

// CPUSeconds is the CPU time the process used (user + system), known once
// it has ended: it waits for that.
func (p *Process) CPUSeconds() float64 {
	<-p.done
	return p.cpu.Seconds()
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ModuleRoot is the repository's root directory (go env GOMOD).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
