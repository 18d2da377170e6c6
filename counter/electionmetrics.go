package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/results"
)

// electionCollector exports the whole-election view. Every replica holds the
// same view, so every replica exports it, labelled with its replica: a
// query must aggregate them with max, never sum (for example
// max by (candidate, status) (votestream_electoral_votes)). Exporting from
// every replica rather than from one elected by partition ownership keeps
// the series unbroken through rebalances and restarts.
type electionCollector struct {
	view *election

	electoralVotes, popularVotes, reporting, leader, called, age *prometheus.Desc
	statesCalled, clock, pollsClosed, producers, overExpected    *prometheus.Desc
	callsWithheld                                                *prometheus.Desc
}

func newElectionCollector(view *election, replica string) *electionCollector {
	const ns = httpserver.Namespace
	labels := prometheus.Labels{"replica": replica}
	desc := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name),
			help+" Whole election, exported by every replica: aggregate replicas with max, not sum.", variable, labels)
	}
	return &electionCollector{
		view: view,
		electoralVotes: desc("electoral_votes",
			"Electoral votes per candidate from called states (status=won) and from states led but not called (status=leading).",
			"candidate", "status"),
		popularVotes: desc("election_popular_votes", "Votes counted per candidate, every partition.", "candidate"),
		reporting: desc("state_reporting_ratio",
			"Votes counted over votes expected in a contested state (from the producer ids' election, else SCALE, INCLUDE_DC), 0 to 1.", "state"),
		leader: desc("state_leader",
			"1 for the candidate with strictly the most votes in a contested state, 0 for the others (all 0 on a tie or before any vote).",
			"state", "candidate"),
		statesCalled: desc("election_states_called", "Contested states whose race is called."),
		clock: desc("election_clock_seconds",
			"The election night's clock (ELECTION=2024): the newest vote counted, Unix seconds. Absent without a night or before any vote."),
		pollsClosed: desc("election_polls_closed_states",
			"Contested states whose polls have closed by the election night's clock (ELECTION=2024). Absent without a night."),
		called: desc("state_called", "1 when a contested state's race is called: the remaining votes cannot change its leader.", "state"),
		producers: desc("election_producers",
			"Producer ids (one per election: seed and scale) whose votes are counted; more than 1: the topic holds several elections."),
		overExpected: desc("election_votes_over_expected",
			"Votes counted beyond each state's expected votes (SCALE, INCLUDE_DC); above 0: several elections, or the counter's settings differ from the producer's."),
		callsWithheld: desc("election_calls_withheld",
			"1 when no race is called because the votes to expect are in doubt: the producer ids name elections of several sizes, or one unlike the counter's SCALE, INCLUDE_DC and ELECTION (calls_withheld of /results says which)."),
		age: desc("election_view_age_seconds",
			"Age of the whole-election view: every checkpoint written before it is included. Absent until every checkpoint partition has been read."),
	}
}

func (c *electionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.electoralVotes, c.popularVotes, c.reporting, c.leader, c.called, c.age,
		c.statesCalled, c.clock, c.pollsClosed, c.producers, c.overExpected, c.callsWithheld} {
		ch <- d
	}
}

func (c *electionCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.view.results()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, cand := range r.Candidates {
		gauge(c.electoralVotes, float64(cand.ElectoralVotesWon), cand.Name, "won")
		gauge(c.electoralVotes, float64(cand.ElectoralVotesLeading), cand.Name, "leading")
		gauge(c.popularVotes, float64(cand.Votes), cand.Name)
	}
	called := 0
	for _, s := range r.States {
		if s.Status == results.NotContested {
			continue
		}
		gauge(c.reporting, s.PercentReporting/100, s.Name)
		for _, cand := range r.Candidates {
			v := 0.0
			if s.Leader == cand.ID {
				v = 1
			}
			gauge(c.leader, v, s.Name, cand.Name)
		}
		v := 0.0
		if s.Status == results.Called {
			v = 1
			called++
		}
		gauge(c.called, v, s.Name)
	}
	gauge(c.statesCalled, float64(called))
	if !r.Night.Start.IsZero() {
		gauge(c.pollsClosed, float64(r.Night.PollsClosed))
		if !r.Night.Clock.IsZero() {
			gauge(c.clock, float64(r.Night.Clock.UnixMilli())/1000)
		}
	}
	gauge(c.producers, float64(len(r.Producers)))
	gauge(c.overExpected, float64(r.OverExpected))
	withheld := 0.0
	if r.CallsWithheld != "" {
		withheld = 1
	}
	gauge(c.callsWithheld, withheld)
	if !r.AsOf.IsZero() {
		gauge(c.age, max(c.view.now().Sub(r.AsOf).Seconds(), 0))
	}
}
