// Package e2e runs votestream's real binaries against a real Kafka protocol
// peer (kfake, as the local broker program) and checks the totals cell by
// cell. Its helpers are shared by the end-to-end, fault and deployment
// tests.
package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/vote"
)

// Bins are the paths of the built services.
type Bins struct{ Producer, Counter, Broker string }

var (
	buildOnce sync.Once
	bins      Bins
	buildErr  error
)

// Binaries builds the producer, counter and broker once per test process
// (with the race detector when the tests run with it).
func Binaries(t testing.TB) Bins {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testbed.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "votestream-bin-")
		if err != nil {
			buildErr = err
			return
		}
		args := []string{"build", "-o", dir + "/"}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./producer", "./counter", "./deploy/broker")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		bins = Bins{filepath.Join(dir, "producer"), filepath.Join(dir, "counter"), filepath.Join(dir, "broker")}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bins
}

// RequireTool skips a test whose outside tool is missing, except in CI
// (CI set), where the tool must be installed and its absence fails.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}

// Proc is a running service process with its output captured, bound to
// the test that started it.
type Proc struct{ *testbed.Process }

// Start runs bin with env (on top of a minimal environment) and stops it,
// bounded, when the test ends. Its output is logged if the test fails.
func Start(t testing.TB, name, bin string, env ...string) *Proc {
	t.Helper()
	return startArgs(t, name, []string{bin}, env...)
}

// startArgs is Start for a command line: argv[0] and its arguments.
func startArgs(t testing.TB, name string, argv []string, env ...string) *Proc {
	t.Helper()
	return StartCmd(t, name, testbed.Command(argv[0], argv[1:], env...))
}

// StartCmd runs cmd (its path, arguments and environment set) like Start.
func StartCmd(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	rp, err := testbed.Start(name, cmd, testbed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rp.Kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, testbed.Tail(rp.Output(), 200))
			keepOutput(t, name, rp)
		}
	})
	return &Proc{rp}
}

// keepOutput writes the whole output of a failed test's process to
// $E2E_LOG_DIR/<test>/<name>-<pid>.log, when E2E_LOG_DIR is set: the last
// lines logged seldom reach back to where a long run went wrong.
func keepOutput(t testing.TB, name string, p *testbed.Process) {
	dir := os.Getenv("E2E_LOG_DIR")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, p.Pid()))
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(path, []byte(p.Output()), 0o644)
	}
	if err != nil {
		t.Logf("E2E_LOG_DIR: %v", err)
		return
	}
	t.Logf("whole output of %s in %s", name, path)
}

// WaitOutput waits up to timeout for a line of output matching re and
// returns its first submatch (or the whole match); it fails the test if
// none comes.
func (p *Proc) WaitOutput(t testing.TB, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	s, err := p.Process.WaitOutput(re, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var metricsAddrRE = regexp.MustCompile(`msg="serving metrics".* addr=(\S+)`)

// MetricsAddr waits for the service to bind its HTTP port and returns it.
func (p *Proc) MetricsAddr(t testing.TB) string {
	t.Helper()
	return p.WaitOutput(t, metricsAddrRE, 30*time.Second)
}

// Broker is the local broker program serving on a port of its own.
type Broker struct {
	Addr    string
	DataDir string
	bin     string
	proc    *Proc
	t       testing.TB
	host    *Host // the network namespace it runs in, or nil for ours
}

var brokerAddrRE = regexp.MustCompile(`broker listening on (\S+)`)

// StartBroker starts the broker binary on a free loopback port with its
// data in a fresh directory.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{DataDir: t.TempDir(), bin: Binaries(t).Broker, t: t}
	b.start("127.0.0.1:0")
	return b
}

func (b *Broker) start(addr string) {
	b.t.Helper()
	env := []string{"BROKER_ADDR=" + addr, "BROKER_DATA_DIR=" + b.DataDir}
	if b.host != nil {
		b.proc = b.host.Start(b.t, "broker", b.bin, env...)
	} else {
		b.proc = Start(b.t, "broker", b.bin, env...)
	}
	b.Addr = b.proc.WaitOutput(b.t, brokerAddrRE, 30*time.Second)
}

// Stop stops the broker cleanly (it saves its data on SIGTERM).
func (b *Broker) Stop() error { return b.proc.Stop(30 * time.Second) }

// Restart stops the broker and starts it again on the same port and data.
func (b *Broker) Restart() {
	b.t.Helper()
	if err := b.Stop(); err != nil {
		b.t.Fatalf("stop broker: %v", err)
	}
	// The port was ours a moment ago; retry briefly while the OS frees it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", b.Addr)
		if err == nil {
			ln.Close()
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker port %s not free again: %v", b.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.start(b.Addr)
}

// Env names one test's topics and group, unique so tests never share them.
type Env struct {
	Brokers, Topic, CheckpointTopic, DLQTopic, Group string
	Partitions                                       int
}

// Bootstrapper is a cluster a test's services connect to: the local broker
// program or an Apache Kafka cluster.
type Bootstrapper interface {
	Bootstrap() string // KAFKA_BROKERS
}

// Bootstrap is the broker's address.
func (b *Broker) Bootstrap() string { return b.Addr }

// Bootstrap is every node's client listener.
func (k *Kafka) Bootstrap() string { return k.Addr }

// NewEnv returns fresh names on cluster b.
func NewEnv(t testing.TB, b Bootstrapper, partitions int) Env {
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")) + "-" + hex.EncodeToString(r[:])
	return Env{
		Brokers: b.Bootstrap(), Topic: "votes-" + id, CheckpointTopic: "ckpt-" + id, DLQTopic: "dlq-" + id,
		Group: "group-" + id, Partitions: partitions,
	}
}

// Vars is the environment both services need for this Env, plus extra.
func (e Env) Vars(extra ...string) []string {
	return append([]string{
		"KAFKA_BROKERS=" + e.Brokers,
		"KAFKA_TOPIC=" + e.Topic,
		"KAFKA_CHECKPOINT_TOPIC=" + e.CheckpointTopic,
		"KAFKA_DLQ_TOPIC=" + e.DLQTopic,
		fmt.Sprintf("KAFKA_PARTITIONS=%d", e.Partitions),
		"GROUP_ID=" + e.Group,
		"HTTP_ADDR=127.0.0.1:0",
	}, extra...)
}

// WaitCounted polls the counters' metrics until together they own every
// partition and have counted want votes, and the sum stays the same for
// settle, then returns it. It fails after timeout.
func WaitCounted(t testing.TB, addrs func() []string, partitions int, want int64, settle, timeout time.Duration) *testbed.Counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		last    *testbed.Counts
		lastErr error
		since   time.Time
	)
	for {
		c, err := testbed.Sum(ctx, addrs())
		switch {
		case err != nil:
			lastErr, since = err, time.Time{}
		case c.Tally.Total() == want && c.Partitions == partitions:
			if since.IsZero() || last.Tally != c.Tally {
				since = time.Now()
			}
			if time.Since(since) >= settle {
				return c
			}
		default:
			since = time.Time{}
		}
		if c != nil {
			last = c
		}
		select {
		case <-ctx.Done():
			got := int64(-1)
			parts := -1
			if last != nil {
				got, parts = last.Tally.Total(), last.Partitions
			}
			t.Fatalf("counters did not reach %d votes over %d partitions within %s: last saw %d votes over %d partitions (last error: %v)",
				want, partitions, timeout, got, parts, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CheckTally fails the test for every cell where got differs from want.
func CheckTally(t testing.TB, what string, got, want *vote.Tally) {
	t.Helper()
	diffs := got.Diff(want, -1)
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("%s: ... and %d more wrong cells", what, len(diffs)-10)
			break
		}
		t.Errorf("%s: %s / %s / %s: got %d, want %d", what, d.Candidate, d.State, d.AgeGroup, d.Got, d.Want)
	}
	if len(diffs) == 0 {
		t.Logf("%s: all %d cells exact (%d votes)", what, vote.NumCandidates*vote.NumStates*vote.NumAgeGroups, got.Total())
	}
}

// fileVote is the seed's JSON schema, read with encoding/json so the file
// check does not trust votestream's own decoder.
type fileVote struct {
	VoteID    string `json:"vote_id"`
	Timestamp string `json:"timestamp"`
	State     string `json:"state"`
	Candidate string `json:"candidate"`
	AgeGroup  string `json:"age_group"`
	VoteCount int    `json:"vote_count"`
}

// ReadVoteFiles tallies every votes_N.json in dir and checks no vote ID
// appears twice.
func ReadVoteFiles(dir string) (vote.Tally, int, error) {
	var t vote.Tally
	files, err := filepath.Glob(filepath.Join(dir, "votes_*.json"))
	if err != nil {
		return t, 0, err
	}
	seen := make(map[string]struct{})
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return t, 0, err
		}
		var votes []fileVote
		if err := json.Unmarshal(b, &votes); err != nil {
			return t, 0, fmt.Errorf("%s: %w", f, err)
		}
		for _, v := range votes {
			c, ok1 := vote.ParseCandidate([]byte(v.Candidate))
			s, ok2 := vote.ParseState([]byte(v.State))
			a, ok3 := vote.ParseAgeGroup([]byte(v.AgeGroup))
			if !ok1 || !ok2 || !ok3 || v.VoteCount != 1 || len(v.VoteID) != 36 || v.Timestamp == "" {
				return t, 0, fmt.Errorf("%s: invalid vote %+v", f, v)
			}
			if _, dup := seen[v.VoteID]; dup {
				return t, 0, fmt.Errorf("%s: vote %s appears twice", f, v.VoteID)
			}
			seen[v.VoteID] = struct{}{}
			t[c][s][a]++
		}
	}
	return t, len(files), nil
}

// Kcat runs kcat with args, feeding it stdin, bounded by 30s.
func Kcat(t testing.TB, stdin io.Reader, args ...string) string {
	t.Helper()
	bin := RequireTool(t, "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Lines returns the non-empty lines of s.
func Lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// reMatch compiles a pattern for WaitOutput.
func reMatch(pattern string) *regexp.Regexp { return regexp.MustCompile(pattern) }
