package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// serveTier is one test's election behind nginx: a broker, a ROLE=count
// replica, ROLE=serve replicas and nginx running deploy/nginx's config.
type serveTier struct {
	env    Env
	bin    Bins
	truth  results.Results
	seed   uint64
	web    []*Proc
	webAt  []string // the serving replicas' HTTP addresses
	proxy  string   // nginx's base URL
	nginx  *testbed.Process
	counts *Proc
}

// startServeTier starts the election's services with webs serving
// replicas behind nginx; the producer is started by produce.
func startServeTier(t *testing.T, seed uint64, webs int) *serveTier {
	t.Helper()
	nginx := RequireTool(t, "nginx")
	s := &serveTier{bin: Binaries(t), seed: seed}
	s.env = NewEnv(t, StartBroker(t), 4)
	s.truth = truthResults(t, votegen.Config{Seed: seed, Scale: liveScale})
	common := []string{"SCALE=" + strconv.FormatFloat(liveScale, 'f', -1, 64), "BATCH_MAX_WAIT=200ms",
		"GROUP_SESSION_TIMEOUT=3s", "GROUP_REBALANCE_TIMEOUT=5s"}
	s.counts = Start(t, "counter-count", s.bin.Counter, s.env.Vars(append(common, "REPLICA_ID=count", "ROLE=count")...)...)
	s.counts.MetricsAddr(t)
	for i := range webs {
		name := fmt.Sprintf("web%d", i)
		p := Start(t, name, s.bin.Counter, s.env.Vars(append(common, "REPLICA_ID="+name, "ROLE=serve")...)...)
		s.web = append(s.web, p)
		s.webAt = append(s.webAt, p.MetricsAddr(t))
	}
	for _, addr := range s.webAt {
		waitReady(t, addr)
	}
	s.proxy, s.nginx = startNginx(t, nginx, s.webAt)
	return s
}

// produce starts the producer, sending the election over about seconds.
func (s *serveTier) produce(t *testing.T, seconds int) *Proc {
	t.Helper()
	batches := seconds * 4 // one every 250ms
	perBatch := int(s.truth.Counted)/batches + 1
	return Start(t, "producer", s.bin.Producer, s.env.Vars(
		"SEED="+strconv.FormatUint(s.seed, 10), "SCALE="+strconv.FormatFloat(liveScale, 'f', -1, 64),
		"VOTES_PER_BATCH="+strconv.Itoa(perBatch), "BATCH_INTERVAL=250ms", "OUTPUT_DIR=")...)
}

// startNginx runs nginx with deploy/nginx's configuration on a free
// loopback port, its upstreams the given replicas and its cache in a
// fresh directory, and returns its base URL. Nothing else of the
// configuration changes.
func startNginx(t *testing.T, bin string, upstreams []string) (string, *testbed.Process) {
	t.Helper()
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: nginx's workers run as another user and must reach
	// their cache.
	dir, err := os.MkdirTemp("", "nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var servers strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&servers, "    server %s max_fails=1 fail_timeout=5s;\n", u)
	}
	site := readFile(t, filepath.Join(root, "deploy/nginx/conf.d/votestream.conf"))
	site = replaceExactly(t, site, "    server web:9102 max_fails=1 fail_timeout=5s;\n", servers.String(), 2)
	site = replaceExactly(t, site, "    listen 8000;\n", fmt.Sprintf("    listen 127.0.0.1:%d;\n", port), 1)
	site = replaceExactly(t, site, "    listen [::]:8000;\n", "", 1)
	site = replaceExactly(t, site, "/var/cache/nginx/votestream", filepath.Join(dir, "cache"), 1)
	writeFile(t, filepath.Join(dir, "conf.d/votestream.conf"), site)
	writeFile(t, filepath.Join(dir, "nginx.conf"), readFile(t, filepath.Join(root, "deploy/nginx/nginx.conf")))
	writeFile(t, filepath.Join(dir, "mime.types"), "types { text/html html; text/css css; application/javascript js; }\n")
	cmd := testbed.Command(bin, []string{"-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf"),
		"-g", fmt.Sprintf("daemon off; pid %s/nginx.pid; error_log stderr warn;", dir)})
	p, err := testbed.Start("nginx", cmd, testbed.Options{Tree: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Signal(syscall.SIGTERM) // the master stops its workers
		if p.Wait(10*time.Second) != nil {
			p.KillTree()
		}
		if t.Failed() {
			t.Logf("--- nginx:\n%s", testbed.Tail(p.Output(), 50))
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", base[len("http://"):]); err == nil {
			c.Close()
			return base, p
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s:\n%s", base, p.Output())
		}
	}
}

// TestNginxResultsCache has 64 connections fetch /results through nginx
// for 20 seconds while the count runs. The serving replica behind it must
// receive at most 2 requests a second, by its own request metric; every
// answer must be whole results that never go back, and the last one, once
// everything is counted, exact.
func TestNginxResultsCache(t *testing.T) {
	s := startServeTier(t, testSeed+20, 1)
	const conns, span = 64, 20 * time.Second
	before := requestsTo(t, s.webAt[0], "/results")
	prod := s.produce(t, 15)
	ctx, cancel := context.WithTimeout(context.Background(), span)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var answers int
	var failures []string
	for range conns {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			var last int64
			for ctx.Err() == nil {
				r, err := fetchResults(ctx, client, s.proxy)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case r.Counted < last:
					failures = append(failures, fmt.Sprintf("went back from %d to %d votes", last, r.Counted))
				default:
					answers++
				}
				mu.Unlock()
				if err == nil {
					last = max(last, r.Counted)
				}
			}
		})
	}
	start := time.Now()
	wg.Wait()
	took := time.Since(start)
	origin := requestsTo(t, s.webAt[0], "/results") - before
	t.Logf("%d answers through nginx in %s (%.0f/s); the replica got %.0f requests (%.2f/s)",
		answers, took.Round(time.Millisecond), float64(answers)/took.Seconds(), origin, origin/took.Seconds())
	if len(failures) > 0 {
		t.Errorf("%d bad answers, the first: %s", len(failures), failures[0])
	}
	if answers < conns {
		t.Errorf("%d answers from %d connections in %s", answers, conns, took)
	}
	if origin > 2*took.Seconds() {
		t.Errorf("the replica got %.0f requests for /results in %s: more than 2 a second", origin, took.Round(time.Millisecond))
	}
	if err := prod.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	waitResults(context.Background(), t, "http://"+s.webAt[0], s.truth.Counted, time.Minute)
	final := waitResults(context.Background(), t, s.proxy, s.truth.Counted, 10*time.Second)
	checkResults(t, "/results through nginx", &final, &s.truth)
}

// TestNginxViewers has 1,000 viewers watch /events through nginx while
// the count runs. Each must get every change the serving replica sends
// its own direct viewer, and the final totals, exact.
func TestNginxViewers(t *testing.T) {
	s := startServeTier(t, testSeed+21, 1)
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	direct := watch(ctx, t, "http://"+s.webAt[0], false)
	vs := make([]*viewer, n)
	for i := range vs {
		vs[i] = watch(ctx, t, s.proxy, false)
	}
	waitFirstEvents(t, append(vs, direct))
	prod := s.produce(t, 10)
	if err := prod.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	waitFinal(t, append(vs, direct), s.truth.Counted, time.Minute)
	want := direct.changes()
	t.Logf("the replica's own viewer saw %d changes: %v", len(want), want)
	if len(want) < 3 {
		t.Errorf("the replica sent %d changes, want at least 3: the test does not watch a count", len(want))
	}
	bad := 0
	for i, v := range vs {
		if got := v.changes(); fmt.Sprint(got) != fmt.Sprint(want) {
			if bad++; bad <= 3 {
				t.Errorf("viewer %d through nginx saw %v, want %v", i, got, want)
			}
		}
		v.checkFinal(t, fmt.Sprintf("viewer %d", i), &s.truth)
	}
	if bad > 0 {
		t.Errorf("%d of %d viewers through nginx missed changes", bad, n)
	}
}

// TestNginxFailover SIGKILLs one of two serving replicas while viewers
// watch and clients poll through nginx: the viewers reconnect through
// nginx to the other, as the page's EventSource does, and keep getting
// changes up to the final totals; /results never goes back.
func TestNginxFailover(t *testing.T) {
	s := startServeTier(t, testSeed+22, 2)
	const n = 100
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vs := make([]*viewer, n)
	for i := range vs {
		vs[i] = watch(ctx, t, s.proxy, true)
	}
	waitFirstEvents(t, vs)
	for _, addr := range s.webAt {
		if n := requestsTo(t, addr, "/events"); n < 10 {
			t.Errorf("%s got %.0f of the %d viewers: nginx does not balance them", addr, n, len(vs))
		}
	}
	polled := make(chan []string, 1)
	go func() { polled <- pollResults(ctx, s.proxy, s.truth.Counted) }()
	prod := s.produce(t, 15)

	// Kill the replica /results is fetched from: the harder case.
	time.Sleep(4 * time.Second)
	victim := 0
	if requestsTo(t, s.webAt[1], "/results") > requestsTo(t, s.webAt[0], "/results") {
		victim = 1
	}
	before := countedNow(vs)
	s.web[victim].Signal(syscall.SIGKILL)
	t.Logf("SIGKILLed %s with the viewers at %d votes", s.webAt[victim], before)
	if before >= s.truth.Counted {
		t.Error("everything was counted before the kill: the test watches no failover")
	}

	if err := prod.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	waitFinal(t, vs, s.truth.Counted, time.Minute)
	reconnected := 0
	for i, v := range vs {
		// At the final totals: it kept updating after the kill.
		v.checkFinal(t, fmt.Sprintf("viewer %d", i), &s.truth)
		if v.connects() > 1 {
			reconnected++
		}
	}
	t.Logf("%d of %d viewers reconnected", reconnected, n)
	if reconnected == 0 {
		t.Error("no viewer reconnected: none was on the killed replica")
	}
	if errs := <-polled; len(errs) > 0 {
		t.Errorf("/results through nginx: %d bad answers, the first: %s", len(errs), errs[0])
	}
	final := waitResults(context.Background(), t, s.proxy, s.truth.Counted, 10*time.Second)
	checkResults(t, "/results through nginx after the kill", &final, &s.truth)
}

// pollResults fetches base's /results every 50ms until it counts want
// votes or ctx ends, and returns what was wrong: errors, or a count that
// went back.
func pollResults(ctx context.Context, base string, want int64) []string {
	client := &http.Client{}
	var errs []string
	var last int64
	for ctx.Err() == nil && last < want {
		r, err := fetchResults(ctx, client, base)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case r.Counted < last:
			errs = append(errs, fmt.Sprintf("went back from %d to %d votes", last, r.Counted))
		default:
			last = r.Counted
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errs
}

// fetchResults gets and decodes base's /results.
func fetchResults(ctx context.Context, client *http.Client, base string) (results.Results, error) {
	var r results.Results
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/results", nil)
	if err != nil {
		return r, err
	}
	res, err := client.Do(req)
	if err != nil {
		return r, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return r, err
	}
	if res.StatusCode != http.StatusOK {
		return r, fmt.Errorf("status %d: %s", res.StatusCode, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("not results: %v", err)
	}
	var sum int64
	for _, c := range r.Candidates {
		sum += c.Votes
	}
	if sum != r.Counted {
		return r, fmt.Errorf("candidates' votes sum to %d, counted says %d", sum, r.Counted)
	}
	return r, nil
}

// viewer is a live page's event stream, read as the page's EventSource
// does: each event's data, and on reconnect a new stream.
type viewer struct {
	mu      sync.Mutex
	counted []int64 // of each event
	last    []byte  // the last event's data
	conns   int
	err     error
}

// watch opens base's /events and reads it in the background until ctx
// ends; with reconnect it opens it again whenever it ends, as
// EventSource does.
func watch(ctx context.Context, t *testing.T, base string, reconnect bool) *viewer {
	t.Helper()
	v := &viewer{}
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}}
	go func() {
		for ctx.Err() == nil {
			err := v.read(ctx, client, base+"/events")
			v.mu.Lock()
			v.err = err
			connected := v.conns > 0
			v.mu.Unlock()
			// Until a first stream opens, retry as EventSource does: on a
			// busy machine a connection may fail before anything counts.
			if !reconnect && connected {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return v
}

func (v *viewer) read(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	v.mu.Lock()
	v.conns++
	v.mu.Unlock()
	// Cheap enough for a thousand viewers under the race detector: the
	// count is read from its field; the last event is decoded at the end.
	key := []byte(`"counted":`)
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		i := bytes.Index(data, key)
		if i < 0 {
			return fmt.Errorf("an event without counted: %.80s", data)
		}
		digits := data[i+len(key):]
		n, err := strconv.ParseInt(string(digits[:max(bytes.IndexByte(digits, ','), 0)]), 10, 64)
		if err != nil {
			return fmt.Errorf("counted: %v", err)
		}
		v.mu.Lock()
		v.counted = append(v.counted, n)
		v.last = bytes.Clone(data)
		v.mu.Unlock()
	}
	return sc.Err()
}

// changes is the distinct counts seen, in order.
func (v *viewer) changes() []int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []int64
	for _, n := range v.counted {
		if len(out) == 0 || out[len(out)-1] != n {
			out = append(out, n)
		}
	}
	return out
}

func (v *viewer) connects() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.conns
}

func (v *viewer) lastCounted() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.counted) == 0 {
		return -1
	}
	return v.counted[len(v.counted)-1]
}

// checkFinal checks the viewer's last event against the truth.
func (v *viewer) checkFinal(t *testing.T, what string, want *results.Results) {
	t.Helper()
	v.mu.Lock()
	data := v.last
	v.mu.Unlock()
	var got results.Results
	if err := json.Unmarshal(data, &got); err != nil {
		t.Errorf("%s: last event: %v", what, err)
		return
	}
	checkResults(t, what, &got, want)
}

// waitFirstEvents waits until every viewer has an event.
func waitFirstEvents(t *testing.T, vs []*viewer) {
	t.Helper()
	waitViewers(t, vs, 2*time.Minute, "an event", func(v *viewer) bool { return v.lastCounted() >= 0 })
}

// waitFinal waits until every viewer's last event counts want votes.
func waitFinal(t *testing.T, vs []*viewer, want int64, timeout time.Duration) {
	t.Helper()
	waitViewers(t, vs, timeout, fmt.Sprintf("the final %d votes", want), func(v *viewer) bool { return v.lastCounted() == want })
}

func waitViewers(t *testing.T, vs []*viewer, timeout time.Duration, what string, ok func(*viewer) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		var example *viewer
		for _, v := range vs {
			if !ok(v) {
				missing++
				example = v
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			example.mu.Lock()
			defer example.mu.Unlock()
			t.Fatalf("%d of %d viewers without %s after %s; one saw %v (connections %d, error %v)",
				missing, len(vs), what, timeout, example.counted, example.conns, example.err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countedNow is the most votes any viewer has seen.
func countedNow(vs []*viewer) int64 {
	var n int64
	for _, v := range vs {
		n = max(n, v.lastCounted())
	}
	return n
}

// requestsTo is the replica's votestream_http_requests_total for path.
func requestsTo(t *testing.T, addr, path string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, ok, err := testbed.Requests(ctx, addr, path)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("%s has no votestream_http_requests_total{path=%q}", addr, path)
	}
	return n
}

// waitReady waits until the replica at addr answers /readyz with 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not ready after 30s (%v)", addr, err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceExactly replaces old with new in s, failing unless old occurs
// exactly n times: the test changes only what it names.
func replaceExactly(t *testing.T, s, old, new string, n int) string {
	t.Helper()
	if got := strings.Count(s, old); got != n {
		t.Fatalf("deploy/nginx: %q occurs %d times, want %d", old, got, n)
	}
	return strings.ReplaceAll(s, old, new)
}
