// Package promserver runs a real Prometheus server for tests: it scrapes the
// targets a test gives it, and runs the queries of votestream's Grafana
// dashboard against what it scraped, so a dashboard that does not parse, or
// asks for a metric the services do not export, fails a test instead of
// showing "No data" on election night.
//
// It needs the prometheus binary (Debian's package `prometheus`, or the
// PROMETHEUS_BIN variable). Without it, Start skips the test, unless the
// CI variable is set: there a missing binary is a failure.
package promserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
)

// Timeouts for every wait in this package; none is unbounded.
const (
	readyTimeout  = time.Minute // a first start on a cold disk is slow
	scrapeTimeout = 30 * time.Second
	stopTimeout   = 10 * time.Second
	queryTimeout  = 10 * time.Second
)

// Job is the job label of every target Start scrapes.
const Job = "votestream"

// Namespace is the namespace label of every target Start scrapes, as on
// Kubernetes, and the deployment the dashboard's queries select by default.
const Namespace = "votestream"

// Prometheus is a running Prometheus server owned by one test.
type Prometheus struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string

	targets []string
	client  *http.Client
}

// Sample is one series of a query's result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Binary returns the path of the prometheus binary: $PROMETHEUS_BIN, or
// prometheus on PATH. When there is none it skips t, or fails it when the
// CI variable is set.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("PROMETHEUS_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		MissingTool(t, "prometheus")
	}
	return bin
}

// MissingTool skips t because tool is not installed, or fails it under CI,
// where every tool must be there.
func MissingTool(t testing.TB, tool string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found on PATH; CI must install it (apt-get install -y prometheus)", tool)
	}
	t.Skipf("%s not found on PATH; install it with apt-get install -y prometheus", tool)
}

// Start runs Prometheus on a free 127.0.0.1 port, scraping every target
// (host:port, serving /metrics) every 2 s under job "votestream", and
// waits until it has scraped every target successfully. The server stops
// when the test ends; if the test failed, its log is printed.
func Start(t testing.TB, targets []string) *Prometheus {
	t.Helper()
	p := Launch(t, targets)
	p.WaitUp(t)
	return p
}

// Launch is Start without the wait for the targets: for a test that starts
// Prometheus before the processes it scrapes, so that even a short-lived
// one (the producer exits when it is done) is scraped from its first
// second. Call WaitUp once the processes listen.
func Launch(t testing.TB, targets []string) *Prometheus {
	t.Helper()
	if len(targets) == 0 {
		t.Fatal("promserver: no targets")
	}
	return launch(t, configYAML(targets), targets, nil)
}

// StartWithData runs Prometheus, scraping nothing, on a database filled
// with the samples of openMetrics (the OpenMetrics text format, with
// timestamps, ending in "# EOF") by promtool's backfill: a test that
// queries it at chosen times (QueryAt) gets the same answer every run.
func StartWithData(t testing.TB, openMetrics []byte) *Prometheus {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		MissingTool(t, "promtool")
	}
	input := filepath.Join(t.TempDir(), "series.om")
	if err := os.WriteFile(input, openMetrics, 0o600); err != nil {
		t.Fatal(err)
	}
	backfill := func(data string) error {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", input, data).CombinedOutput()
		if err != nil {
			return fmt.Errorf("promtool tsdb create-blocks-from openmetrics: %w\n%s", err, out)
		}
		return nil
	}
	return launch(t, []byte("global:\n  evaluation_interval: 1m\n"), nil, backfill)
}

// StartJobs is Start with the caller's own scrape jobs (the items of
// scrape_configs, as YAML, each line indented by 2), for targets that need
// TLS or auth; it waits until the targets in up are scraped.
func StartJobs(t testing.TB, jobs string, up []string) *Prometheus {
	t.Helper()
	p := launch(t, []byte("global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n"+jobs), up, nil)
	p.WaitUp(t)
	return p
}

// launch starts Prometheus with configText; prepare, when not nil, fills
// each data directory before Prometheus opens it.
func launch(t testing.TB, configText []byte, targets []string, prepare func(data string) error) *Prometheus {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, configText, 0o600); err != nil {
		t.Fatal(err)
	}

	// A port picked by the kernel can be taken again before Prometheus binds
	// it; another port fixes that, a few tries bound it.
	var lastErr error
	for try := 0; try < 3; try++ {
		data := filepath.Join(dir, fmt.Sprintf("data%d", try))
		if prepare != nil {
			if err := prepare(data); err != nil {
				t.Fatal(err)
			}
		}
		p, err := start(t, bin, config, data, targets)
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, config, data string, targets []string) (*Prometheus, error) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var log testbed.Buffer
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout = &log
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	// exited closes when Prometheus has exited, with waitErr set: closed,
	// not sent on, so that both waitReady and stop see it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	p := &Prometheus{
		URL:     "http://" + addr,
		targets: targets,
		client:  &http.Client{Timeout: queryTimeout},
	}
	if err := p.waitReady(exited, func() error { return waitErr }); err != nil {
		stop()
		return nil, fmt.Errorf("%w\n%s", err, log.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	return p, nil
}

func configYAML(targets []string) []byte {
	var b bytes.Buffer
	b.WriteString("global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  evaluation_interval: 1s\n")
	b.WriteString("scrape_configs:\n  - job_name: " + Job + "\n    static_configs:\n      - targets:\n")
	for _, tg := range targets {
		b.WriteString("          - " + strconv.Quote(tg) + "\n")
	}
	b.WriteString("        labels:\n          namespace: " + Namespace + "\n")
	return b.Bytes()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls /-/ready until Prometheus answers 200, exits, or
// readyTimeout passes.
func (p *Prometheus) waitReady(exited <-chan struct{}, waitErr func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("prometheus exited before it was ready: %v", waitErr())
		default:
		}
		resp, err := p.client.Get(p.URL + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("prometheus not ready after %s", readyTimeout)
}

// WaitUp waits until Prometheus has scraped every target successfully, or
// fails t after 30s.
func (p *Prometheus) WaitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(scrapeTimeout)
	var last string
	for time.Now().Before(deadline) {
		var res struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := p.get("/api/v1/targets", nil, &res); err != nil {
			last = err.Error()
		} else {
			up := 0
			var bad []string
			for _, tg := range res.ActiveTargets {
				if tg.Health == "up" {
					up++
				} else {
					bad = append(bad, fmt.Sprintf("%s: %s %s", tg.ScrapeURL, tg.Health, tg.LastError))
				}
			}
			if up == len(p.targets) {
				return
			}
			last = fmt.Sprintf("%d of %d targets up; %s", up, len(p.targets), strings.Join(bad, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus: targets not scraped after %s: %s", scrapeTimeout, last)
}

// QueryVector runs expr as an instant query at the current time and returns
// its samples; a scalar result is one sample without labels.
func (p *Prometheus) QueryVector(expr string) ([]Sample, error) {
	return p.QueryAt(expr, time.Time{})
}

// QueryAt is QueryVector evaluated at time at (now when at is zero).
func (p *Prometheus) QueryAt(expr string, at time.Time) ([]Sample, error) {
	var res struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	q := url.Values{"query": {expr}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	if err := p.get("/api/v1/query", q, &res); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch res.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(res.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: decode vector: %w", expr, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, s := range vec {
			v, err := parseValue(s.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			out = append(out, Sample{Labels: s.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var pair [2]any
		if err := json.Unmarshal(res.Result, &pair); err != nil {
			return nil, fmt.Errorf("query %q: decode scalar: %w", expr, err)
		}
		v, err := parseValue(pair)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		return []Sample{{Labels: map[string]string{}, Value: v}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %q, want vector or scalar", expr, res.ResultType)
	}
}

// Query runs expr and returns its only value; any other number of samples
// fails t.
func (p *Prometheus) Query(t testing.TB, expr string) float64 {
	t.Helper()
	samples, err := p.QueryVector(expr)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 1 {
		t.Fatalf("query %q: got %d samples %v, want 1", expr, len(samples), samples)
	}
	return samples[0].Value
}

// WaitForData runs expr until it returns at least one sample with a number
// (not NaN), or timeout passes, and returns the last result. A rate needs
// two scrapes, so a query can be empty for a second or two after Start.
func (p *Prometheus) WaitForData(ctx context.Context, expr string, timeout time.Duration) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		samples, err := p.QueryVector(expr)
		if err != nil {
			return nil, err // a query that does not parse will not start to
		}
		if hasNumber(samples) {
			return samples, nil
		}
		select {
		case <-ctx.Done():
			if len(samples) == 0 {
				return samples, fmt.Errorf("query %q: no data after %s", expr, timeout)
			}
			return samples, fmt.Errorf("query %q: only NaN after %s: %v", expr, timeout, samples)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// CheckDashboard runs every query of the Grafana dashboard at path and fails
// t for each that does not return data within timeout (one deadline for all
// of them), or that returns series per replica: counters export only the
// partitions they own, so every panel must aggregate over replicas. A query
// may keep the instance label only when it says `by (instance)`: a panel
// that is per replica on purpose.
func (p *Prometheus) CheckDashboard(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	targets, err := DashboardTargets(path)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for _, tg := range targets {
		left := time.Until(deadline)
		if left < time.Second {
			left = time.Second // every query still gets one honest try
		}
		samples, err := p.WaitForData(context.Background(), tg.Expr, left)
		if err != nil {
			t.Errorf("panel %q query %s: %v", tg.Panel, tg.RefID, err)
			continue
		}
		if !strings.Contains(tg.Expr, "by (instance)") {
			for _, s := range samples {
				if _, ok := s.Labels["instance"]; ok {
					t.Errorf("panel %q query %s: series %v keeps the instance label: sum over replicas", tg.Panel, tg.RefID, s.Labels)
					break
				}
			}
		}
	}
}

func (p *Prometheus) get(path string, q url.Values, into any) error {
	u := p.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := p.client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: decode: %w", resp.Status, err)
	}
	if env.Status != "success" {
		return errors.New(env.Error)
	}
	return json.Unmarshal(env.Data, into)
}

func parseValue(pair [2]any) (float64, error) {
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", pair[1])
	}
	return strconv.ParseFloat(s, 64)
}

func hasNumber(samples []Sample) bool {
	for _, s := range samples {
		if !math.IsNaN(s.Value) {
			return true
		}
	}
	return false
}

// ScrapeState is what Prometheus says of one target it scrapes.
type ScrapeState struct {
	Job, ScrapeURL, Health, LastError string
}

// ScrapeStates lists the targets Prometheus scrapes and how their last
// scrape went.
func (p *Prometheus) ScrapeStates() ([]ScrapeState, error) {
	var res struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			ScrapeURL string            `json:"scrapeUrl"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := p.get("/api/v1/targets", nil, &res); err != nil {
		return nil, err
	}
	var out []ScrapeState
	for _, tg := range res.ActiveTargets {
		out = append(out, ScrapeState{tg.Labels["job"], tg.ScrapeURL, tg.Health, tg.LastError})
	}
	return out, nil
}
