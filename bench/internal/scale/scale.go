// Package scale is the bench's scale run: one whole election at a large
// SCALE, end to end, checked cell by cell, with each process's peak RSS and
// the broker's disk use.
package scale

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/votegen"
)

// Run publishes and counts one whole election at scale, end to end (the
// counter owns its partitions before the producer starts), checks the
// counts cell by cell against votegen.TrueTotals, and reports each
// process's peak RSS and the broker's disk use (dataDir), with a progress
// line every 30 s so a long run shows whether memory stays flat.
func Run(ctx context.Context, b *bed.Bed, scale float64, dataDir string, stdout, stderr io.Writer) error {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.Cfg.Seed, Scale: scale})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: scale run, SCALE=%g, %d votes, broker %s, data in %s\n", scale, want.Total(), b.Addr, dataDir)
	b.Poll = time.Second
	n := b.NewNames("scale")
	c, addr, _, err := b.StartCounter(n, fmt.Sprintf("SCALE=%g", scale))
	if err != nil {
		return err
	}
	defer c.Kill()
	p, err := b.StartProducer(n, scale, "BATCH_INTERVAL=0", "OUTPUT_DIR=")
	if err != nil {
		return err
	}
	defer func() {
		if !p.Exited() {
			p.Kill()
		}
	}()
	stopProgress := progress(ctx, b, addr, p, c, want.Total(), dataDir, stderr)
	defer stopProgress()

	done, err := b.WaitExact(ctx, addr, &want, false)
	if err != nil {
		return err
	}
	if err := bed.Finished(p, p.Wait(b.Cfg.Timeout)); err != nil {
		return err
	}
	pd, err := bed.Elapsed(p)
	if err != nil {
		return err
	}
	secs := done.Sub(p.Started).Seconds()
	rows := []bed.Row{
		{Name: "scale run: votestream producer", Votes: want.Total(), Seconds: pd.Seconds(), Versus: "-",
			RSSMiB: p.PeakMiB(), Wall: p.Ended().Sub(p.Started).Seconds(), CPU: p.CPUSeconds()},
		{Name: "scale run: votestream counter, exact cell by cell", Votes: want.Total(), Seconds: secs, Versus: "-",
			RSSMiB: c.PeakMiB(), Wall: secs},
	}
	if err := bed.Finished(c, c.Stop(time.Minute)); err != nil {
		return err
	}
	rows[1].CPU = c.CPUSeconds()
	disk := bed.DirSize(dataDir)
	bed.PrintTable(stdout, rows)
	fmt.Fprintf(stdout, "\nend to end %.1f s for %d votes (SCALE=%g), counts exact in every cell\n", secs, want.Total(), scale)
	fmt.Fprintf(stdout, "broker (kfake): peak RSS %.0f MiB, disk %.2f GiB (%.0f bytes/vote)\n",
		b.Broker.PeakMiB(), float64(disk)/(1<<30), float64(disk)/float64(want.Total()))
	bed.PrintMachine(stdout)
	return nil
}

// progress logs, every 30 s until stopped, how far the count is and the
// peak RSS of each process.
func progress(ctx context.Context, b *bed.Bed, addr string, producer, counter *testbed.Process, total int64, dataDir string, stderr io.Writer) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			counted := int64(-1)
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if got, err := testbed.Scrape(sctx, addr); err == nil {
				counted = got.Tally.Total()
			}
			cancel()
			fmt.Fprintf(stderr, "bench: %s counted %d of %d; peak RSS producer %.0f MiB, counter %.0f MiB, broker %.0f MiB; broker disk %.2f GiB\n",
				time.Since(producer.Started).Round(time.Second), counted, total, producer.PeakMiB(), counter.PeakMiB(), b.Broker.PeakMiB(),
				float64(bed.DirSize(dataDir))/(1<<30))
		}
	}()
	return func() { close(done) }
}
