// Package nemesis draws a schedule of random, overlapping faults from a
// seed, as Jepsen's nemeses do: the same seed and duration always give the
// same schedule, so a run that fails is replayed with its seed. It is pure:
// the end-to-end tests (e2e) carry the schedule out on a real cluster.
package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind int

// The faults a schedule draws from. Broker faults never overlap one
// another (at most one broker down at a time, but for TwoBrokersDown);
// the producer's never overlap one another; counter faults overlap freely
// on different counters.
const (
	BrokerKill     Kind = iota // SIGKILL one broker, start it again at the heal
	BrokerTerm                 // SIGTERM one broker (controlled shutdown), start it again
	BrokerPause                // SIGSTOP one broker, SIGCONT at the heal
	BrokerCut                  // one broker's link down: cut off from its peers and clients
	TwoBrokersDown             // SIGTERM two brokers: produces must be refused until one is back
	RollingRestart             // SIGTERM and start every broker in turn, each back in sync before the next
	CounterKill                // SIGKILL one or two counters, start them again at the heal
	CounterPause               // SIGSTOP one or two counters, SIGCONT at the heal
	CounterCut                 // one counter cut off from every broker (still reachable from the test)
	ProducerKill               // SIGKILL the producer, start it again (same SEED) at the heal
	ProducerCut                // the producer's link down
	Scale                      // scale the counters to 1..5 (SIGTERM or start): no heal
	NumKinds
)

var kindNames = [NumKinds]string{
	"broker-kill", "broker-term", "broker-pause", "broker-cut", "two-brokers-down", "rolling-restart",
	"counter-kill", "counter-pause", "counter-cut", "producer-kill", "producer-cut", "scale",
}

func (k Kind) String() string {
	if k < 0 || k >= NumKinds {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Broker reports whether k is a broker fault (one lane: never two at once).
func (k Kind) Broker() bool { return k <= RollingRestart }

// Producer reports whether k is a producer fault.
func (k Kind) Producer() bool { return k == ProducerKill || k == ProducerCut }

// weights are how often each kind is drawn, out of their sum.
var weights = [NumKinds]int{
	BrokerKill: 3, BrokerTerm: 2, BrokerPause: 2, BrokerCut: 2, TwoBrokersDown: 1, RollingRestart: 1,
	CounterKill: 3, CounterPause: 2, CounterCut: 2, ProducerKill: 2, ProducerCut: 2, Scale: 2,
}

// Fault is one fault of a schedule: injected At after the schedule's
// start, healed For later (zero for Scale, and for RollingRestart, which
// heals itself broker by broker).
type Fault struct {
	At, For  time.Duration
	Kind     Kind
	Brokers  []int    // node ids, from 1
	Counters []string // replica names
	// A Scale starts Started and stops Stopped, leaving Scale counters.
	Started, Stopped []string
	Scale            int
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %-16s", f.At.Round(100*time.Millisecond), f.Kind)
	switch {
	case len(f.Brokers) > 0:
		fmt.Fprintf(&b, " broker %s", join(f.Brokers))
	case f.Kind == Scale:
		fmt.Fprintf(&b, " to %d:", f.Scale)
		for _, c := range f.Started {
			b.WriteString(" +" + c)
		}
		for _, c := range f.Stopped {
			b.WriteString(" -" + c)
		}
	case len(f.Counters) > 0:
		fmt.Fprintf(&b, " counter %s", strings.Join(f.Counters, ","))
	case f.Kind.Producer():
		b.WriteString(" producer")
	}
	if f.For > 0 {
		fmt.Fprintf(&b, " for %s", f.For.Round(100*time.Millisecond))
	}
	return b.String()
}

func join(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, "+")
}

// Config shapes a schedule.
type Config struct {
	Seed     uint64
	Duration time.Duration // faults start and heal within it
	Brokers  int           // broker node ids are 1..Brokers
	Counters []string      // the counters running at the start
	MaxScale int           // Scale draws 1..MaxScale counters
}

// Schedule is the faults of a seed, in the order they start.
type Schedule struct {
	Config
	Faults []Fault
}

// RollingMin is the shortest schedule that draws a rolling restart: on a
// small machine it takes the brokers a minute or more, which a short
// schedule (the 2 minutes of make test) cannot spare.
const RollingMin = 5 * time.Minute

// Names are the replica names a schedule may start: c1, c2, ...
func Names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", i+1)
	}
	return out
}

// Timings of a schedule, scaled with its duration: a fault starts every
// meanGap on average and lasts up to maxFor; a broker fault leaves the
// brokers alone for settle after its heal (the healed node catches up), and
// a rolling restart takes the brokers for rolling.
func timings(d time.Duration) (meanGap, minFor, maxFor, settle, rolling time.Duration) {
	meanGap = min(max(d/20, 5*time.Second), 12*time.Second)
	maxFor = min(max(d/6, 10*time.Second), 40*time.Second)
	return meanGap, 2 * time.Second, maxFor, 15 * time.Second, 75 * time.Second
}

// planner is the state a schedule is drawn against: when each lane is
// free again and which counters exist.
type planner struct {
	cfg          Config
	r            *rand.Rand
	brokersFree  time.Duration
	producerFree time.Duration
	busy         map[string]time.Duration // counter -> when its fault heals
	fleet        []string                 // the counters running, sorted
}

// Draw draws the schedule of cfg: the same Config gives the same faults.
func Draw(cfg Config) Schedule {
	if cfg.MaxScale == 0 {
		cfg.MaxScale = 5
	}
	p := &planner{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, 0x6e656d65736973)), busy: map[string]time.Duration{}, fleet: slices.Sorted(slices.Values(cfg.Counters))}
	meanGap, _, _, _, _ := timings(cfg.Duration)
	s := Schedule{Config: cfg}
	// The first fault waits a little: counting must be under way.
	at := meanGap / 2
	for {
		at += time.Duration(p.r.ExpFloat64() * float64(meanGap))
		if at >= cfg.Duration-2*time.Second {
			break
		}
		if f, ok := p.draw(at); ok {
			s.Faults = append(s.Faults, f)
		}
	}
	return s
}

// draw picks a kind by weight and fills in its targets; a kind that cannot
// start at at (its lane busy, no counter free) is set aside and another
// drawn, so busy lanes neither thin the schedule out nor skew its mix. It
// fails when no kind can start.
func (p *planner) draw(at time.Duration) (Fault, bool) {
	w := weights
	for {
		total := 0
		for _, n := range w {
			total += n
		}
		if total == 0 {
			return Fault{}, false
		}
		n := p.r.IntN(total)
		k := Kind(0)
		for ; n >= w[k]; k++ {
			n -= w[k]
		}
		if f, ok := p.try(k, at); ok {
			return f, true
		}
		w[k] = 0
	}
}

// try plans a fault of kind k at at, if its lane and targets are free.
func (p *planner) try(k Kind, at time.Duration) (Fault, bool) {
	_, minFor, maxFor, settle, rolling := timings(p.cfg.Duration)
	f := Fault{At: at, Kind: k}
	left := p.cfg.Duration - at
	if k != Scale && k != RollingRestart {
		f.For = min(minFor+time.Duration(p.r.Int64N(int64(maxFor-minFor))), left)
	}
	switch {
	case k.Broker():
		if at < p.brokersFree || (k == RollingRestart && (left < rolling || p.cfg.Duration < RollingMin)) || (k == TwoBrokersDown && p.cfg.Brokers < 3) {
			return f, false
		}
		ids := p.r.Perm(p.cfg.Brokers)
		f.Brokers = []int{ids[0] + 1}
		switch k {
		case TwoBrokersDown:
			f.Brokers = append(f.Brokers, ids[1]+1)
			settle *= 2
		case RollingRestart:
			f.Brokers = nil
			f.For, settle = 0, rolling
		}
		p.brokersFree = at + f.For + settle
	case k.Producer():
		if at < p.producerFree {
			return f, false
		}
		p.producerFree = at + f.For + time.Second
	case k == Scale:
		return p.scale(f)
	default:
		free := p.free(at)
		if len(free) == 0 {
			return f, false
		}
		n := 1
		if k != CounterCut && len(free) > 1 && p.r.IntN(3) == 0 {
			n = 2
		}
		for _, i := range p.r.Perm(len(free))[:n] {
			f.Counters = append(f.Counters, free[i])
			p.busy[free[i]] = at + f.For
		}
		slices.Sort(f.Counters)
	}
	return f, true
}

// free is the counters with no fault on them at at.
func (p *planner) free(at time.Duration) []string {
	var out []string
	for _, c := range p.fleet {
		if p.busy[c] <= at {
			out = append(out, c)
		}
	}
	return out
}

// scale plans scaling to a drawn 1..MaxScale: starting the lowest names not
// running, or stopping the highest free ones (one under a fault stays, so
// the number reached may be short of the one drawn).
func (p *planner) scale(f Fault) (Fault, bool) {
	want := 1 + p.r.IntN(p.cfg.MaxScale)
	all := Names(p.cfg.MaxScale)
	for _, c := range all {
		if len(p.fleet) >= want {
			break
		}
		if !slices.Contains(p.fleet, c) {
			p.fleet = append(p.fleet, c)
			f.Started = append(f.Started, c)
		}
	}
	free := p.free(f.At)
	for i := len(free) - 1; i >= 0 && len(p.fleet) > want; i-- {
		p.fleet = slices.DeleteFunc(p.fleet, func(c string) bool { return c == free[i] })
		f.Stopped = append(f.Stopped, free[i])
	}
	slices.Sort(p.fleet)
	f.Scale = len(p.fleet)
	return f, len(f.Started)+len(f.Stopped) > 0
}

// Count is how many faults of each kind the schedule has.
func (s Schedule) Count() map[Kind]int {
	out := map[Kind]int{}
	for _, f := range s.Faults {
		out[f.Kind]++
	}
	return out
}

func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nemesis schedule: seed=%d duration=%s brokers=%d counters=%s faults=%d\n",
		s.Seed, s.Duration, s.Brokers, strings.Join(s.Counters, ","), len(s.Faults))
	for i, f := range s.Faults {
		fmt.Fprintf(&b, "  #%-3d %s\n", i+1, f)
	}
	return b.String()
}
