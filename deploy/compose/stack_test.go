package compose_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/e2e"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// The election the test runs: the compose file's seed, at a small scale,
// published slowly enough (about 100 batches, one a second) that a replica
// can be stopped and the producer killed while it runs.
const (
	seed       = 20241105
	scale      = "0.0005"
	perBatch   = "1000"
	replicas   = 3
	partitions = 12
)

// testOverride is the test's own compose file, after the two users run: the
// small election, and host ports chosen by the engine on 127.0.0.1 (one per
// counter and web replica, nginx's instead of 8000) so the test disturbs no
// fixed port. The roles are the compose file's: the counters count
// (ROLE=count), the web replica serves /results from their checkpoints.
const testOverride = `
services:
  kafka:
    ports: !reset []
  producer:
    environment:
      SCALE: "` + scale + `"
      VOTES_PER_BATCH: "` + perBatch + `"
      BATCH_INTERVAL: 1s
  counter:
    environment:
      SCALE: "` + scale + `"
    ports: ["127.0.0.1::9102"]
  web:
    environment:
      SCALE: "` + scale + `"
    ports: ["127.0.0.1::9102"]
  nginx:
    ports: !override ["127.0.0.1::8000"]
  prometheus:
    ports: !override ["127.0.0.1::9090"]
`

// stack is one compose project on the private engine stack.sh started.
type stack struct {
	project string
	env     []string // COMPOSE_FILE, COMPOSE_PROJECT_NAME and the caller's
	root    string
}

// TestStack runs docker-compose.yml with deploy/compose/apache-kafka.yml
// under a real Docker Engine and checks what static checks cannot: the
// images build and run non-root on read-only root filesystems, init makes
// the topics, the counters count exactly while scaled, stopped and with the
// producer killed, Prometheus finds every replica, nginx serves the live
// page from one web replica, then from two and with one of them stopped,
// and `make down` leaves nothing behind. Only `make compose-test` runs it
// (COMPOSE_TEST=1).
func TestStack(t *testing.T) {
	if os.Getenv("COMPOSE_TEST") != "1" {
		t.Skip("COMPOSE_TEST=1 not set: `make compose-test` runs this test on its own Docker Engine")
	}
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	sc, err := strconv.ParseFloat(scale, 64)
	if err != nil {
		t.Fatal(err)
	}
	want, err := votegen.TrueTotals(votegen.Config{Seed: seed, Scale: sc})
	if err != nil {
		t.Fatal(err)
	}

	// Build with one build at a time: the second target then finds the
	// shared stages in the layer cache instead of compiling them again.
	start := time.Now()
	s.composeEnv(t, 15*time.Minute, []string{"COMPOSE_PARALLEL_LIMIT=1"}, "build")
	t.Logf("images built in %s", time.Since(start).Round(time.Second))

	t.Run("init", func(t *testing.T) { s.checkInit(t) })
	if t.Failed() {
		return
	}

	s.compose(t, 5*time.Minute, "up", "-d", "--scale", fmt.Sprintf("counter=%d", replicas))
	t.Run("non-root and read-only", func(t *testing.T) { s.checkHardening(t) })
	counters := s.containers(t, "counter")
	if len(counters) != replicas {
		t.Fatalf("%d counter replicas run, want %d", len(counters), replicas)
	}
	smp := s.sample(t, ctx, want)
	t.Run("partitions split", func(t *testing.T) { s.checkSplit(t, ctx, counters) })
	t.Run("prometheus finds every replica", func(t *testing.T) { s.checkPrometheus(t, ctx, counters) })
	live := addrs(counters[:replicas-1])
	t.Run("stopped replica", func(t *testing.T) { s.checkStop(t, ctx, smp, counters[replicas-1], live) })
	t.Run("producer restarted", func(t *testing.T) { s.checkProducerRestart(t, ctx, smp, want.Total()) })
	t.Run("exact count", func(t *testing.T) { s.checkExact(t, ctx, live, &want) })
	smp.stop(t)
	t.Run("nginx", func(t *testing.T) { s.checkNginx(t, ctx, &want) })
	t.Run("producer files", func(t *testing.T) { s.checkFiles(t, &want) })
	t.Run("make down", func(t *testing.T) { s.checkDown(t) })
}

// newStack names a fresh project and writes the test's override; cleanup
// takes the project down (printing its logs first if the test failed).
func newStack(t *testing.T) *stack {
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	var r [3]byte
	_, _ = rand.Read(r[:])
	override := filepath.Join(t.TempDir(), "test.yml")
	if err := os.WriteFile(override, []byte(testOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &stack{project: "vstest-" + hex.EncodeToString(r[:]), root: root}
	s.env = append(os.Environ(), "ELECTION=seed", "COMPOSE_PROJECT_NAME="+s.project,
		"COMPOSE_FILE="+strings.Join([]string{"docker-compose.yml", "deploy/compose/apache-kafka.yml", override}, string(os.PathListSeparator)))
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.run(2*time.Minute, nil, "docker", "compose", "logs", "--no-color", "--tail=60")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := s.run(3*time.Minute, nil, "docker", "compose", "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	return s
}

// run runs argv in the repository root with the stack's environment plus
// extra, bounded by timeout, and returns its combined output.
func (s *stack) run(timeout time.Duration, extra []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.root
	cmd.Env = append(append([]string{}, s.env...), extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%v: timed out after %s", err, timeout)
	}
	return out.String(), err
}

func (s *stack) must(t testing.TB, timeout time.Duration, extra []string, argv ...string) string {
	t.Helper()
	out, err := s.run(timeout, extra, argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

func (s *stack) compose(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	return s.must(t, timeout, nil, append([]string{"docker", "compose"}, args...)...)
}

func (s *stack) composeEnv(t testing.TB, timeout time.Duration, extra []string, args ...string) string {
	t.Helper()
	return s.must(t, timeout, extra, append([]string{"docker", "compose"}, args...)...)
}

func (s *stack) docker(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	return s.must(t, timeout, nil, append([]string{"docker"}, args...)...)
}

// container is what the test reads of `docker inspect`.
type container struct {
	ID     string
	Name   string
	Config struct {
		User   string
		Labels map[string]string
	}
	State struct {
		Status   string
		Pid      int
		ExitCode int
	}
	HostConfig struct {
		ReadonlyRootfs bool
	}
	NetworkSettings struct {
		Ports    map[string][]struct{ HostIP, HostPort string }
		Networks map[string]struct{ IPAddress string }
	}
}

func (c container) service() string { return c.Config.Labels["com.docker.compose.service"] }

// addr is the 127.0.0.1 address the engine published port on.
func (c container) addr(port string) string {
	for _, b := range c.NetworkSettings.Ports[port+"/tcp"] {
		if b.HostIP == "127.0.0.1" {
			return "127.0.0.1:" + b.HostPort
		}
	}
	return ""
}

func (c container) ip() string {
	for _, n := range c.NetworkSettings.Networks {
		return n.IPAddress
	}
	return ""
}

// containers inspects the project's containers of service, running or not
// (all services if empty), in replica order.
func (s *stack) containers(t testing.TB, service string) []container {
	t.Helper()
	args := []string{"ps", "-a", "-q"}
	if service != "" {
		args = append(args, service)
	}
	ids := strings.Fields(s.compose(t, time.Minute, args...))
	if len(ids) == 0 {
		return nil
	}
	var cs []container
	if err := json.Unmarshal([]byte(s.docker(t, time.Minute, append([]string{"inspect"}, ids...)...)), &cs); err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	slices.SortFunc(cs, func(a, b container) int { return strings.Compare(a.Name, b.Name) })
	return cs
}

// topics describes votestream's topics with the broker's own tool.
func (s *stack) topics(t testing.TB) string {
	t.Helper()
	return s.compose(t, 2*time.Minute, "exec", "-T", "kafka", "/opt/kafka/bin/kafka-topics.sh",
		"--bootstrap-server", "localhost:9092", "--describe", "--topic", "votes,votes.checkpoints,votes.dlq")
}

// checkInit: the first init creates the topics with their policies; a
// second one changes nothing (same topic IDs, partitions and configs).
func (s *stack) checkInit(t *testing.T) {
	s.compose(t, 5*time.Minute, "up", "-d", "--wait", "kafka")
	s.compose(t, 3*time.Minute, "run", "--rm", "init")
	first := s.topics(t)
	for topic, policy := range map[string]string{"votes": "retention.ms=-1", "votes.checkpoints": "cleanup.policy=compact", "votes.dlq": "cleanup.policy=delete"} {
		re := regexp.MustCompile(`(?m)^Topic: ` + regexp.QuoteMeta(topic) + `\tTopicId: \S+\tPartitionCount: 12\tReplicationFactor: 1\tConfigs: .*` + regexp.QuoteMeta(policy))
		if !re.MatchString(first) {
			t.Errorf("topic %s: want 12 partitions and %s; kafka-topics --describe says:\n%s", topic, policy, first)
		}
	}
	out := s.compose(t, 3*time.Minute, "run", "--rm", "init")
	if !strings.Contains(out, "votes exists") {
		t.Errorf("second init did not find the topics:\n%s", out)
	}
	if again := s.topics(t); again != first {
		t.Errorf("second init changed the topics:\nbefore:\n%s\nafter:\n%s", first, again)
	}
}

// checkHardening: every running service runs as a non-root user, as the
// kernel sees it, and every service the compose file makes read-only has a
// read-only root mount.
func (s *stack) checkHardening(t *testing.T) {
	var cfg struct {
		Services map[string]struct {
			ReadOnly bool `json:"read_only"`
		}
	}
	if err := json.Unmarshal([]byte(s.compose(t, time.Minute, "config", "--format", "json")), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"producer", "counter", "web", "nginx"} {
		if !cfg.Services[svc].ReadOnly {
			t.Errorf("compose config: %s is not read_only", svc)
		}
	}
	seen := map[string]bool{}
	for _, c := range s.containers(t, "") {
		if c.State.Status != "running" {
			continue
		}
		seen[c.service()] = true
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.State.Pid))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		uid := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`).FindSubmatch(status)
		if uid == nil || bytes.Equal(uid[1], []byte("0")) || bytes.Equal(uid[2], []byte("0")) ||
			bytes.Equal(uid[3], []byte("0")) || bytes.Equal(uid[4], []byte("0")) {
			t.Errorf("%s runs as root: %s", c.Name, uid)
		}
		if !cfg.Services[c.service()].ReadOnly {
			t.Logf("%s: uid %s, root filesystem writable (the compose file does not make it read-only)", c.Name, uid[1])
			continue
		}
		mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.State.Pid))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if !c.HostConfig.ReadonlyRootfs || !regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ / ro[, ]`).Match(mounts) {
			t.Errorf("%s: root filesystem is not read-only (ReadonlyRootfs %v)", c.Name, c.HostConfig.ReadonlyRootfs)
		} else {
			t.Logf("%s: uid %s, read-only root filesystem", c.Name, uid[1])
		}
	}
	for _, svc := range []string{"kafka", "producer", "counter", "web", "nginx", "prometheus"} {
		if !seen[svc] {
			t.Errorf("no running %s container to check", svc)
		}
	}
}

// checkPrometheus: Prometheus, in its container, scrapes every counter
// replica, found through Docker's DNS.
func (s *stack) checkPrometheus(t *testing.T, ctx context.Context, counters []container) {
	prom := s.containers(t, "prometheus")[0].addr("9090")
	want := map[string]bool{}
	for _, c := range counters {
		want[c.ip()+":9102"] = true
	}
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		got, err := promUp(ctx, prom)
		last = fmt.Sprintf("%v (%v)", got, err)
		if err == nil && len(got) == len(want) && allIn(got, want) {
			t.Logf("prometheus scrapes %v", got)
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("prometheus did not scrape all of %v within 90s: up{job=\"counter\"}==1 at %s", want, last)
}

func allIn(got []string, want map[string]bool) bool {
	for _, g := range got {
		if !want[g] {
			return false
		}
	}
	return true
}

// promUp returns the instances of job counter that Prometheus saw up.
func promUp(ctx context.Context, addr string) ([]string, error) {
	u := "http://" + addr + "/api/v1/query?" + url.Values{"query": {`up{job="counter"} == 1`}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	var got []string
	for _, r := range body.Data.Result {
		got = append(got, r.Metric["instance"])
	}
	return got, nil
}

// sampler reads the web replica's /results (the counters' checkpoints, as
// viewers see them) twice a second while the stack runs and records any
// sample above the truth, or below what it showed before, in any state or
// for any candidate.
type sampler struct {
	mu      sync.Mutex
	addrs   map[string]string // container name -> host address
	last    map[string]results.Results
	bad     []string
	samples int
	done    chan struct{}
	wg      sync.WaitGroup
}

func (s *stack) sample(t *testing.T, ctx context.Context, want vote.Tally) *sampler {
	smp := &sampler{addrs: map[string]string{}, last: map[string]results.Results{}, done: make(chan struct{})}
	for _, c := range s.containers(t, "web") {
		smp.addrs[c.Name] = "http://" + c.addr("9102")
	}
	truthState, truthCand := truths(&want)
	smp.wg.Add(1)
	go func() {
		defer smp.wg.Done()
		for {
			select {
			case <-smp.done:
				return
			case <-time.After(500 * time.Millisecond):
			}
			smp.mu.Lock()
			addrs := make(map[string]string, len(smp.addrs))
			for k, v := range smp.addrs {
				addrs[k] = v
			}
			smp.mu.Unlock()
			for name, base := range addrs {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := webtest.GetResults(cctx, base)
				cancel()
				if err != nil {
					continue // a stopped or busy replica: availability is checked elsewhere
				}
				smp.check(name, &r, &truthState, &truthCand)
			}
		}
	}()
	return smp
}

// truths is the generator's votes per state and per candidate.
func truths(want *vote.Tally) (states [vote.NumStates]int64, cands [vote.NumCandidates]int64) {
	for c := range want {
		for st := range want[c] {
			states[st] += want.StateTotal(vote.Candidate(c), vote.State(st))
			cands[c] += want.StateTotal(vote.Candidate(c), vote.State(st))
		}
	}
	return states, cands
}

func (smp *sampler) check(name string, r *results.Results, truthState *[vote.NumStates]int64, truthCand *[vote.NumCandidates]int64) {
	smp.mu.Lock()
	defer smp.mu.Unlock()
	smp.samples++
	prev, seen := smp.last[name]
	for i, st := range r.States {
		if st.Counted > truthState[i] {
			smp.bad = append(smp.bad, fmt.Sprintf("%s: %s counted %d > truth %d", name, st.Name, st.Counted, truthState[i]))
		}
		if seen && st.Counted < prev.States[i].Counted {
			smp.bad = append(smp.bad, fmt.Sprintf("%s: %s went back from %d to %d", name, st.Name, prev.States[i].Counted, st.Counted))
		}
	}
	for i, c := range r.Candidates {
		if c.Votes > truthCand[i] {
			smp.bad = append(smp.bad, fmt.Sprintf("%s: %s has %d > truth %d", name, c.Name, c.Votes, truthCand[i]))
		}
	}
	smp.last[name] = *r
}

// counted is the most the web replica has shown so far.
func (smp *sampler) counted() int64 {
	smp.mu.Lock()
	defer smp.mu.Unlock()
	var n int64
	for _, r := range smp.last {
		n = max(n, r.Counted)
	}
	return n
}

// addrs is the published 9102 ports of cs.
func addrs(cs []container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.addr("9102"))
	}
	return out
}

func (smp *sampler) stop(t *testing.T) {
	close(smp.done)
	smp.wg.Wait()
	smp.mu.Lock()
	defer smp.mu.Unlock()
	for i, b := range smp.bad {
		if i == 10 {
			t.Errorf("... and %d more bad samples", len(smp.bad)-10)
			break
		}
		t.Errorf("sample: %s", b)
	}
	t.Logf("%d /results samples, %d outside the truth", smp.samples, len(smp.bad))
	if smp.samples < 10 {
		t.Errorf("only %d /results samples: the check saw too little", smp.samples)
	}
}

// waitCounted waits until the web replica shows at least n votes counted.
func waitCounted(t *testing.T, smp *sampler, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for smp.counted() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the counters did not reach %d votes within %s (at %d)", n, timeout, smp.counted())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkSplit: the replicas share the partitions, each owning some.
func (s *stack) checkSplit(t *testing.T, ctx context.Context, counters []container) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		owned, sum := make([]int, len(counters)), 0
		for i, c := range counters {
			if got, err := testbed.Scrape(ctx, c.addr("9102")); err == nil {
				owned[i] = got.Partitions
				sum += got.Partitions
			}
		}
		if sum == partitions && !slices.Contains(owned, 0) {
			t.Logf("partitions owned per replica: %v", owned)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d replicas own %v partitions after 2 minutes, want %d split among all", len(counters), owned, partitions)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStop: `docker stop` of one replica; the others (at host addresses
// others) own all partitions again within the group's session timeout.
func (s *stack) checkStop(t *testing.T, ctx context.Context, smp *sampler, victim container, others []string) {
	waitCounted(t, smp, 1, 3*time.Minute)
	s.docker(t, 2*time.Minute, "stop", victim.ID)
	stopped := time.Now()
	session := 10 * time.Second // GROUP_SESSION_TIMEOUT in docker-compose.yml
	for {
		c, err := testbed.Sum(ctx, others)
		if err == nil && c.Partitions == partitions {
			t.Logf("the %d others own all %d partitions %s after %s stopped", replicas-1, partitions,
				time.Since(stopped).Round(100*time.Millisecond), victim.Name)
			return
		}
		if time.Since(stopped) > session {
			t.Fatalf("%s after stopping %s the others own %v partitions, want %d (err %v)", session, victim.Name, c, partitions, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkProducerRestart kills the producer mid-run (SIGKILL, no goodbye) and
// starts it again; it must resume and exit 0, and the count (checked next)
// stay exact.
func (s *stack) checkProducerRestart(t *testing.T, ctx context.Context, smp *sampler, total int64) {
	waitCounted(t, smp, total/3, 5*time.Minute)
	p := s.containers(t, "producer")[0]
	if p.State.Status != "running" {
		t.Fatalf("the producer is %s before its restart: the test's election is too short", p.State.Status)
	}
	s.docker(t, time.Minute, "restart", "-t", "0", p.ID)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		p = s.containers(t, "producer")[0]
		if p.State.Status == "exited" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the producer did not finish within 10 minutes of its restart (%s)", p.State.Status)
		}
		time.Sleep(time.Second)
	}
	if p.State.ExitCode != 0 {
		t.Errorf("the restarted producer exited %d, want 0", p.State.ExitCode)
	}
	// The log's last word: it resumed where the votes topic said it stopped.
	logs := s.compose(t, time.Minute, "logs", "--no-color", "producer")
	m := regexp.MustCompile(`"msg":"election published".*"votes":(\d+),"resumed_after":(\d+)`).FindStringSubmatch(logs)
	if m == nil || m[2] == "0" || m[1] != strconv.FormatInt(total, 10) {
		t.Errorf("the restarted producer did not report resuming and publishing %d votes: %v", total, m)
	} else {
		t.Logf("the restarted producer resumed after %s of %s votes", m[2], m[1])
	}
}

// checkExact: the live counters' /metrics (at host addresses live) add up
// to the generator's election, every cell, over all partitions, and they
// serve no /results (ROLE=count); the web replicas' /results, which
// follow the checkpoints, show it all within a minute.
func (s *stack) checkExact(t *testing.T, ctx context.Context, live []string, want *vote.Tally) {
	got := e2e.WaitCounted(t, func() []string { return live }, partitions, want.Total(), 3*time.Second, 3*time.Minute)
	e2e.CheckTally(t, "counters' /metrics", &got.Tally, want)
	for _, a := range live {
		if _, err := webtest.GetResults(ctx, "http://"+a); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("counter %s/results: %v, want 404 (ROLE=count)", a, err)
		}
	}
	for _, c := range s.containers(t, "web") {
		waitExact(t, ctx, "web "+c.Name, "http://"+c.addr("9102"), want)
	}
}

// checkNginx: nginx (the compose file's port 8000, here one the engine
// picked) serves the live page, /results and /events from the web replica;
// after `--scale web=2` and a restart of nginx, as docs/serving.md says,
// event streams reach both replicas, and with one of them stopped nginx
// keeps answering from the other.
func (s *stack) checkNginx(t *testing.T, ctx context.Context, want *vote.Tally) {
	proxy := "http://" + s.containers(t, "nginx")[0].addr("8000")
	checkProxied(t, ctx, proxy, want)
	if t.Failed() {
		return
	}

	s.compose(t, 3*time.Minute, "up", "-d", "--no-deps", "--scale", "web=2", "web")
	s.compose(t, 2*time.Minute, "restart", "nginx")
	webs := s.containers(t, "web")
	if len(webs) != 2 {
		t.Fatalf("%d web replicas after --scale web=2, want 2", len(webs))
	}
	before := make([]float64, len(webs))
	for i, c := range webs {
		waitExact(t, ctx, "web "+c.Name, "http://"+c.addr("9102"), want)
		before[i] = requestsTo(t, ctx, c.addr("9102"), "/events")
	}
	// The port the engine picked may change with the restart.
	proxy = "http://" + s.containers(t, "nginx")[0].addr("8000")
	// least_conn: a worker holding two streams gives them to different
	// replicas, and 8 streams on nginx's workers (one per core) make some
	// worker hold two.
	var streams []io.Closer
	defer func() {
		for _, b := range streams {
			b.Close()
		}
	}()
	for range 8 {
		r, body, err := firstEvent(ctx, proxy)
		if err != nil {
			t.Fatalf("an /events stream through nginx: %v", err)
		}
		streams = append(streams, body)
		checkTruth(t, "/events through nginx", &r, want)
	}
	got := make([]float64, len(webs))
	for i, c := range webs {
		got[i] = requestsTo(t, ctx, c.addr("9102"), "/events") - before[i]
		if got[i] == 0 {
			t.Errorf("web %s got none of 8 /events streams through nginx after the scale", c.Name)
		}
	}
	t.Logf("8 /events streams through nginx: %v per web replica", got)

	// One replica stopped: the page, /results and a new stream (never
	// cached) still answer, the stream from the other replica.
	survivor := requestsTo(t, ctx, webs[1].addr("9102"), "/events")
	s.docker(t, 2*time.Minute, "stop", webs[0].ID)
	checkProxied(t, ctx, proxy, want)
	if n := requestsTo(t, ctx, webs[1].addr("9102"), "/events"); n <= survivor {
		t.Errorf("with web %s stopped, the /events stream through nginx did not come from %s", webs[0].Name, webs[1].Name)
	} else {
		t.Logf("web %s stopped: nginx answers from %s", webs[0].Name, webs[1].Name)
	}
}

// checkProxied: the live page, /results (exact) and an /events stream
// (whose first event is exact) answer at base.
func checkProxied(t *testing.T, ctx context.Context, base string, want *vote.Tally) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s/: %v", base, err)
	}
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("<title>votestream")) {
		t.Errorf("GET %s/: %s (%v), %d bytes: not the live page", base, res.Status, err, len(page))
	}
	waitExact(t, ctx, "nginx", base, want)
	r, body, err := firstEvent(ctx, base)
	if err != nil {
		t.Fatalf("%s/events: %v", base, err)
	}
	body.Close()
	checkTruth(t, base+"/events", &r, want)
}

// waitExact waits up to a minute for base's /results to count the whole
// election, then checks every state and candidate.
func waitExact(t *testing.T, ctx context.Context, what, base string, want *vote.Tally) {
	t.Helper()
	var r results.Results
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if r, err = webtest.GetResults(ctx, base); err == nil && r.Counted == want.Total() {
			break
		}
	}
	if err != nil || r.Counted != want.Total() {
		t.Fatalf("%s %s/results: counted %d (%v), want %d", what, base, r.Counted, err, want.Total())
	}
	checkTruth(t, what+" /results", &r, want)
}

// checkTruth: r shows the generator's votes in every state and for every
// candidate.
func checkTruth(t *testing.T, what string, r *results.Results, want *vote.Tally) {
	t.Helper()
	states, cands := truths(want)
	if r.Counted != want.Total() || len(r.States) != len(states) || len(r.Candidates) != len(cands) {
		t.Errorf("%s: counted %d in %d states for %d candidates, want %d in %d for %d",
			what, r.Counted, len(r.States), len(r.Candidates), want.Total(), len(states), len(cands))
		return
	}
	for i, st := range r.States {
		if st.Counted != states[i] {
			t.Errorf("%s: %s counted %d, want %d", what, st.Name, st.Counted, states[i])
		}
	}
	for i, c := range r.Candidates {
		if c.Votes != cands[i] {
			t.Errorf("%s: %s has %d, want %d", what, c.Name, c.Votes, cands[i])
		}
	}
}

// firstEvent opens base's /events and reads its first event within 30 s;
// the stream stays open until the caller closes it.
func firstEvent(ctx context.Context, base string) (results.Results, io.Closer, error) {
	var r results.Results
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, base+"/events", nil)
	if err != nil {
		cancel()
		return r, nil, err
	}
	timer := time.AfterFunc(30*time.Second, cancel)
	defer timer.Stop()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return r, nil, err
	}
	body := closer(func() error { cancel(); return res.Body.Close() })
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		body.Close()
		return r, nil, fmt.Errorf("%s, Content-Type %q", res.Status, ct)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: ")); ok {
			if err := json.Unmarshal(data, &r); err != nil {
				body.Close()
				return r, nil, fmt.Errorf("an event: %v", err)
			}
			return r, body, nil
		}
	}
	body.Close()
	return r, nil, fmt.Errorf("the stream ended without an event: %v", sc.Err())
}

// closer closes an event stream: its body and its request's context.
type closer func() error

func (c closer) Close() error { return c() }

// requestsTo is the web replica's votestream_http_requests_total for path
// (0 before its first such request).
func requestsTo(t *testing.T, ctx context.Context, addr, path string) float64 {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, _, err := testbed.Requests(cctx, addr, path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkFiles: the producer's JSON batches are in its volume, each vote once,
// the whole election.
func (s *stack) checkFiles(t *testing.T, want *vote.Tally) {
	var vols []struct{ Mountpoint string }
	out := s.docker(t, time.Minute, "volume", "inspect", s.project+"_producer-data")
	if err := json.Unmarshal([]byte(out), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("docker volume inspect: %v\n%s", err, out)
	}
	got, n, err := e2e.ReadVoteFiles(vols[0].Mountpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d JSON files in the producer's volume", n)
	e2e.CheckTally(t, "producer's JSON files", &got, want)
}

// checkDown: `make down` leaves no container, network or volume.
func (s *stack) checkDown(t *testing.T) {
	s.must(t, 3*time.Minute, nil, "make", "--no-print-directory", "down", "COMPOSE=docker compose")
	label := "label=com.docker.compose.project=" + s.project
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", label}
		if kind == "container" {
			args = []string{"ps", "-a", "-q", "--filter", label}
		}
		if left := strings.TrimSpace(s.docker(t, time.Minute, args...)); left != "" {
			t.Errorf("after make down, %ss left: %s", kind, left)
		}
	}
}
