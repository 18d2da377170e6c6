// Package votegen generates an election deterministically: the seed's, or
// 2024's certified result replayed along an election night. The same
// election, seed and scale always give the same votes in the same order, so
// tests and a restarted producer can recompute every vote without storing
// any.
package votegen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/votestream/votestream/pkg/vote"
)

// Config chooses the election to generate.
type Config struct {
	Seed      uint64
	Scale     float64 // fraction of the voters; the seed's sample is vote.SeedScale
	IncludeDC bool    // generate DC too (the seed has only the 50 states)
	// Election is ElectionSeed (or empty) or Election2024.
	Election string
}

// Timed reports whether the election has a night: votes carry their
// election-night time and come in its order.
func (c Config) Timed() bool { return c.Election == Election2024 }

// Quotas returns each state's number of votes at cfg's scale: for the
// seed, its quota scaled and rounded to the nearest vote; for 2024, the
// certified votes of the six candidates scaled (Scaled2024). States not
// generated get 0.
func Quotas(cfg Config) ([vote.NumStates]int64, error) {
	var q [vote.NumStates]int64
	if err := vote.CheckScale(cfg.Scale); err != nil {
		return q, fmt.Errorf("scale %w", err)
	}
	if cfg.Election != "" && cfg.Election != ElectionSeed && cfg.Election != Election2024 {
		return q, fmt.Errorf("election %q: must be %s or %s", cfg.Election, ElectionSeed, Election2024)
	}
	var scaled [vote.NumStates][vote.NumCandidates]int64
	if cfg.Timed() {
		scaled = Scaled2024(cfg)
	}
	var total int64
	for s, info := range vote.States() {
		if info.OptIn && !cfg.IncludeDC {
			continue
		}
		if cfg.Timed() {
			for _, n := range scaled[s] {
				q[s] += n
			}
		} else {
			q[s] = int64(math.Round(float64(info.Quota) * cfg.Scale / vote.SeedScale))
		}
		total += q[s]
	}
	if total == 0 {
		return q, errors.New("scale too small: no state gets a vote")
	}
	return q, nil
}

// Generator yields the votes of one election in order. It is not safe for
// concurrent use.
type Generator struct {
	rng       *rand.Rand
	remaining [vote.NumStates]int64
	active    []vote.State // states with votes left, in no particular order
	seq       int64
	total     int64
	night     *night // the 2024 night's order, or nil for the seed's
}

// New returns a generator positioned before the first vote.
func New(cfg Config) (*Generator, error) {
	q, err := Quotas(cfg)
	if err != nil {
		return nil, err
	}
	g := &Generator{
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		remaining: q,
	}
	for s, n := range q {
		if n > 0 {
			g.active = append(g.active, vote.State(s))
			g.total += n
		}
	}
	if cfg.Timed() {
		g.night = newNight(Scaled2024(cfg))
	}
	return g, nil
}

// Total is the number of votes the election has.
func (g *Generator) Total() int64 { return g.total }

// Seq is the number of votes generated so far: the sequence number the next
// vote will have.
func (g *Generator) Seq() int64 { return g.seq }

// cumulative weights of the candidates: 6:5:4:3:2:1 out of 21.
var candidateBounds = func() (b [vote.NumCandidates]int) {
	sum := 0
	for i, c := range vote.Candidates() {
		sum += c.Weight
		b[i] = sum
	}
	return b
}()

// Next fills v with the next vote's ID, state, candidate and age group (not
// its time, which is when it is cast) and reports false once every quota is
// met. Like the seed, it picks the state uniformly among those with votes
// left, so small states finish early and the last votes all come from the
// largest ones.
func (g *Generator) Next(v *vote.Vote) bool {
	if g.night != nil {
		if !g.night.next(g.rng, v) {
			return false
		}
		g.fillID(v)
		return true
	}
	if len(g.active) == 0 {
		return false
	}
	i := g.rng.IntN(len(g.active))
	s := g.active[i]
	g.remaining[s]--
	if g.remaining[s] == 0 {
		g.active[i] = g.active[len(g.active)-1]
		g.active = g.active[:len(g.active)-1]
	}
	r := g.rng.IntN(candidateBounds[vote.NumCandidates-1])
	c := 0
	for r >= candidateBounds[c] {
		c++
	}
	v.State = s
	v.Candidate = vote.Candidate(c)
	v.AgeGroup = vote.AgeGroup(g.rng.IntN(vote.NumAgeGroups))
	g.fillID(v)
	return true
}

// fillID draws the vote's UUID from the election's stream.
func (g *Generator) fillID(v *vote.Vote) {
	binary.BigEndian.PutUint64(v.ID[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(v.ID[8:], g.rng.Uint64())
	v.ID[6] = v.ID[6]&0x0f | 0x40 // version 4
	v.ID[8] = v.ID[8]&0x3f | 0x80 // RFC 4122 variant
	g.seq++
}

// Timed reports whether votes carry their election-night time (Time) and
// come in its order.
func (g *Generator) Timed() bool { return g.night != nil }

// Fill generates up to len(votes) votes into votes and returns how many (0
// once the election is over). In a timed election a batch ends before the
// first vote of the next BatchSpan of the night, so each batch is one
// stretch of the clock, empty stretches skipped.
func (g *Generator) Fill(votes []vote.Vote) int {
	limit := int64(math.MaxInt64)
	if g.night != nil {
		t, ok := g.night.peek()
		if !ok {
			return 0
		}
		span := BatchSpan.Microseconds()
		limit = (t/span + 1) * span
	}
	k := 0
	for k < len(votes) {
		if g.night != nil {
			if t, ok := g.night.peek(); !ok || t >= limit {
				break
			}
		}
		if !g.Next(&votes[k]) {
			break
		}
		k++
	}
	return k
}

// Skip advances past n votes without returning them.
func (g *Generator) Skip(n int64) {
	var v vote.Vote
	for ; n > 0 && g.Next(&v); n-- {
	}
}

// TrueTotals generates the whole election and tallies it: the answer every
// exact count must match.
func TrueTotals(cfg Config) (vote.Tally, error) {
	var t vote.Tally
	g, err := New(cfg)
	if err != nil {
		return t, err
	}
	var v vote.Vote
	for g.Next(&v) {
		t.Add(&v)
	}
	return t, nil
}
