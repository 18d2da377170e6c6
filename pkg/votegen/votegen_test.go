package votegen_test

import (
	"math"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// seedTotal is the sum of the seed notebook's state_voters.
const seedTotal = 1_146_500

func TestQuotasSeedScale(t *testing.T) {
	tests := []struct {
		name      string
		cfg       votegen.Config
		wantTotal int64
		wantDC    int64
	}{
		{"seed", votegen.Config{Scale: vote.SeedScale}, seedTotal, 0},
		{"seed with DC", votegen.Config{Scale: vote.SeedScale, IncludeDC: true}, seedTotal + 2750, 2750},
		{"everyone", votegen.Config{Scale: 1}, 229_300_000, 0},
		{"everyone with DC", votegen.Config{Scale: 1, IncludeDC: true}, 229_300_000 + 550_000, 550_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := votegen.Quotas(tt.cfg)
			if err != nil {
				t.Fatalf("Quotas(%+v): %v", tt.cfg, err)
			}
			var total int64
			for _, n := range q {
				total += n
			}
			if total != tt.wantTotal {
				t.Errorf("total = %d, want %d", total, tt.wantTotal)
			}
			if got := q[vote.NumStates-1]; got != tt.wantDC {
				t.Errorf("DC = %d, want %d", got, tt.wantDC)
			}
			factor := int64(math.Round(tt.cfg.Scale / vote.SeedScale))
			for s, info := range vote.States()[:vote.NumStates-1] {
				if want := int64(info.Quota) * factor; q[s] != want {
					t.Errorf("%s = %d, want %d", info.Name, q[s], want)
				}
			}
		})
	}
}

// TestQuotasRounding compares Quotas with exact decimal arithmetic. A quota
// exactly halfway between two votes may go either way, as the float it is
// computed in falls.
func TestQuotasRounding(t *testing.T) {
	for _, scale := range []string{"0.00001", "0.000065", "0.000123", "0.0007", "0.0031", "0.0049", "0.0051", "0.0123", "0.3333", "0.999999"} {
		t.Run(scale, func(t *testing.T) {
			exact, ok := new(big.Rat).SetString(scale)
			if !ok {
				t.Fatalf("bad scale %q", scale)
			}
			f, _ := exact.Float64()
			q, err := votegen.Quotas(votegen.Config{Scale: f, IncludeDC: true})
			if err != nil {
				t.Fatalf("Quotas(%s): %v", scale, err)
			}
			for s, info := range vote.States() {
				// quota × scale / 0.005 = quota × scale × 200
				x := new(big.Rat).Mul(exact, big.NewRat(int64(info.Quota)*200, 1))
				floor := new(big.Int).Quo(x.Num(), x.Denom()).Int64()
				frac := new(big.Rat).Sub(x, new(big.Rat).SetInt64(floor))
				switch frac.Cmp(big.NewRat(1, 2)) {
				case -1:
					if q[s] != floor {
						t.Errorf("%s: %d, want %d (exactly %s)", info.Name, q[s], floor, x.FloatString(6))
					}
				case 1:
					if q[s] != floor+1 {
						t.Errorf("%s: %d, want %d (exactly %s)", info.Name, q[s], floor+1, x.FloatString(6))
					}
				default:
					if q[s] != floor && q[s] != floor+1 {
						t.Errorf("%s: %d, want %d or %d (exactly %s)", info.Name, q[s], floor, floor+1, x.FloatString(6))
					}
				}
			}
		})
	}
}

func TestQuotasErrors(t *testing.T) {
	tests := []struct {
		name  string
		scale float64
		want  string
	}{
		{"zero", 0, "scale 0: must be more than 0 and at most 1"},
		{"negative zero", math.Copysign(0, -1), "must be more than 0"},
		{"negative", -0.005, "scale -0.005: must be more than 0"},
		{"NaN", math.NaN(), "scale NaN: must be"},
		{"+Inf", math.Inf(1), "scale +Inf: must be"},
		{"-Inf", math.Inf(-1), "scale -Inf: must be"},
		{"more than 1", 1.0000001, "must be more than 0 and at most 1"},
		{"2", 2, "scale 2: must be"},
		{"too small", 1e-9, "scale too small"},
		{"smallest positive", math.SmallestNonzeroFloat64, "scale too small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dc := range []bool{false, true} {
				cfg := votegen.Config{Scale: tt.scale, IncludeDC: dc}
				if _, err := votegen.Quotas(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Quotas(%+v) error = %v, want one containing %q", cfg, err, tt.want)
				}
				if g, err := votegen.New(cfg); err == nil || g != nil {
					t.Errorf("New(%+v) = %v, %v; want nil and an error", cfg, g, err)
				}
				if _, err := votegen.TrueTotals(cfg); err == nil {
					t.Errorf("TrueTotals(%+v): no error", cfg)
				}
			}
		})
	}
}

// TestQuotasSmallest is the smallest scale with a vote: California alone.
func TestQuotasSmallest(t *testing.T) {
	cfg := votegen.Config{Seed: 1, Scale: 2.1e-8}
	q, err := votegen.Quotas(cfg)
	if err != nil {
		t.Fatalf("Quotas(%+v): %v", cfg, err)
	}
	ca, _ := vote.ParseState([]byte("California"))
	for s, n := range q {
		want := int64(0)
		if vote.State(s) == ca {
			want = 1
		}
		if n != want {
			t.Errorf("%s = %d, want %d", vote.State(s), n, want)
		}
	}
	g := mustNew(t, cfg)
	var v vote.Vote
	if !g.Next(&v) || v.State != ca {
		t.Errorf("first vote %+v, want one from California", v)
	}
	if g.Next(&v) {
		t.Errorf("a second vote from an election of one")
	}
}

func mustNew(t testing.TB, cfg votegen.Config) *votegen.Generator {
	t.Helper()
	g, err := votegen.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return g
}

// generate returns every vote of the election.
func generate(t testing.TB, cfg votegen.Config) []vote.Vote {
	t.Helper()
	g := mustNew(t, cfg)
	votes := make([]vote.Vote, 0, g.Total())
	var v vote.Vote
	for g.Next(&v) {
		votes = append(votes, v)
	}
	return votes
}

// seedElection is the default sample (seed 1, scale 0.005), generated once
// for the tests that look at all of it.
var seedElection = sync.OnceValue(func() []vote.Vote {
	g, err := votegen.New(votegen.Config{Seed: 1, Scale: vote.SeedScale})
	if err != nil {
		panic(err)
	}
	votes := make([]vote.Vote, 0, g.Total())
	var v vote.Vote
	for g.Next(&v) {
		votes = append(votes, v)
	}
	return votes
})

func TestGeneratorMeetsQuotas(t *testing.T) {
	tests := []votegen.Config{
		{Seed: 2, Scale: 0.0003, IncludeDC: true},
		{Seed: 3, Scale: 0.00001},
		{Seed: 4, Scale: 2.1e-8},
	}
	for _, cfg := range tests {
		t.Run("", func(t *testing.T) {
			q, err := votegen.Quotas(cfg)
			if err != nil {
				t.Fatal(err)
			}
			g := mustNew(t, cfg)
			var got [vote.NumStates]int64
			var total int64
			for _, n := range q {
				total += n
			}
			if g.Total() != total || g.Seq() != 0 {
				t.Errorf("new generator: Total %d, Seq %d; want %d, 0", g.Total(), g.Seq(), total)
			}
			var v vote.Vote
			for g.Next(&v) {
				got[v.State]++
				if got[v.State] > q[v.State] {
					t.Fatalf("vote %d: %s over its quota %d", g.Seq(), v.State, q[v.State])
				}
				if int(v.Candidate) >= vote.NumCandidates || int(v.AgeGroup) >= vote.NumAgeGroups {
					t.Fatalf("vote %d out of range: %+v", g.Seq(), v)
				}
			}
			if got != q {
				t.Errorf("votes per state = %v, want %v", got, q)
			}
			if g.Seq() != total {
				t.Errorf("Seq() = %d after the last vote, want %d", g.Seq(), total)
			}
			for i := range 3 {
				before := v
				if g.Next(&v) {
					t.Fatalf("Next after the end, call %d: true", i)
				}
				if v != before || g.Seq() != total {
					t.Errorf("Next after the end changed the vote or Seq (%d)", g.Seq())
				}
			}
		})
	}
}

// TestSeedElectionMeetsQuotas checks the default sample has each state's
// seed quota exactly and nothing from DC.
func TestSeedElectionMeetsQuotas(t *testing.T) {
	votes := seedElection()
	if len(votes) != seedTotal {
		t.Errorf("%d votes, want %d", len(votes), seedTotal)
	}
	var got [vote.NumStates]int64
	for i := range votes {
		got[votes[i].State]++
	}
	for s, info := range vote.States() {
		want := int64(info.Quota)
		if info.OptIn {
			want = 0
		}
		if got[s] != want {
			t.Errorf("%s: %d votes, want %d", info.Name, got[s], want)
		}
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	cfg := votegen.Config{Seed: 42, Scale: 0.0002}
	a, b := generate(t, cfg), generate(t, cfg)
	if len(a) != len(b) {
		t.Fatalf("same seed: %d and %d votes", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, vote %d: %+v and %+v", i, a[i], b[i])
		}
	}
	for _, other := range []uint64{0, 43, 42 ^ 0x9e3779b97f4a7c15} {
		c := generate(t, votegen.Config{Seed: other, Scale: cfg.Scale})
		same := 0
		for i := range a {
			if a[i].ID == c[i].ID {
				same++
			}
		}
		if same != 0 {
			t.Errorf("seeds 42 and %d share %d vote IDs", other, same)
		}
	}
	// The default sample is pinned: a restarted producer recomputes votes
	// it already sent, so a change to the generator must be deliberate.
	golden := []struct{ id, state, candidate, age string }{
		{"26b0f2f5-c337-480e-a9f0-53f6524af940", "Nebraska", "Donald J. Trump", "41-60"},
		{"e7bfd85d-58c4-4da6-8350-d5f9deb1bbf2", "Florida", "Cornel West", "18-25"},
		{"26bcb1f1-cf76-435c-aeb4-0b82f6dfbb11", "Nevada", "Cornel West", "18-25"},
	}
	for i, want := range golden {
		v := seedElection()[i]
		got := struct{ id, state, candidate, age string }{
			string(vote.AppendID(nil, &v.ID)), v.State.String(), v.Candidate.String(), v.AgeGroup.String(),
		}
		if got != want {
			t.Errorf("seed 1 vote %d = %v, want %v", i, got, want)
		}
	}
}

func TestGeneratorWeights(t *testing.T) {
	votes := seedElection()
	n := float64(len(votes))
	var cand [vote.NumCandidates]float64
	var age [vote.NumAgeGroups]float64
	for i := range votes {
		cand[votes[i].Candidate]++
		age[votes[i].AgeGroup]++
	}
	check := func(what string, got, p float64) {
		t.Helper()
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if z := (got - mean) / sd; math.Abs(z) > 5 {
			t.Errorf("%s: %.0f votes, want %.0f ± 5×%.0f (z = %.1f)", what, got, mean, sd, z)
		}
	}
	for c, info := range vote.Candidates() {
		check(info.Name, cand[c], float64(info.Weight)/21)
	}
	for a, label := range vote.AgeGroups() {
		check("age "+label, age[a], 0.25)
	}
	// Chi-square with 5 degrees of freedom: 30 is far in the tail (p ≈ 1.5e-5).
	var chi2 float64
	for c, info := range vote.Candidates() {
		e := n * float64(info.Weight) / 21
		chi2 += (cand[c] - e) * (cand[c] - e) / e
	}
	if chi2 > 30 {
		t.Errorf("candidate chi-square = %.1f, want at most 30 (5 degrees of freedom)", chi2)
	}
	// Candidate and age are independent: each candidate's age groups are
	// uniform too.
	var joint [vote.NumCandidates][vote.NumAgeGroups]float64
	for i := range votes {
		joint[votes[i].Candidate][votes[i].AgeGroup]++
	}
	for c := range joint {
		for a := range joint[c] {
			p := cand[c] / n / 4
			check(vote.Candidate(c).String()+" "+vote.AgeGroup(a).String(), joint[c][a], p)
		}
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGeneratorIDs(t *testing.T) {
	votes := seedElection()
	seen := make(map[[16]byte]struct{}, len(votes))
	var buf []byte
	for i := range votes {
		id := &votes[i].ID
		if id[6]>>4 != 4 || id[8]>>6 != 0b10 {
			t.Fatalf("vote %d ID %x: not version 4 with the RFC 4122 variant", i, id)
		}
		if i < 10000 {
			buf = vote.AppendID(buf[:0], id)
			if !uuidV4.Match(buf) {
				t.Fatalf("vote %d ID %s is not a canonical v4 UUID", i, buf)
			}
		}
		if _, dup := seen[*id]; dup {
			t.Fatalf("vote %d repeats ID %x", i, id)
		}
		seen[*id] = struct{}{}
	}
}

func TestTrueTotals(t *testing.T) {
	for _, cfg := range []votegen.Config{
		{Seed: 5, Scale: 0.0005},
		{Seed: 6, Scale: 0.0001, IncludeDC: true},
	} {
		got, err := votegen.TrueTotals(cfg)
		if err != nil {
			t.Fatalf("TrueTotals(%+v): %v", cfg, err)
		}
		var want vote.Tally
		for _, v := range generate(t, cfg) {
			want.Add(&v)
		}
		if got != want {
			t.Errorf("TrueTotals(%+v) differs from tallying Next: %v", cfg, got.Diff(&want, 5))
		}
		q, _ := votegen.Quotas(cfg)
		for s := range q {
			var n int64
			for c := range vote.NumCandidates {
				n += got.StateTotal(vote.Candidate(c), vote.State(s))
			}
			if n != q[s] {
				t.Errorf("TrueTotals(%+v): %s has %d votes, want its quota %d", cfg, vote.State(s), n, q[s])
			}
		}
	}
}

func TestSkip(t *testing.T) {
	cfg := votegen.Config{Seed: 9, Scale: 0.0001}
	all := generate(t, cfg)
	total := int64(len(all))
	for _, n := range []int64{0, 1, 2, 17, 1000, total / 2, total - 1} {
		g := mustNew(t, cfg)
		g.Skip(n)
		if g.Seq() != n {
			t.Errorf("Skip(%d): Seq() = %d", n, g.Seq())
		}
		var v vote.Vote
		if !g.Next(&v) {
			t.Fatalf("Skip(%d) then Next: false, want vote %d of %d", n, n+1, total)
		}
		if v != all[n] {
			t.Errorf("Skip(%d) then Next = %+v, want vote %d %+v", n, v, n+1, all[n])
		}
	}
	for _, n := range []int64{total, total + 1, math.MaxInt64} {
		g := mustNew(t, cfg)
		g.Skip(n)
		var v vote.Vote
		if g.Next(&v) || g.Seq() != total {
			t.Errorf("Skip(%d) of %d: Next true or Seq %d, want false and %d", n, total, g.Seq(), total)
		}
	}
	g := mustNew(t, cfg)
	g.Skip(-5)
	if g.Seq() != 0 {
		t.Errorf("Skip(-5): Seq() = %d, want 0", g.Seq())
	}
}
