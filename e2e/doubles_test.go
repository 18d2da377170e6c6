package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// sampleEvery is how often every replica's /metrics is read to catch a
// partition exported by two replicas at once.
const sampleEvery = 100 * time.Millisecond

// doubleStats is what a doubleWatch saw.
type doubleStats struct {
	Samples, Doubled int           // samples taken, and those showing a partition twice
	Longest          time.Duration // longest run of samples showing one partition twice, start of first to end of last
	MaxGap           time.Duration // longest time between two samples' starts
	First            string        // the first double seen
}

func (s doubleStats) String() string {
	out := fmt.Sprintf("%d samples of every replica's /metrics (at most %s apart), %d showed a partition twice, longest %s",
		s.Samples, s.MaxGap.Round(time.Millisecond), s.Doubled, s.Longest.Round(time.Millisecond))
	if s.First != "" {
		out += " (first: " + s.First + ")"
	}
	return out
}

// doubleWatch samples the fleet's replicas every sampleEvery, all at once,
// until stopped.
type doubleWatch struct {
	f    *fleet
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	stats doubleStats
	since map[int]time.Time // partition -> start of the first sample of its current double
	last  time.Time
}

func watchDoubles(f *fleet) *doubleWatch {
	w := &doubleWatch{f: f, stop: make(chan struct{}), done: make(chan struct{}), since: map[int]time.Time{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// sample reads every replica's partitions at once; a replica that does not
// answer within a second is left out of this sample.
func (w *doubleWatch) sample() {
	start := time.Now()
	addrs := w.f.live()
	owners := make([][]int, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			families, err := Metrics(ctx, a)
			if err != nil {
				return
			}
			for _, m := range families["votestream_counter_partition_offset"].GetMetric() {
				id, _ := strconv.Atoi(m.GetLabel()[0].GetValue())
				owners[i] = append(owners[i], id)
			}
		})
	}
	wg.Wait()
	end := time.Now()
	count := map[int][]string{}
	for i, ps := range owners {
		for _, p := range ps {
			count[p] = append(count[p], addrs[i])
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() {
		w.stats.MaxGap = max(w.stats.MaxGap, start.Sub(w.last))
	}
	w.last = start
	w.stats.Samples++
	doubled := false
	for p := range w.since {
		if len(count[p]) < 2 {
			delete(w.since, p)
		}
	}
	for p, by := range count {
		if len(by) < 2 {
			continue
		}
		doubled = true
		if _, ok := w.since[p]; !ok {
			w.since[p] = start
		}
		w.stats.Longest = max(w.stats.Longest, end.Sub(w.since[p]))
		if w.stats.First == "" {
			slices.Sort(by)
			w.stats.First = fmt.Sprintf("partition %d at %s by %v", p, start.Format("15:04:05.000"), by)
		}
	}
	if doubled {
		w.stats.Doubled++
	}
}

// Stop ends the sampling and returns what it saw.
func (w *doubleWatch) Stop() *doubleStats {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	return &s
}
