package promserver_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/votestream/votestream/deploy/promserver"
)

const alertsFile = "../prometheus/alerts.yml"

// Two deployments of votestream sharing one Prometheus. prod is in
// trouble in every way an alert knows; staging is healthy until its
// counters go at 25m. Their values differ everywhere, so a query that adds
// or compares across deployments gives another answer than either alone.
const (
	prod    = "prod"
	staging = "staging"
	span    = 40 // minutes of series
)

// series is one time series: its labels and its value at minute m, or no
// sample (ok false).
type series struct {
	name   string
	labels map[string]string
	at     func(m float64) (v float64, ok bool)
}

func always(f func(m float64) float64) func(float64) (float64, bool) {
	return func(m float64) (float64, bool) { return f(m), true }
}

func until(end float64, f func(m float64) float64) func(float64) (float64, bool) {
	return func(m float64) (float64, bool) { return f(m), m < end }
}

func constant(v float64) func(float64) float64 { return func(float64) float64 { return v } }

// deployment is the series of one namespace's targets.
func deployment(ns string) []series {
	var out []series
	add := func(target map[string]string, name string, at func(float64) (float64, bool), kv ...string) {
		l := map[string]string{}
		for k, v := range target {
			l[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		out = append(out, series{name, l, at})
	}
	target := func(app, instance string) map[string]string {
		return map[string]string{"namespace": ns, "job": app, "app_kubernetes_io_name": app, "instance": instance}
	}
	p := ns == prod
	pick := func(a, b float64) float64 {
		if p {
			return a
		}
		return b
	}

	// The producer: prod's stops at 20m unfinished; staging's publishes on.
	producerEnd := pick(20, span+1)
	pt := target("producer", ns+"-producer:9101")
	add(pt, "up", until(producerEnd, constant(1)))
	add(pt, "votestream_producer_votes_expected", until(producerEnd, constant(pick(2000, 5000))))
	add(pt, "votestream_producer_votes_published_total", until(producerEnd, func(m float64) float64 { return pick(1000, 100) * m }))
	add(pt, "votestream_producer_batches_total", until(producerEnd, func(m float64) float64 { return pick(10, 1) * m }))
	add(pt, "votestream_producer_done", until(producerEnd, constant(0)))

	// Counters: prod has two replicas, and a third Prometheus cannot
	// scrape; staging one, gone at 25m.
	counterEnd := pick(span+1, 25)
	replicas := []string{"c0"}
	if p {
		replicas = []string{"c0", "c1"}
		add(target("counter", ns+"-c2:9102"), "up", always(constant(0)))
	}
	for i, r := range replicas {
		ct := target("counter", ns+"-"+r+":9102")
		live := func(f func(float64) float64) func(float64) (float64, bool) { return until(counterEnd, f) }
		k := float64(i + 1)
		add(ct, "up", live(constant(1)))
		// prod's count is stuck from 5m; staging's grows.
		counted := func(m float64) float64 {
			if p {
				return min(m, 5)
			}
			return m
		}
		for _, v := range []struct {
			cand, state, age string
			per              float64
		}{
			{"Kamala Harris", "California", "18-25", pick(30, 7)},
			{"Donald J. Trump", "California", "60+", pick(10, 9)},
			{"Donald J. Trump", "Ohio", "41-60", pick(40, 3)},
		} {
			add(ct, "votestream_votes", live(func(m float64) float64 { return math.Round(v.per * k * counted(m)) }),
				"candidate", v.cand, "state", v.state, "age_group", v.age)
		}
		add(ct, "votestream_rejected_records", live(constant(pick(3, 1))), "reason", "json")
		// prod rejects on; staging's one rejection is old.
		add(ct, "votestream_counter_rejected_records_total", live(func(m float64) float64 { return pick(10*m, 1) }), "reason", "json")
		add(ct, "votestream_counter_records_total", live(func(m float64) float64 { return pick(6000, 3000) * k * m }))
		add(ct, "votestream_counter_batches_total", live(func(m float64) float64 { return pick(60, 30) * m }))
		// A rebalance at 15.5, 16.5 and 17.5 minutes in prod: each replica
		// counts each one.
		add(ct, "votestream_counter_rebalances_total", live(func(m float64) float64 {
			n := 1.0
			for _, at := range []float64{15.5, 16.5, 17.5} {
				if p && m >= at {
					n++
				}
			}
			return n
		}))
		for _, b := range []struct {
			le       string
			pro, stg float64
		}{{"0.05", 60, 10}, {"0.1", 120, 20}, {"+Inf", 120, 40}} {
			add(ct, "votestream_counter_batch_duration_seconds_bucket", live(func(m float64) float64 { return pick(b.pro, b.stg) * m }), "le", b.le)
		}
		add(ct, "votestream_counter_batch_duration_seconds_sum", live(func(m float64) float64 { return pick(6, 8) * m }))
		add(ct, "votestream_counter_batch_duration_seconds_count", live(func(m float64) float64 { return pick(120, 40) * m }))
		owned := pick(6, 12)
		add(ct, "votestream_counter_partitions_owned", live(constant(owned)))
		for q := range int(owned) {
			part := q + i*int(owned)
			w := float64(part + 1)
			// prod's lag grows, staging's falls.
			add(ct, "votestream_counter_partition_lag_records", live(func(m float64) float64 {
				return pick(w*(1000+100*m), w*(50000-1000*m))
			}), "partition", fmt.Sprint(part))
		}
		// prod's first replica stops reading its first partition at 10m.
		add(ct, "votestream_counter_partition_reader_stopped", live(func(m float64) float64 {
			if p && i == 0 && m >= 10 {
				return 1
			}
			return 0
		}), "partition", fmt.Sprint(i*int(owned)))
		// Its second replica's checkpoints of one partition fail from 8m.
		if p && i == 1 {
			add(ct, "votestream_counter_partition_stuck_seconds", live(func(m float64) float64 { return max(0, 60*(m-8)) }),
				"partition", fmt.Sprint(int(owned)), "error", "write checkpoint: [10] Message Size Too Large")
		}
		// The whole election, the same from every replica.
		add(ct, "votestream_electoral_votes", live(constant(pick(54, 10))), "replica", r, "candidate", "Kamala Harris", "status", "won")
		add(ct, "votestream_electoral_votes", live(constant(pick(17, 3))), "replica", r, "candidate", "Donald J. Trump", "status", "leading")
		add(ct, "votestream_state_called", live(constant(1)), "replica", r, "state", "California")
		add(ct, "votestream_state_called", live(constant(pick(0, 1))), "replica", r, "state", "Ohio")
		add(ct, "votestream_election_view_age_seconds", live(constant(pick(0.4, 1.5))), "replica", r)
		add(ct, "votestream_election_states_called", live(constant(pick(20, 5))), "replica", r)
		add(ct, "votestream_election_clock_seconds", live(constant(pick(nightClock, nightClock-2*3600))), "replica", r)
		add(ct, "votestream_election_polls_closed_states", live(constant(pick(42, 30))), "replica", r)
		add(ct, "votestream_election_producers", live(constant(pick(2, 1))), "replica", r)
		add(ct, "votestream_election_votes_over_expected", live(constant(0)), "replica", r)
		add(ct, "votestream_state_reporting_ratio", live(func(m float64) float64 { return pick(0.12*min(m, 5), m/(span+5)) }), "replica", r, "state", "Ohio")
		add(ct, "votestream_state_reporting_ratio", live(constant(pick(1, 0.5))), "replica", r, "state", "California")
	}
	return out
}

// openMetrics writes the series as OpenMetrics text with a sample every 15s
// from start for span minutes, each metric's series together.
func openMetrics(start time.Time, ss ...[]series) []byte {
	var all []series
	for _, s := range ss {
		all = append(all, s...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].name < all[j].name })
	var b strings.Builder
	for _, s := range all {
		keys := make([]string, 0, len(s.labels))
		for k := range s.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = fmt.Sprintf("%s=%q", k, s.labels[k])
		}
		for step := 0; step <= span*4; step++ {
			m := float64(step) / 4
			if v, ok := s.at(m); ok {
				ts := start.Add(time.Duration(step) * 15 * time.Second)
				fmt.Fprintf(&b, "%s{%s} %g %d\n", s.name, strings.Join(pairs, ","), v, ts.Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	return []byte(b.String())
}

// sampleSet keys samples by their labels.
type sampleSet map[string]float64

func toSet(t *testing.T, samples []promserver.Sample) sampleSet {
	t.Helper()
	set := sampleSet{}
	for _, s := range samples {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%q,", k, s.Labels[k])
		}
		set[b.String()] = s.Value
	}
	return set
}

func equalSets(a, b sampleSet) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !(x == y || math.IsNaN(x) && math.IsNaN(y) || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))) {
			return false
		}
	}
	return true
}

// alertRules reads the alert names and expressions of alerts.yml.
func alertRules(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				rules[r.Alert] = r.Expr
			}
		}
	}
	return rules
}

// TestDeploymentsApart runs every alert rule and every dashboard query
// against a real Prometheus holding two deployments' series, and against
// one holding each deployment alone: what the shared one answers is
// exactly what the two alone answer, so neither deployment's series add
// to, hide or silence the other's.
func TestDeploymentsApart(t *testing.T) {
	start := time.Now().Add(-(span + 2) * time.Minute).Truncate(time.Minute)
	at := func(m float64) time.Time { return start.Add(time.Duration(m * float64(time.Minute))) }
	prodSeries, stagingSeries := deployment(prod), deployment(staging)
	shared := promserver.StartWithData(t, openMetrics(start, prodSeries, stagingSeries))
	alone := map[string]*promserver.Prometheus{
		prod:    promserver.StartWithData(t, openMetrics(start, prodSeries)),
		staging: promserver.StartWithData(t, openMetrics(start, stagingSeries)),
	}
	query := func(t *testing.T, p *promserver.Prometheus, expr string, m float64) sampleSet {
		t.Helper()
		samples, err := p.QueryAt(expr, at(m))
		if err != nil {
			t.Fatal(err)
		}
		return toSet(t, samples)
	}

	t.Run("alert rules", func(t *testing.T) {
		// The minutes of prod's stuck count (12), its producer gone (27)
		// and staging's counters gone (35).
		fires := map[string]bool{}
		for alert, expr := range alertRules(t) {
			for _, m := range []float64{12, 27, 35} {
				union := sampleSet{}
				for ns, p := range alone {
					for k, v := range query(t, p, expr, m) {
						if !strings.Contains(k, `namespace="`+ns+`"`) {
							t.Errorf("%s at %gm: %s alone gives {%s} without its namespace: the rule must keep the namespace label", alert, m, ns, k)
						}
						union[k] = v
					}
				}
				got := query(t, shared, expr, m)
				if !equalSets(got, union) {
					t.Errorf("%s at %gm: shared Prometheus gives %v, the deployments alone %v", alert, m, got, union)
				}
				fires[alert] = fires[alert] || len(union) > 0
			}
		}
		for alert := range alertRules(t) {
			if !fires[alert] {
				// Not a failure of the rule: the test's series do not make it
				// fire, so its split is unchecked. Give deployment() series
				// that do.
				t.Errorf("%s fires in neither deployment at any minute tested: its split is untested; extend deployment()", alert)
			}
		}
	})

	t.Run("dashboard queries", func(t *testing.T) {
		const m = 18 // both deployments fully up
		for _, ns := range []string{prod, staging} {
			targets, err := promserver.DashboardTargetsIn(dashboard, ns)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range targets {
				want := query(t, alone[ns], tg.Expr, m)
				if len(want) == 0 {
					t.Errorf("%s: panel %q query %s: no data", ns, tg.Panel, tg.RefID)
					continue
				}
				if got := query(t, shared, tg.Expr, m); !equalSets(got, want) {
					t.Errorf("%s: panel %q query %s: shared Prometheus gives %v, %s alone %v", ns, tg.Panel, tg.RefID, got, ns, want)
				}
			}
		}
	})

	t.Run("panel values", func(t *testing.T) {
		targets, err := promserver.DashboardTargetsIn(dashboard, prod)
		if err != nil {
			t.Fatal(err)
		}
		value := func(panel string) float64 {
			t.Helper()
			i := slices.IndexFunc(targets, func(tg promserver.Target) bool { return tg.Panel == panel })
			if i < 0 {
				t.Fatalf("no panel %q", panel)
			}
			set := query(t, shared, targets[i].Expr, 18)
			if len(set) != 1 {
				t.Fatalf("panel %q: %v, want one value", panel, set)
			}
			for _, v := range set {
				return v
			}
			return 0
		}
		// Three rebalances in the range, each counted by both replicas:
		// about 3 (increase extrapolates to the range's ends), not 6.
		if got := value("Rebalances"); math.Abs(got-3) > 0.5 {
			t.Errorf("Rebalances: got %v, want about 3, one per rebalance", got)
		}
		if got := value("Counter replicas"); got != 2 {
			t.Errorf("Counter replicas: got %v, want prod's 2", got)
		}
	})
}

// TestAnnotationScrapeLabels runs the annotation scrape job that
// docs/kubernetes.md gives, with file discovery standing in for
// Kubernetes' (the same __meta_kubernetes_* labels): the targets get the
// labels the rules read, and the `up` rules see one counter up and one
// down, in their namespace.
func TestAnnotationScrapeLabels(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	_, job, ok := strings.Cut(string(doc), "```yaml\n- job_name: kubernetes-pods\n")
	job, _, _ = strings.Cut(job, "```")
	const k8sSD = "kubernetes_sd_configs: [{role: pod}]"
	if !ok || !strings.Contains(job, k8sSD) {
		t.Fatal("docs/kubernetes.md: no kubernetes-pods job with " + k8sSD)
	}
	upAddr := serve(t, func(int) string { return "votestream_counter_partitions_owned 6\n" })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := l.Addr().String()
	l.Close() // nothing listens: its scrapes fail
	pod := func(addr, name string) string {
		// Discovery gives the pod IP with a container port; the annotation
		// names the metrics port.
		host, port, _ := net.SplitHostPort(addr)
		return fmt.Sprintf(`{"targets": [%q], "labels": {
			"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
			"__meta_kubernetes_pod_annotation_prometheus_io_port": %q,
			"__meta_kubernetes_pod_label_app_kubernetes_io_name": "counter",
			"__meta_kubernetes_namespace": "prod",
			"__meta_kubernetes_pod_name": %q}}`, host+":1", port, name)
	}
	sd := filepath.Join(t.TempDir(), "pods.json")
	if err := os.WriteFile(sd, []byte("["+pod(upAddr, "counter-up")+","+pod(downAddr, "counter-down")+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	job = strings.Replace(job, k8sSD, fmt.Sprintf("file_sd_configs: [{files: [%q]}]", sd), 1)
	// StartJobs takes the items of scrape_configs indented by 2.
	items := "  - job_name: kubernetes-pods\n" + strings.ReplaceAll("  "+strings.TrimSuffix(job, "\n"), "\n", "\n  ") + "\n"
	p := promserver.StartJobs(t, items, []string{upAddr})
	if _, err := p.WaitForData(context.Background(), `up{pod="counter-down"} == 0`, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rules := alertRules(t)
	for _, tc := range []struct {
		alert string
		want  []string // pods it names
	}{
		{"VotestreamCounterDown", []string{"counter-down"}},
		{"VotestreamNoCounter", nil},
	} {
		samples, err := p.QueryVector(rules[tc.alert])
		if err != nil {
			t.Fatal(err)
		}
		var pods []string
		for _, s := range samples {
			if s.Labels["namespace"] != "prod" {
				t.Errorf("%s: %v has no namespace prod", tc.alert, s.Labels)
			}
			pods = append(pods, s.Labels["pod"])
		}
		if tc.want == nil && len(samples) > 0 || tc.want != nil && !slices.Equal(pods, tc.want) {
			t.Errorf("%s: got %v, want pods %v", tc.alert, samples, tc.want)
		}
	}
}
