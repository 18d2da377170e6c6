package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// testViewers is how many viewers watch the count in TestViewers.
const testViewers = 1000

// rawViewer is a live-page viewer on a raw connection, cheap enough for a
// thousand in one test: it reads the plain event stream and keeps, of each
// event, the votes counted, and the events with the final count by hash.
type rawViewer struct {
	conn    net.Conn
	counted []int64
	final   map[uint64][]byte // data of the events with the final count, by hash
	err     error
	last    time.Time // when the last event came
}

func dialViewer(addr string, control func(network, address string, c syscall.RawConn) error) (*rawViewer, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: control}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: e2e\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	return &rawViewer{conn: c, final: map[uint64][]byte{}}, nil
}

// read reads events until the connection ends, keeping the data of those
// with want votes counted.
func (v *rawViewer) read(want int64, mu *sync.Mutex) {
	br := bufio.NewReaderSize(v.conn, 64<<10)
	key := []byte(`"counted":`)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			v.err = fmt.Errorf("an event longer than 64 KiB")
			return
		}
		if err != nil {
			v.err = err
			return
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		i := bytes.Index(data, key)
		if i < 0 {
			continue
		}
		digits := data[i+len(key):]
		digits = digits[:bytes.IndexByte(digits, ',')]
		n, _ := strconv.ParseInt(string(digits), 10, 64)
		mu.Lock()
		v.counted = append(v.counted, n)
		v.last = time.Now()
		if n == want {
			h := fnv.New64a()
			h.Write(data)
			if _, ok := v.final[h.Sum64()]; !ok {
				v.final[h.Sum64()] = bytes.Clone(data)
			}
		}
		mu.Unlock()
	}
}

// smallReceiveBuffer makes a viewer's socket buffer tiny, so that a viewer
// that stops reading stalls the server's writes within a few events.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	if err != nil {
		return err
	}
	return serr
}

// TestViewers counts an election while a thousand viewers watch /events:
// each must get updates and the final totals, exact; one viewer that stops
// reading is dropped while the others go on; past HTTP_MAX_VIEWERS /events
// answers 503 with Retry-After while /results still answers, with an ETag
// that gives 304; only GET and HEAD are served, unknown paths are 404.
func TestViewers(t *testing.T) {
	bin := Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	broker := StartBroker(t)
	env := NewEnv(t, broker, 12)
	cfg := votegen.Config{Seed: testSeed + 11, Scale: liveScale}
	truth := truthResults(t, cfg)
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counter := Start(t, "counter", bin.Counter, env.Vars("REPLICA_ID=a", "SCALE="+strconv.FormatFloat(liveScale, 'f', -1, 64),
		"BATCH_MAX_WAIT=200ms", fmt.Sprintf("HTTP_MAX_VIEWERS=%d", testViewers+1))...)
	addr := counter.MetricsAddr(t)

	// The viewers and the stalled one, the limit reached.
	var mu sync.Mutex
	viewers := make([]*rawViewer, testViewers)
	var wg sync.WaitGroup
	defer func() {
		for _, v := range viewers {
			if v != nil {
				v.conn.Close()
			}
		}
		wg.Wait()
	}()
	for i := range viewers {
		v, err := dialViewer(addr, nil)
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		viewers[i] = v
		wg.Go(func() { v.read(truth.Counted, &mu) })
	}
	stalled, err := dialViewer(addr, smallReceiveBuffer)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.conn.Close()
	waitMetric(ctx, t, addr, "votestream_http_viewers", testViewers+1, 30*time.Second)
	checkRefused(ctx, t, addr)
	checkETag(ctx, t, addr)
	checkMethods(ctx, t, addr)

	prod := Start(t, "producer", bin.Producer, env.Vars(
		"SEED="+strconv.Itoa(testSeed+11), "SCALE="+strconv.FormatFloat(liveScale, 'f', -1, 64),
		"VOTES_PER_BATCH=10000", "BATCH_INTERVAL=300ms", "OUTPUT_DIR=")...)
	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	counted := WaitCounted(t, func() []string { return []string{addr} }, env.Partitions, want.Total(), time.Second, time.Minute)
	CheckTally(t, "counter", &counted.Tally, &want)

	// The stalled viewer is dropped within its 10 s bound once its buffers
	// are full (a few events); the others go on, and one can take its place.
	dropAt := waitMetric(ctx, t, addr, "votestream_http_viewers_dropped_total", 1, time.Minute)
	time.Sleep(3 * time.Second) // a few more events for everyone
	res, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/events after the stalled viewer was dropped: %s, want 200", res.Status)
	}

	mu.Lock()
	defer mu.Unlock()
	finals := map[uint64][]byte{}
	for i, v := range viewers {
		if len(v.counted) < 3 || v.counted[len(v.counted)-1] != truth.Counted || !v.last.After(dropAt) {
			t.Fatalf("viewer %d: %d events, last %v at %s (the drop at %s); want updates, the final %d, after the drop (err %v)",
				i, len(v.counted), v.counted[max(0, len(v.counted)-1):], v.last, dropAt, truth.Counted, v.err)
		}
		for h, d := range v.final {
			finals[h] = d
		}
	}
	// Every distinct final event any viewer got is the exact truth.
	for _, d := range finals {
		var got results.Results
		if err := json.Unmarshal(d, &got); err != nil {
			t.Fatal(err)
		}
		checkResults(t, "final event", &got, &truth)
	}
	t.Logf("%d viewers each got %d to %d events and the final totals (%d distinct final events, all exact); the stalled one was dropped",
		testViewers, minEvents(viewers), maxEvents(viewers), len(finals))
}

func minEvents(vs []*rawViewer) int {
	n := len(vs[0].counted)
	for _, v := range vs {
		n = min(n, len(v.counted))
	}
	return n
}

func maxEvents(vs []*rawViewer) int {
	n := 0
	for _, v := range vs {
		n = max(n, len(v.counted))
	}
	return n
}

// waitMetric waits until a counter's metric (one sample, no labels) reaches
// want, and returns when it did.
func waitMetric(ctx context.Context, t *testing.T, addr, name string, want float64, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var got float64
	for {
		if fams, err := testbed.Metrics(ctx, addr); err == nil && fams[name] != nil {
			m := fams[name].GetMetric()[0]
			got = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if got >= want {
				return time.Now()
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s is %v after %s, want %v", name, got, timeout, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkRefused asks for one stream past the limit: 503 with Retry-After.
func checkRefused(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("/events past HTTP_MAX_VIEWERS: %s, Retry-After %q; want 503 and a Retry-After", res.Status, res.Header.Get("Retry-After"))
	}
	waitMetric(ctx, t, addr, "votestream_http_viewers_refused_total", 1, 10*time.Second)
}

// checkETag gets /results twice, the second time with the first's ETag:
// 304, unless the results changed in between (they change at most once a
// second: a few tries see the same frame).
func checkETag(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	for try := 0; try < 10; try++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/results", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		etag := res.Header.Get("ETag")
		if res.StatusCode != http.StatusOK || etag == "" {
			t.Fatalf("/results: %s, ETag %q", res.Status, etag)
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/results", nil)
		req.Header.Set("If-None-Match", etag)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNotModified {
			return
		}
	}
	t.Error("/results never answered 304 to If-None-Match with its ETag")
}

// checkMethods: anything but GET and HEAD is 405, an unknown path 404.
func checkMethods(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/results", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodHead, "/results", http.StatusOK},
		{http.MethodGet, "/no-such-page", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, "http://"+addr+tc.path, bytes.NewReader([]byte("ignored")))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, res.Status, tc.status)
		}
	}
}
