package testbed

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/votestream/votestream/pkg/vote"
)

// Counts is what one counter's /metrics says it has counted.
type Counts struct {
	Tally      vote.Tally
	Rejected   map[string]int64
	Partitions int
}

// Metrics reads and parses a service's /metrics, only the families named
// if any are (the exporter's name[] filter: a small reply is quick to
// parse in a test binary built with the race detector).
func Metrics(ctx context.Context, addr string, names ...string) (map[string]*dto.MetricFamily, error) {
	u := url.URL{Scheme: "http", Host: addr, Path: "/metrics", RawQuery: url.Values{"name[]": names}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", addr, err)
	}
	return families, nil
}

// Requests is a service's votestream_http_requests_total for path, and
// whether it has that series yet (a path never asked for has none).
func Requests(ctx context.Context, addr, path string) (n float64, ok bool, err error) {
	fams, err := Metrics(ctx, addr, "votestream_http_requests_total")
	if err != nil {
		return 0, false, err
	}
	for _, m := range fams["votestream_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "path" && l.GetValue() == path {
				return m.GetCounter().GetValue(), true, nil
			}
		}
	}
	return 0, false, nil
}

// Scrape reads a counter's /metrics.
func Scrape(ctx context.Context, addr string) (*Counts, error) {
	families, err := Metrics(ctx, addr)
	if err != nil {
		return nil, err
	}
	return CountsOf(families)
}

// CountsOf is the counts in a counter's parsed /metrics.
func CountsOf(families map[string]*dto.MetricFamily) (*Counts, error) {
	c := &Counts{Rejected: make(map[string]int64)}
	for _, m := range families["votestream_votes"].GetMetric() {
		var cand, state, age string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "candidate":
				cand = l.GetValue()
			case "state":
				state = l.GetValue()
			case "age_group":
				age = l.GetValue()
			}
		}
		ci, ok1 := vote.ParseCandidate([]byte(cand))
		si, ok2 := vote.ParseState([]byte(state))
		ai, ok3 := vote.ParseAgeGroup([]byte(age))
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("metric with unknown labels %q %q %q", cand, state, age)
		}
		c.Tally[ci][si][ai] += int64(m.GetGauge().GetValue())
	}
	for _, m := range families["votestream_rejected_records"].GetMetric() {
		c.Rejected[m.GetLabel()[0].GetValue()] += int64(m.GetGauge().GetValue())
	}
	for _, m := range families["votestream_counter_partitions_owned"].GetMetric() {
		c.Partitions += int(m.GetGauge().GetValue())
	}
	return c, nil
}

// Sum scrapes every address and adds their counts up.
func Sum(ctx context.Context, addrs []string) (*Counts, error) {
	total := &Counts{Rejected: make(map[string]int64)}
	for _, a := range addrs {
		c, err := Scrape(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		total.Tally.Merge(&c.Tally)
		for r, n := range c.Rejected {
			total.Rejected[r] += n
		}
		total.Partitions += c.Partitions
	}
	return total, nil
}
