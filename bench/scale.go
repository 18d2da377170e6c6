package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/votestream/votestream/internal/rig"
	"github.com/votestream/votestream/pkg/votegen"
)

// scaleRun publishes and counts one whole election at cfg.scaleRun, end to
// end (the counter owns its partitions before the producer starts), checks
// the counts cell by cell against votegen.TrueTotals, and reports each
// process's peak RSS and the broker's disk use, with a progress line every
// 30 s so a long run shows whether memory stays flat.
func (b *bench) scaleRun(ctx context.Context, dataDir string, stdout, stderr io.Writer) error {
	scale := b.cfg.scaleRun
	sc := "SCALE=" + strconv.FormatFloat(scale, 'g', -1, 64)
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.cfg.seed, Scale: scale})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: scale run, SCALE=%g, %d votes, broker %s, data in %s\n", scale, want.Total(), b.addr, dataDir)
	b.poll = time.Second
	n := b.newNames("scale")
	c, addr, _, err := b.startCounter(n, sc)
	if err != nil {
		return err
	}
	defer c.Kill()
	p, err := startProc("producer", filepath.Join(b.cfg.bin, "producer"), nil, b.env(n,
		"SEED="+strconv.FormatUint(b.cfg.seed, 10), sc, "BATCH_INTERVAL=0", "OUTPUT_DIR="))
	if err != nil {
		return err
	}
	defer func() {
		if !p.Exited() {
			p.Kill()
		}
	}()

	stopProgress := make(chan struct{})
	defer close(stopProgress)
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
			}
			counted := int64(-1)
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if got, err := rig.Scrape(sctx, addr); err == nil {
				counted = got.Tally.Total()
			}
			cancel()
			fmt.Fprintf(stderr, "bench: %s counted %d of %d; peak RSS producer %.0f MiB, counter %.0f MiB, broker %.0f MiB; broker disk %.2f GiB\n",
				time.Since(p.Started).Round(time.Second), counted, want.Total(), p.PeakMiB(), c.PeakMiB(), b.broker.PeakMiB(),
				float64(dirSize(dataDir))/(1<<30))
		}
	}()

	done, err := b.waitExact(ctx, addr, &want, false)
	if err != nil {
		return err
	}
	if err := finished(p, p.Wait(b.cfg.timeout)); err != nil {
		return err
	}
	m := elapsedRE.FindStringSubmatch(p.Output())
	if m == nil {
		return fmt.Errorf("producer did not log its elapsed time:\n%s", rig.Tail(p.Output(), 20))
	}
	pd, err := time.ParseDuration(m[1])
	if err != nil {
		return err
	}
	secs := done.Sub(p.Started).Seconds()
	rows := []row{
		{name: "scale run: votestream producer", votes: want.Total(), seconds: pd.Seconds(), versus: "-",
			rssMiB: p.PeakMiB(), wall: p.Ended().Sub(p.Started).Seconds(), cpu: p.CPUSeconds()},
		{name: "scale run: votestream counter, exact cell by cell", votes: want.Total(), seconds: secs, versus: "-",
			rssMiB: c.PeakMiB(), wall: secs},
	}
	if err := finished(c, c.Stop(time.Minute)); err != nil {
		return err
	}
	rows[1].cpu = c.CPUSeconds()
	disk := dirSize(dataDir)
	printTable(stdout, rows)
	fmt.Fprintf(stdout, "\nend to end %.1f s for %d votes (SCALE=%g), counts exact in every cell\n", secs, want.Total(), scale)
	fmt.Fprintf(stdout, "broker (kfake): peak RSS %.0f MiB, disk %.2f GiB (%.0f bytes/vote)\n",
		b.broker.PeakMiB(), float64(disk)/(1<<30), float64(disk)/float64(want.Total()))
	fmt.Fprintf(stdout, "machine: %s, %d CPUs, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return nil
}
