package bed

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/vote"
)

// Worker runs one of this binary's sub-commands and reads its
// "records=N seconds=S" line.
func (b *Bed) Worker(ctx context.Context, name string, args ...string) (Row, error) {
	p, err := StartProc(name, b.Self, args, nil)
	if err != nil {
		return Row{}, err
	}
	if err := Finished(p, p.Wait(b.Cfg.Timeout)); err != nil {
		return Row{}, err
	}
	m := regexp.MustCompile(`records=(\d+) seconds=([\d.]+)`).FindStringSubmatch(p.Output())
	if m == nil {
		return Row{}, fmt.Errorf("%s printed no result:\n%s", name, testbed.Tail(p.Output(), 20))
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	s, _ := strconv.ParseFloat(m[2], 64)
	return Row{Name: name, Votes: n, Seconds: s, RSSMiB: p.PeakMiB(), Wall: p.Ended().Sub(p.Started).Seconds(), CPU: p.CPUSeconds()}, nil
}

// RawRead reads topic with the raw-read worker in mode (fetch or reader).
func (b *Bed) RawRead(ctx context.Context, topic, mode, name string, extra ...string) (Row, error) {
	return b.Worker(ctx, name, append([]string{"raw-read", "-brokers", b.Addr, "-topic", topic, "-mode", mode}, extra...)...)
}

// StartProducer starts votestream's producer on the run named n, SEED
// and SCALE set, with env on top.
func (b *Bed) StartProducer(n Names, scale float64, env ...string) (*testbed.Process, error) {
	return StartProc("producer", filepath.Join(b.Cfg.Bin, "producer"), nil, b.Env(n,
		append([]string{"SEED=" + strconv.FormatUint(b.Cfg.Seed, 10), "SCALE=" + strconv.FormatFloat(scale, 'g', -1, 64)}, env...)...))
}

// Producer publishes a whole election as fast as it can; its rate is over
// the time it logs from its first batch to the last acknowledgement.
func (b *Bed) Producer(ctx context.Context, n Names, scale float64, name, outDir string) (Row, error) {
	p, err := b.StartProducer(n, scale, "BATCH_INTERVAL=0", "OUTPUT_DIR="+outDir)
	if err != nil {
		return Row{}, err
	}
	if err := Finished(p, p.Wait(b.Cfg.Timeout)); err != nil {
		return Row{}, err
	}
	d, err := Elapsed(p)
	if err != nil {
		return Row{}, err
	}
	votes := MustTotal(b.Cfg.Seed, scale)
	b.TotalVotes += votes
	return Row{Name: name, Votes: votes, Seconds: d.Seconds(), RSSMiB: p.PeakMiB(), Wall: p.Ended().Sub(p.Started).Seconds(), CPU: p.CPUSeconds()}, nil
}

var elapsedRE = regexp.MustCompile(`msg="election published".* elapsed=(\S+)`)

// Elapsed is the time an exited producer logs from its first batch to the
// last acknowledgement.
func Elapsed(p *testbed.Process) (time.Duration, error) {
	m := elapsedRE.FindStringSubmatch(p.Output())
	if m == nil {
		return 0, fmt.Errorf("producer did not log its elapsed time:\n%s", testbed.Tail(p.Output(), 20))
	}
	return time.ParseDuration(m[1])
}

// StartCounterProc starts a counter on the run named n, without waiting.
func (b *Bed) StartCounterProc(n Names, extra ...string) (*testbed.Process, error) {
	return StartProc("counter", filepath.Join(b.Cfg.Bin, "counter"), nil, b.Env(n, extra...))
}

// StartCounter starts a counter and waits until it owns its partitions.
func (b *Bed) StartCounter(n Names, extra ...string) (*testbed.Process, string, time.Time, error) {
	p, err := b.StartCounterProc(n, extra...)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	addr, err := CounterAddr(p)
	if err != nil {
		p.Kill()
		return nil, "", time.Time{}, err
	}
	ready, err := b.WaitReady(p, addr)
	if err != nil {
		p.Kill()
		return nil, "", time.Time{}, err
	}
	return p, addr, ready, nil
}

var metricsAddrRE = regexp.MustCompile(`msg="serving metrics".* addr=(\S+)`)

// CounterAddr waits for a started counter's HTTP address.
func CounterAddr(p *testbed.Process) (string, error) {
	return p.WaitOutput(metricsAddrRE, 30*time.Second)
}

// CounterReady waits for a started counter's HTTP address and for its
// /readyz to answer 200: it owns its partitions.
func (b *Bed) CounterReady(p *testbed.Process) (string, error) {
	addr, err := CounterAddr(p)
	if err != nil {
		return "", err
	}
	_, err = b.WaitReady(p, addr)
	return addr, err
}

// WaitReady waits until the counter at addr answers /readyz: it owns its
// partitions.
func (b *Bed) WaitReady(p *testbed.Process, addr string) (time.Time, error) {
	deadline := time.Now().Add(b.Cfg.Timeout)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if p.Exited() {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("counter not ready within %s:\n%s", b.Cfg.Timeout, testbed.Tail(p.Output(), 20))
}

// WaitExact polls the counter's /metrics until it shows want exactly over
// every partition, and returns when it first did. A scrape of every cell
// costs the counter about a millisecond of CPU, so a count of a complete
// topic (steady) is polled as Pacer says; a count that follows a producer
// speeds up as the producer does, so it is polled every Poll.
func (b *Bed) WaitExact(ctx context.Context, addr string, want *vote.Tally, steady bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, b.Cfg.Timeout)
	defer cancel()
	pace := Pacer{Every: b.Poll}
	if pace.Every <= 0 {
		pace.Every = 20 * time.Millisecond
	}
	for {
		wait := pace.Every
		c, err := testbed.Scrape(ctx, addr)
		if err == nil && steady {
			wait = pace.Next(c.Tally.Total(), want.Total())
		}
		if err == nil && c.Partitions == b.Cfg.Partitions && c.Tally.Total() >= want.Total() {
			at := time.Now()
			if d := c.Tally.Diff(want, 5); len(d) > 0 || c.Tally.Total() != want.Total() {
				return at, fmt.Errorf("counted %d votes, want %d; wrong cells: %+v", c.Tally.Total(), want.Total(), d)
			}
			for r, n := range c.Rejected {
				if n != 0 {
					return at, fmt.Errorf("rejected %d records as %s", n, r)
				}
			}
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("counter did not reach %d votes: %w (last error %v)", want.Total(), ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// Pacer spaces the polls of a count of a complete topic, whose rate is
// steady: while the count is far from done it waits half the time the
// count so far says is left (at most a second), and near the end Every,
// so polls cost the counted process little while the time they report
// stays within Every of the truth.
type Pacer struct {
	Every   time.Duration
	firstAt time.Time
	firstN  int64
}

// Next is the wait before the next poll, given n of total counted now.
func (p *Pacer) Next(n, total int64) time.Duration {
	now := time.Now()
	switch {
	case n >= total:
	case p.firstAt.IsZero():
		p.firstAt, p.firstN = now, n
	case n > p.firstN:
		rate := float64(n-p.firstN) / now.Sub(p.firstAt).Seconds()
		left := time.Duration(float64(total-n) / rate * float64(time.Second))
		return min(max(p.Every, left/2), time.Second)
	}
	return p.Every
}
