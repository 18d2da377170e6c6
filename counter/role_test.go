package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestRolesApart runs a ROLE=count replica and a ROLE=serve replica against
// an in-process kfake. The counting one counts every vote exactly in its
// own metrics and answers 404 for the page, /results and /events, naming
// the role that serves them; the serving one serves the whole election in
// /results, exactly, with the headers a proxy in front needs, and the
// election metrics, and not the counting metrics. Both say their role in
// /metrics and in their logs. Then, with the counting replica stopped, a
// second serving replica starts and shows the same results without one
// request that writes to Kafka or touches a group.
func TestRolesApart(t *testing.T) {
	e := newTestElection(t, 11, 4)
	quotas, err := votegen.Quotas(e.gen)
	if err != nil {
		t.Fatal(err)
	}
	truth := results.Compute(&e.want, quotas)
	serving := startCounter(t, append(e.env, "ROLE=serve"), "s") // first: it waits for the topic
	counting := startCounter(t, append(e.env, "ROLE=count"), "c")
	waitOwning(t, counting.addr)
	waitStatus(t, "http://"+serving.addr+"/readyz", http.StatusOK)

	e.publish(t)
	waitExact(t, &e.want, counting.addr)
	got := waitServed(t, serving.addr, truth.Counted)
	checkServed(t, "ROLE=serve /results", &got, &truth)

	for _, path := range []string{"/", "/results", "/events", "/assets/app.js"} {
		status, body := get(t, "http://"+counting.addr+path)
		if status != http.StatusNotFound || !strings.Contains(body, "ROLE=serve") {
			t.Errorf("ROLE=count %s: %d %q, want 404 naming ROLE=serve", path, status, body)
		}
	}
	checkRoleMetrics(t, counting.addr, "count", "votestream_counter_records_total", "votestream_electoral_votes")
	checkRoleMetrics(t, serving.addr, "serve", "votestream_electoral_votes", "votestream_counter_records_total")
	checkProxyHeaders(t, "http://"+serving.addr)
	for _, c := range []*inProcess{serving, counting} {
		if !strings.Contains(c.out.String(), `msg=starting`) || !strings.Contains(c.out.String(), "role=") {
			t.Errorf("the log does not say the role:\n%s", testbed.Tail(c.out.String(), 5))
		}
	}
	if !strings.Contains(serving.out.String(), "role=serve") || !strings.Contains(counting.out.String(), "role=count") {
		t.Error("a replica's log says another role than its own")
	}
	counting.stop(t)

	writes := watchWrites(e.cluster)
	late := startCounter(t, append(e.env, "ROLE=serve"), "s2")
	waitStatus(t, "http://"+late.addr+"/readyz", http.StatusOK)
	got = waitServed(t, late.addr, truth.Counted)
	checkServed(t, "a late ROLE=serve /results", &got, &truth)
	time.Sleep(time.Second) // a few rounds of following
	late.stop(t)
	serving.stop(t)
	if w := writes(); len(w) > 0 {
		t.Errorf("ROLE=serve replicas sent %v: they must not write to Kafka nor join a group", w)
	}
}

// watchWrites records every request to the cluster that writes, creates
// or takes part in a group from now on, and returns what it recorded.
func watchWrites(cluster *kfake.Cluster) func() []string {
	var mu sync.Mutex
	var seen []string
	cluster.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		switch kmsg.Key(req.Key()) {
		case kmsg.Produce, kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.DeleteRecords, kmsg.CreatePartitions,
			kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs, kmsg.InitProducerID,
			kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup:
			mu.Lock()
			seen = append(seen, kmsg.NameForKey(req.Key()))
			mu.Unlock()
		}
		return nil, nil, false
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// waitServed polls addr's /results until it counts want votes.
func waitServed(t *testing.T, addr string, want int64) results.Results {
	t.Helper()
	var r results.Results
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err = webtest.GetResults(ctx, "http://"+addr)
		cancel()
		if err == nil && r.Counted == want {
			return r
		}
	}
	t.Fatalf("%s/results did not reach %d votes within a minute: %d (%v)", addr, want, r.Counted, err)
	return r
}

// checkServed compares served results with the truth, state by state and
// candidate by candidate.
func checkServed(t *testing.T, what string, got, want *results.Results) {
	t.Helper()
	if got.Counted != want.Counted || got.Candidates != want.Candidates || got.Winner != want.Winner {
		t.Errorf("%s: %d counted, %+v; want %d, %+v", what, got.Counted, got.Candidates, want.Counted, want.Candidates)
	}
	for s := range want.States {
		if g, w := &got.States[s], &want.States[s]; g.Votes != w.Votes || g.Status != w.Status {
			t.Errorf("%s: %s: %v %s, want %v %s", what, w.Name, g.Votes, g.Status, w.Votes, w.Status)
		}
	}
}

// checkRoleMetrics checks that addr's /metrics says role, has has and
// lacks lacks.
func checkRoleMetrics(t *testing.T, addr, role, has, lacks string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fams, err := testbed.Metrics(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	info := fams["votestream_counter_role_info"].GetMetric()
	if len(info) != 1 || info[0].GetLabel()[0].GetValue() != role || info[0].GetGauge().GetValue() != 1 {
		t.Errorf("ROLE=%s: votestream_counter_role_info is %v, want 1 with role=%q", role, info, role)
	}
	if _, ok := fams[has]; !ok {
		t.Errorf("ROLE=%s: no %s in /metrics", role, has)
	}
	if _, ok := fams[lacks]; ok {
		t.Errorf("ROLE=%s: %s in /metrics, which this role does not make", role, lacks)
	}
}

// checkProxyHeaders checks what a shared cache in front reads: /results
// may be kept a second, with its ETag; /events must not be buffered.
func checkProxyHeaders(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for path, want := range map[string][2]string{
		"/results": {"Cache-Control", "public, max-age=1"},
		"/events":  {"X-Accel-Buffering", "no"},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get(want[0]); got != want[1] {
			t.Errorf("%s: %s %q, want %q", path, want[0], got, want[1])
		}
		if path == "/results" && res.Header.Get("ETag") == "" {
			t.Errorf("/results has no ETag")
		}
	}
}

// get returns url's status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitStatus polls url until it answers status.
func waitStatus(t *testing.T, url string, status int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, _ = get(t, url); got == status {
			return
		}
	}
	t.Fatalf("%s answers %d after 30s, want %d", url, got, status)
}
