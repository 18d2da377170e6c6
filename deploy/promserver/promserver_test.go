package promserver_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/votestream/votestream/deploy/promserver"
)

const dashboard = "../grafana/dashboards/election.json"

// vote is one votestream_votes series of a fake counter replica.
type vote struct {
	candidate, state, age string
	n                     int
}

// Two fake replicas that split the partitions, so the same state and
// candidate appear on both: only a sum over replicas gives the right count.
var replicas = [2]struct {
	partitions []int
	votes      []vote
	rejected   map[string]int
}{
	{
		partitions: []int{0, 1, 2, 3, 4, 5},
		votes: []vote{
			{"Kamala Harris", "California", "18-25", 300},
			{"Donald J. Trump", "California", "60+", 100},
			{"Donald J. Trump", "Ohio", "41-60", 400},
			{"Jill Stein", "Vermont", "18-25", 7},
		},
		rejected: map[string]int{"json": 2},
	},
	{
		partitions: []int{6, 7, 8, 9, 10, 11},
		votes: []vote{
			{"Kamala Harris", "California", "26-40", 200},
			{"Donald J. Trump", "California", "60+", 250},
			{"Kamala Harris", "Ohio", "26-40", 380},
		},
		rejected: map[string]int{"duplicate": 1},
	},
}

const totalVotes = 300 + 100 + 400 + 7 + 200 + 250 + 380

var reasons = []string{"empty", "oversized", "json", "field", "type", "vote_id", "timestamp", "state", "candidate", "age_group", "vote_count", "duplicate"}

// counterMetrics is what replica i exports at its n-th scrape: gauges fixed,
// counters growing with n so that rates are positive.
func counterMetrics(i, n int) string {
	r := replicas[i]
	var b strings.Builder
	b.WriteString("# TYPE votestream_votes gauge\n")
	for _, v := range r.votes {
		fmt.Fprintf(&b, "votestream_votes{candidate=%q,state=%q,age_group=%q} %d\n", v.candidate, v.state, v.age, v.n)
	}
	b.WriteString("# TYPE votestream_rejected_records gauge\n")
	for _, reason := range reasons {
		fmt.Fprintf(&b, "votestream_rejected_records{reason=%q} %d\n", reason, r.rejected[reason])
	}
	b.WriteString("# TYPE votestream_counter_rejected_records_total counter\n")
	for _, reason := range reasons {
		fmt.Fprintf(&b, "votestream_counter_rejected_records_total{reason=%q} %d\n", reason, r.rejected[reason]*n)
	}
	fmt.Fprintf(&b, "# TYPE votestream_counter_records_total counter\nvotestream_counter_records_total %d\n", (100+20*i)*n)
	fmt.Fprintf(&b, "# TYPE votestream_counter_batches_total counter\nvotestream_counter_batches_total %d\n", n)
	fmt.Fprintf(&b, "# TYPE votestream_counter_rebalances_total counter\nvotestream_counter_rebalances_total %d\n", 1+n/5)
	b.WriteString("# TYPE votestream_counter_batch_duration_seconds histogram\n")
	fmt.Fprintf(&b, "votestream_counter_batch_duration_seconds_bucket{le=\"0.05\"} %d\n", n)
	fmt.Fprintf(&b, "votestream_counter_batch_duration_seconds_bucket{le=\"0.1\"} %d\n", 2*n)
	fmt.Fprintf(&b, "votestream_counter_batch_duration_seconds_bucket{le=\"+Inf\"} %d\n", 2*n)
	fmt.Fprintf(&b, "votestream_counter_batch_duration_seconds_sum %g\n", 0.1*float64(n))
	fmt.Fprintf(&b, "votestream_counter_batch_duration_seconds_count %d\n", 2*n)
	fmt.Fprintf(&b, "# TYPE votestream_counter_partitions_owned gauge\nvotestream_counter_partitions_owned %d\n", len(r.partitions))
	b.WriteString("# TYPE votestream_counter_partition_lag_records gauge\n")
	for _, p := range r.partitions {
		fmt.Fprintf(&b, "votestream_counter_partition_lag_records{partition=\"%d\"} %d\n", p, 10*p)
	}
	b.WriteString("# TYPE votestream_counter_partition_offset gauge\n")
	for _, p := range r.partitions {
		fmt.Fprintf(&b, "votestream_counter_partition_offset{partition=\"%d\"} %d\n", p, 100*n)
	}
	// The whole-election view: every replica exports the same values.
	replica := fmt.Sprintf("r%d", i)
	b.WriteString("# TYPE votestream_electoral_votes gauge\n")
	fmt.Fprintf(&b, "votestream_electoral_votes{candidate=\"Kamala Harris\",status=\"won\",replica=%q} 54\n", replica)
	fmt.Fprintf(&b, "votestream_electoral_votes{candidate=\"Donald J. Trump\",status=\"leading\",replica=%q} 17\n", replica)
	b.WriteString("# TYPE votestream_state_called gauge\n")
	fmt.Fprintf(&b, "votestream_state_called{state=\"California\",replica=%q} 1\n", replica)
	fmt.Fprintf(&b, "votestream_state_called{state=\"Ohio\",replica=%q} 0\n", replica)
	fmt.Fprintf(&b, "# TYPE votestream_election_view_age_seconds gauge\nvotestream_election_view_age_seconds{replica=%q} 0.4\n", replica)
	// An election night (ELECTION=2024): 9:36 p.m. EST, 42 states closed.
	fmt.Fprintf(&b, "# TYPE votestream_election_states_called gauge\nvotestream_election_states_called{replica=%q} 1\n", replica)
	fmt.Fprintf(&b, "# TYPE votestream_election_clock_seconds gauge\nvotestream_election_clock_seconds{replica=%q} %d\n", replica, nightClock)
	fmt.Fprintf(&b, "# TYPE votestream_election_polls_closed_states gauge\nvotestream_election_polls_closed_states{replica=%q} 42\n", replica)
	return b.String()
}

const electorate = 2000

// nightClock is 2024-11-06T02:36:00Z, 21:36 EST.
const nightClock = 1730860560

func producerMetrics(n int) string {
	published := min(100*n, electorate)
	done := 0
	if published == electorate {
		done = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE votestream_producer_votes_expected gauge\nvotestream_producer_votes_expected %d\n", electorate)
	fmt.Fprintf(&b, "# TYPE votestream_producer_votes_published_total counter\nvotestream_producer_votes_published_total %d\n", published)
	fmt.Fprintf(&b, "# TYPE votestream_producer_batches_total counter\nvotestream_producer_batches_total %d\n", published/100)
	fmt.Fprintf(&b, "# TYPE votestream_producer_done gauge\nvotestream_producer_done %d\n", done)
	b.WriteString("# TYPE votestream_producer_publish_duration_seconds histogram\n")
	fmt.Fprintf(&b, "votestream_producer_publish_duration_seconds_bucket{le=\"0.01\"} %d\n", n)
	fmt.Fprintf(&b, "votestream_producer_publish_duration_seconds_bucket{le=\"+Inf\"} %d\n", n)
	fmt.Fprintf(&b, "votestream_producer_publish_duration_seconds_sum %g\n", 0.005*float64(n))
	fmt.Fprintf(&b, "votestream_producer_publish_duration_seconds_count %d\n", n)
	return b.String()
}

// serve starts a /metrics server whose body depends on how often it was
// scraped, and returns its host:port.
func serve(t *testing.T, body func(n int) string) string {
	t.Helper()
	var scrapes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, body(int(scrapes.Add(1))))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestDashboardAgainstPrometheus(t *testing.T) {
	p := promserver.Start(t, []string{
		serve(t, func(n int) string { return counterMetrics(0, n) }),
		serve(t, func(n int) string { return counterMetrics(1, n) }),
		serve(t, producerMetrics),
	})

	t.Run("every query returns data", func(t *testing.T) {
		p.CheckDashboard(t, dashboard, 30*time.Second)
	})

	targets, err := promserver.DashboardTargets(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	query := func(t *testing.T, panel, ref string) string {
		t.Helper()
		for _, tg := range targets {
			if tg.Panel == panel && tg.RefID == ref {
				return tg.Expr
			}
		}
		t.Fatalf("dashboard has no panel %q with query %s", panel, ref)
		return ""
	}

	t.Run("totals sum over replicas", func(t *testing.T) {
		for _, tc := range []struct {
			panel, ref string
			want       float64
		}{
			{"Total votes counted", "A", totalVotes},
			{"Counter replicas", "A", 2},
			{"Electorate", "A", electorate},
			{"Counted of the electorate", "A", float64(totalVotes) / electorate},
			{"Total lag", "A", 10 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11)},
			// Seconds into the day, Eastern: 21:36.
			{"Election night clock (ET)", "A", 21*3600 + 36*60},
			{"Polls closed", "A", 42},
		} {
			if got := p.Query(t, query(t, tc.panel, tc.ref)); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("%s: got %v, want %v", tc.panel, got, tc.want)
			}
		}
		samples, err := p.QueryVector(query(t, "Partitions owned per replica", "B"))
		if err != nil || len(samples) != 1 || samples[0].Value != 12 {
			t.Errorf("partitions owned by all replicas: got %v, %v; want 12", samples, err)
		}
	})

	t.Run("state table", func(t *testing.T) {
		byState := func(expr string) map[string]promserver.Sample {
			t.Helper()
			samples, err := p.QueryVector(expr)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]promserver.Sample{}
			for _, s := range samples {
				m[s.Labels["state"]] = s
			}
			return m
		}
		const table = "Leader and margin by state"
		leader := byState(query(t, table, "A"))
		votes := byState(query(t, table, "B"))
		margin := byState(query(t, table, "C"))
		share := byState(query(t, table, "D"))
		for _, tc := range []struct {
			state, leader       string
			votes, margin, frac float64
		}{
			// Harris 300+200 against Trump 100+250, each split over both replicas.
			{"California", "Kamala Harris", 850, 150, 150.0 / 850},
			{"Ohio", "Donald J. Trump", 780, 20, 20.0 / 780},
			// Unopposed: the margin is the leader's whole count.
			{"Vermont", "Jill Stein", 7, 7, 1},
		} {
			if got := leader[tc.state].Labels["candidate"]; got != tc.leader {
				t.Errorf("%s leader: got %q, want %q", tc.state, got, tc.leader)
			}
			if got := votes[tc.state].Value; got != tc.votes {
				t.Errorf("%s votes: got %v, want %v", tc.state, got, tc.votes)
			}
			if got := margin[tc.state].Value; got != tc.margin {
				t.Errorf("%s margin: got %v, want %v", tc.state, got, tc.margin)
			}
			if got := share[tc.state].Value; math.Abs(got-tc.frac) > 1e-9 {
				t.Errorf("%s margin share: got %v, want %v", tc.state, got, tc.frac)
			}
		}
		if len(leader) != 3 {
			t.Errorf("leader rows: got %d states, want 3: %v", len(leader), leader)
		}
	})
}

func TestDashboardTargets(t *testing.T) {
	targets, err := promserver.DashboardTargets(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tg := range targets {
		if strings.Contains(tg.Expr, "$") {
			t.Errorf("panel %q: variable left in %q", tg.Panel, tg.Expr)
		}
		if !strings.Contains(tg.Expr, "votestream_") {
			t.Errorf("panel %q query %s: reads no votestream metric: %q", tg.Panel, tg.RefID, tg.Expr)
		}
		seen[tg.Panel] = true
	}
	// The panels election night needs; the issue names each.
	for _, want := range []string{
		"Total votes counted", "Share by candidate", "Votes per second", "Leader and margin by state",
		"Votes by age group", "Counter replicas", "Partitions owned per replica", "Consumer lag per partition",
		"Micro-batch duration", "Rejected records by reason", "Producer progress",
	} {
		if !seen[want] {
			t.Errorf("dashboard has no panel %q", want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rate(x[$__rate_interval])", "rate(x[1m])"},
		{"rate(x[${__rate_interval}])", "rate(x[1m])"},
		{"increase(x[$__range])", "increase(x[5m])"},
		{"x / $__range_s", "x / 300"},
		{"avg_over_time(x[$__interval])", "avg_over_time(x[15s])"},
		{`x{namespace="$namespace"}`, `x{namespace="votestream"}`},
		{`x{namespace="${namespace}"}`, `x{namespace="votestream"}`},
	} {
		if got := promserver.Substitute(tc.in); got != tc.want {
			t.Errorf("Substitute(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDashboardDisplay checks what Grafana shows that no query can: the
// deployment variable exists, and the clock shows minutes. Grafana's
// "clocks" unit prints hours alone with 0 decimals, "21h:36m" with 1.
func TestDashboardDisplay(t *testing.T) {
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct {
				Name, Type string
				Query      struct {
					Query string `json:"query"`
				} `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title       string `json:"title"`
			FieldConfig struct {
				Defaults struct {
					Unit     string `json:"unit"`
					Decimals *int   `json:"decimals"`
				} `json:"defaults"`
			} `json:"fieldConfig"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(dash.Templating.List, func(v struct {
		Name, Type string
		Query      struct {
			Query string `json:"query"`
		} `json:"query"`
	}) bool {
		return v.Name == "namespace" && v.Type == "query" && strings.Contains(v.Query.Query, "namespace)")
	}) {
		t.Errorf("no query variable namespace listing the deployments: %+v", dash.Templating.List)
	}
	clocks := 0
	for _, p := range dash.Panels {
		if d := p.FieldConfig.Defaults; d.Unit == "clocks" {
			clocks++
			if d.Decimals == nil || *d.Decimals < 1 {
				t.Errorf("panel %q: unit clocks without decimals shows the hour alone; want decimals 1 (hours and minutes)", p.Title)
			}
		}
	}
	if clocks == 0 {
		t.Error("no panel with unit clocks: the election night clock is gone")
	}
}
