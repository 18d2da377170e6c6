// Package viewers measures the count while live-page viewers watch: N
// viewers on /events and pollers on /results against the counter, and the
// same load against a stand-in server that only writes the bytes.
package viewers

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/votegen"
)

// The viewers run (-viewers N): the same count as the counter run, while N
// live-page viewers hold /events open and pollers ask /results for
// pollRate requests/s. The client side shares the machine with the counter,
// so it is kept cheap: raw TCP connections, one goroutine and an 8 KiB
// buffer each, and a viewer only looks for the "id: N" line of each event.

const (
	pollConns   = 64 // kept-alive connections they are spread over
	pollBatch   = 16 // requests each sends at once (HTTP/1.1 pipelining)
	dialers     = 64 // viewers connecting at once
	viewerBuf   = 8 << 10
	connectWait = time.Minute
)

// received is one event a viewer got: its frame id and when.
type received struct {
	id uint64
	at time.Time
}

type viewer struct {
	conn    net.Conn
	got     []received // read by others once the viewer ended
	err     error      // likewise
	started atomic.Bool
	ended   atomic.Bool // its stream ended: before close, the server let it go
}

// viewerLoad is N viewers, the pollers and one monitor stream that decodes
// each event's offsets, against one counter.
type viewerLoad struct {
	addr    string
	viewers []*viewer
	wg      sync.WaitGroup
	stop    chan struct{}

	polls, unchanged, pollErrs atomic.Int64
	pollFrom                   time.Time

	mu      sync.Mutex
	frames  map[uint64]map[int]int64 // frame id -> offsets it covers (from the monitor)
	ids     map[uint64]uint64        // fingerprint of a frame's piece -> frame id
	order   []uint64
	monitor *viewer
}

// raiseFileLimit lets this process hold n viewers' sockets, up to the
// hard limit.
func raiseFileLimit(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	want := uint64(n) + 256
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		return fmt.Errorf("-viewers %d needs %d open files, the hard limit is %d (raise ulimit -Hn)", n, want, lim.Max)
	}
	lim.Cur = want
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// connectViewers opens n event streams and the monitor, and waits until
// every one has its first event.
func connectViewers(ctx context.Context, addr string, n int) (*viewerLoad, error) {
	l := &viewerLoad{addr: addr, stop: make(chan struct{}), frames: make(map[uint64]map[int]int64), ids: make(map[uint64]uint64)}
	if err := l.startMonitor(); err != nil {
		return nil, err
	}
	l.viewers = make([]*viewer, n)
	var firstEvents sync.WaitGroup
	sem := make(chan struct{}, dialers)
	var dialErr atomic.Value
	for i := range l.viewers {
		v := &viewer{}
		l.viewers[i] = v
		sem <- struct{}{}
		firstEvents.Add(1)
		l.wg.Go(func() {
			err := v.open(addr)
			<-sem
			if err != nil {
				dialErr.CompareAndSwap(nil, err)
				firstEvents.Done()
				return
			}
			v.read(firstEvents.Done)
		})
	}
	done := make(chan struct{})
	go func() { firstEvents.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(connectWait):
		l.close()
		return nil, fmt.Errorf("%d viewers not all connected within %s", n, connectWait)
	}
	if err, _ := dialErr.Load().(error); err != nil {
		l.close()
		return nil, fmt.Errorf("viewer: %w", err)
	}
	for _, v := range l.viewers {
		if !v.started.Load() {
			l.close()
			return nil, fmt.Errorf("a viewer's stream ended before anything came: %v", v.err)
		}
	}
	return l, nil
}

func (v *viewer) open(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	// As a browser asks: gzip accepted.
	if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n\r\n"); err != nil {
		c.Close()
		return err
	}
	v.conn = c
	return nil
}

// read records every piece of the stream it gets, by fingerprint, until
// the connection ends; first is called once, at the first piece or the
// end. The stream is chunked and gzipped, one chunk per event, each event
// compressed on its own and the same bytes for every viewer (as
// pkg/results/web sends it): the monitor, which inflates them, maps
// fingerprints to frames, so a viewer inflates nothing.
func (v *viewer) read(first func()) {
	var once sync.Once
	defer once.Do(first)
	defer v.ended.Store(true)
	br := bufio.NewReaderSize(v.conn, viewerBuf)
	if v.err = skipHeader(br); v.err != nil {
		return
	}
	v.err = eachChunk(br, func(piece []byte) {
		v.got = append(v.got, received{fingerprint(piece), time.Now()})
		v.started.Store(true)
		once.Do(first)
	})
}

// eachChunk calls fn with each chunk of a chunked body (up to the reader's
// buffer size; longer ones are skipped) until the body or the connection
// ends.
func eachChunk(br *bufio.Reader, fn func([]byte)) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || size == 0 {
			return fmt.Errorf("chunk size %q: %v", line, err)
		}
		if data, err := br.Peek(int(size)); err == nil {
			fn(data)
		}
		if _, err := br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

// fingerprint tells pieces apart by their length and last bytes: a
// compressed frame's end depends on all of it.
func fingerprint(piece []byte) uint64 {
	h := fnv.New64a()
	h.Write(piece[max(0, len(piece)-32):])
	return h.Sum64() ^ uint64(len(piece))<<40
}

func skipHeader(br *bufio.Reader) error {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.Contains(status, []byte(" 200 ")) {
		return fmt.Errorf("/events: %s", bytes.TrimSpace(status))
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
	}
}

// startMonitor follows /events as the viewers do and inflates each piece
// (each is compressed on its own) to learn its frame's id and offsets.
func (l *viewerLoad) startMonitor() error {
	m := &viewer{}
	if err := m.open(l.addr); err != nil {
		return err
	}
	br := bufio.NewReaderSize(m.conn, 256<<10)
	if err := skipHeader(br); err != nil {
		m.conn.Close()
		return fmt.Errorf("monitor: %w", err)
	}
	l.monitor = m
	l.wg.Go(func() {
		zr := flate.NewReader(bytes.NewReader(nil))
		_ = eachChunk(br, func(piece []byte) {
			if len(piece) >= 10 && piece[0] == 0x1f && piece[1] == 0x8b {
				return // the gzip header and the retry delay
			}
			if zr.(flate.Resetter).Reset(bytes.NewReader(piece), nil) != nil {
				return
			}
			text, _ := io.ReadAll(zr)
			var id uint64
			var r struct {
				Offsets map[int]int64 `json:"offsets"`
			}
			for line := range strings.SplitSeq(string(text), "\n") {
				if s, ok := strings.CutPrefix(line, "id: "); ok {
					id, _ = strconv.ParseUint(s, 10, 64)
				} else if s, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(s), &r) == nil {
					l.mu.Lock()
					l.frames[id] = r.Offsets
					l.ids[fingerprint(piece)] = id
					l.order = append(l.order, id)
					l.mu.Unlock()
				}
			}
		})
	})
	return nil
}

// startPolling asks /results rate times a second, gzip accepted, over
// pollConns kept-alive connections, until close. Like the page's fetch
// (cache: "no-cache"), each poller revalidates what it has with
// If-None-Match: unchanged results come back 304 Not Modified.
func (l *viewerLoad) startPolling(rate int) {
	l.pollFrom = time.Now()
	if rate <= 0 {
		return
	}
	every := time.Second * pollConns * pollBatch / time.Duration(rate)
	for range pollConns {
		l.wg.Go(func() {
			c, err := net.DialTimeout("tcp", l.addr, 10*time.Second)
			if err != nil {
				l.pollErrs.Add(1)
				return
			}
			go func() { <-l.stop; c.Close() }()
			br := bufio.NewReaderSize(c, viewerBuf)
			var etag string
			next := time.Now()
			for {
				if _, err := c.Write(pollRequests(etag)); err != nil {
					return
				}
				for range pollBatch {
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						return
					}
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					switch {
					case err != nil && l.stopping():
						return // close cut the body short: no error of the server's
					case err != nil:
						l.pollErrs.Add(1)
					case res.StatusCode == http.StatusOK:
						etag = res.Header.Get("ETag")
						l.polls.Add(1)
					case res.StatusCode == http.StatusNotModified:
						l.unchanged.Add(1)
						l.polls.Add(1)
					default:
						l.pollErrs.Add(1)
					}
				}
				next = next.Add(every)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				} else if d < -time.Second {
					next = time.Now() // behind: do not burst to catch up
				}
			}
		})
	}
}

// stopping reports whether close has begun.
func (l *viewerLoad) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// pollRequests is one batch of pipelined requests for /results.
func pollRequests(etag string) []byte {
	req := "GET /results HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n"
	if etag != "" {
		req += "If-None-Match: " + etag + "\r\n"
	}
	return bytes.Repeat([]byte(req+"\r\n"), pollBatch)
}

// ended counts the viewers whose stream has ended.
func (l *viewerLoad) ended() int {
	n := 0
	for _, v := range l.viewers {
		if v.ended.Load() {
			n++
		}
	}
	return n
}

// notModified is the share of the answers to the pollers that were 304.
func (l *viewerLoad) notModified() float64 {
	return float64(l.unchanged.Load()) / max(float64(l.polls.Load()), 1)
}

// pollRateNow is the /results rate since startPolling.
func (l *viewerLoad) pollRateNow() float64 {
	return float64(l.polls.Load()) / time.Since(l.pollFrom).Seconds()
}

func (l *viewerLoad) close() {
	if l.stopping() {
		return
	}
	close(l.stop)
	for _, v := range append(l.viewers, l.monitor) {
		if v != nil && v.conn != nil {
			v.conn.Close()
		}
	}
	l.wg.Wait()
}

// viewerReport is what the viewers run found.
type viewerReport struct {
	viewers, dropped, missedFinal int
	delays                        []time.Duration // sorted
	changes                       int
}

func (r viewerReport) quantile(q float64) time.Duration {
	if len(r.delays) == 0 {
		return 0
	}
	return r.delays[min(len(r.delays)-1, int(q*float64(len(r.delays))))]
}

// report computes, for every checkpoint written while the viewers
// watched and every viewer, the delay from the checkpoint's write to the
// viewer's first event that includes it; and how many viewers never got
// the frame with the final offsets.
func (l *viewerLoad) report(ckpts []checkpoint.State, final map[int]int64) viewerReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	// covering: the first frame, in the monitor's order, with offsets[p] >= o.
	covering := func(p int, o int64) (uint64, bool) {
		for _, id := range l.order {
			if l.frames[id][p] >= o {
				return id, true
			}
		}
		return 0, false
	}
	r := viewerReport{viewers: len(l.viewers)}
	finalID, finalOK := uint64(0), false
	for _, id := range l.order {
		if complete(l.frames[id], final) {
			finalID, finalOK = id, true
			break
		}
	}
	type change struct {
		frame   uint64
		written time.Time
	}
	var changes []change
	for _, st := range ckpts {
		if id, ok := covering(int(st.Partition), st.Offset); ok {
			changes = append(changes, change{id, time.UnixMilli(st.Written)})
		}
	}
	r.changes = len(changes)
	for _, v := range l.viewers {
		if v.err != nil && !isClosed(v.err) {
			r.dropped++
		}
		// Fingerprints to frames; keep-alives and the header are no frame.
		got := v.got[:0]
		for _, g := range v.got {
			if id, ok := l.ids[g.id]; ok {
				got = append(got, received{id, g.at})
			}
		}
		v.got = got
		if len(v.got) == 0 {
			r.missedFinal++
			continue
		}
		if !finalOK || v.got[len(v.got)-1].id < finalID {
			r.missedFinal++
		}
		firstID := v.got[0].id
		for _, c := range changes {
			if c.frame <= firstID {
				continue // before this viewer connected
			}
			i, _ := slices.BinarySearchFunc(v.got, c.frame, func(g received, id uint64) int { return cmp.Compare(g.id, id) })
			if i < len(v.got) {
				r.delays = append(r.delays, v.got[i].at.Sub(c.written))
			}
		}
	}
	slices.Sort(r.delays)
	return r
}

// reportSince is the report of the checkpoints written after from, to the
// end offsets topic has now.
func (l *viewerLoad) reportSince(ctx context.Context, b *bed.Bed, topic string, ckpts []checkpoint.State, from time.Time) (viewerReport, error) {
	final, err := b.Client.EndOffsets(ctx, topic, b.Cfg.Partitions)
	if err != nil {
		return viewerReport{}, err
	}
	var watched []checkpoint.State
	for _, st := range ckpts {
		if time.UnixMilli(st.Written).After(from) {
			watched = append(watched, st)
		}
	}
	return l.report(watched, final), nil
}

func complete(got, want map[int]int64) bool {
	for p, o := range want {
		if got[p] < o {
			return false
		}
	}
	return true
}

func isClosed(err error) bool {
	return err == nil || strings.Contains(err.Error(), "use of closed network connection")
}

// readCheckpoints returns every checkpoint record of topic's partitions.
// The bench's client may not know the topic yet: it asks again, up to five
// times a second apart.
func readCheckpoints(ctx context.Context, b *bed.Bed, topic string, parts int) ([]checkpoint.State, error) {
	for try := 0; ; try++ {
		ckpts, err := readCheckpointsOnce(ctx, b, topic, parts)
		if err == nil || try == 5 {
			return ckpts, err
		}
		time.Sleep(time.Second)
	}
}

func readCheckpointsOnce(ctx context.Context, b *bed.Bed, topic string, parts int) ([]checkpoint.State, error) {
	var out []checkpoint.State
	for p := range parts {
		_, end, err := b.Client.Offsets(ctx, topic, p)
		if err != nil {
			return nil, err
		}
		for off := int64(0); off < end; {
			recs, next, _, err := b.Client.FetchFrom(ctx, topic, p, off, time.Second)
			if err != nil {
				return nil, err
			}
			for _, rec := range recs {
				var st checkpoint.State
				if st.UnmarshalBinary(rec.Value) == nil {
					out = append(out, st)
				}
			}
			if next <= off {
				break
			}
			off = next
		}
	}
	return out, nil
}

// watchedRun is one count of a complete topic, with or without viewers.
type watchedRun struct {
	row    bed.Row
	report viewerReport
	polled float64 // /results requests per second
	same   float64 // the share of them answered 304 Not Modified
	cpu    cpuUse  // while the count was timed
}

// countWatched counts topic with a fresh counter while viewers viewers
// watch /events and pollers ask /results (none if viewers is 0): the
// counter's, or with elsewhere a stand-in server's (see standIn). The
// viewers connect while the counter starts; its rate is counted from the
// later of its readiness and their all being connected, to every vote
// checkpointed, from the checkpoints' own write times, so every kind of
// run is measured alike.
func (v *Runs) countWatched(ctx context.Context, b *bed.Bed, topic bed.Names, scale float64, viewers int, elsewhere bool) (watchedRun, error) {
	var w watchedRun
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.Cfg.Seed, Scale: scale})
	if err != nil {
		return w, err
	}
	n := b.NewNames("viewers")
	n.Topic = topic.Topic
	extra := []string{"HTTP_MAX_VIEWERS=" + strconv.Itoa(viewers+16)}
	if b.Cfg.ProfileDir != "" {
		extra = append(extra, "CPU_PROFILE="+filepath.Join(b.Cfg.ProfileDir, fmt.Sprintf("viewers-%d-%d.prof", viewers, b.Topics())))
	}
	p, err := bed.StartProc("counter", filepath.Join(b.Cfg.Bin, "counter"), nil, b.Env(n, extra...))
	if err != nil {
		return w, err
	}
	defer func() {
		if !p.Exited() {
			p.Kill()
		}
	}()
	addr, err := bed.CounterAddr(p)
	if err != nil {
		return w, err
	}
	readyc := make(chan time.Time, 1)
	go func() { t, _ := b.WaitReady(p, addr); readyc <- t }()
	from := time.Now()
	var load *viewerLoad
	var server *testbed.Process
	if viewers > 0 {
		target := addr
		if elsewhere {
			s, saddr, err := startStandIn(b, scale)
			if err != nil {
				return w, err
			}
			defer func() { _ = s.Stop(10 * time.Second) }()
			target, server = saddr, s
		}
		if load, err = connectViewers(ctx, target, viewers); err != nil {
			return w, err
		}
		defer load.close()
		load.startPolling(v.PollRate)
		from = time.Now()
		fmt.Fprintf(b.Log, "bench: %d viewers connected in %s\n", viewers, from.Sub(p.Started).Round(time.Millisecond))
	}
	ready := <-readyc
	if ready.IsZero() {
		return w, fmt.Errorf("counter not ready:\n%s", testbed.Tail(p.Output(), 20))
	}
	from = later(from, ready)
	start := markCPU(p, b.Broker, server)
	if _, err := b.WaitExact(ctx, addr, &want, true); err != nil {
		return w, err
	}
	w.cpu = markCPU(p, b.Broker, server).since(start)
	if load != nil {
		w.polled, w.same = load.pollRateNow(), load.notModified()
		if n := load.ended(); elsewhere && n > 0 {
			// The stand-in's load would be lighter than the counter's.
			return w, fmt.Errorf("the stand-in let %d of %d viewers go", n, viewers)
		}
		if !elsewhere {
			// Every viewer must get the final offsets: wait a frame or two.
			time.Sleep(4 * time.Second)
		}
		load.close()
	}
	w.row = bed.Row{Name: fmt.Sprintf("votestream counter, %d viewers on /events + /results polled", viewers), RSSMiB: p.PeakMiB()}
	if elsewhere {
		w.row.Name = fmt.Sprintf("votestream counter, the same %d viewers on a stand-in server", viewers)
	}
	// No CPU per vote: the process's CPU covers more than the votes the
	// window counts.
	if err = bed.Finished(p, p.Stop(30*time.Second)); err != nil {
		return w, err
	}
	ckpts, err := readCheckpoints(ctx, b, n.Ckpt, b.Cfg.Partitions)
	if err != nil {
		return w, err
	}
	w.row.Votes, w.row.Seconds = countedSince(ckpts, from, want.Total())
	w.row.Wall = w.row.Seconds
	if load != nil && !elsewhere {
		if w.report, err = load.reportSince(ctx, b, n.Topic, ckpts, from); err != nil {
			return w, err
		}
	}
	return w, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// countedSince is the votes counted after from, to total, and the seconds
// it took, from the checkpoints' write times: the state as of from is the
// newest checkpoint of each partition written before it.
func countedSince(ckpts []checkpoint.State, from time.Time, total int64) (int64, float64) {
	s := slices.Clone(ckpts)
	slices.SortFunc(s, func(a, b checkpoint.State) int { return cmp.Compare(a.Written, b.Written) })
	offsets := map[int32]int64{}
	sum := func() (n int64) {
		for _, o := range offsets {
			n += o
		}
		return n
	}
	var base int64
	started := false
	for _, st := range s {
		at := time.UnixMilli(st.Written)
		if !started && !at.Before(from) {
			base, started = sum(), true
		}
		offsets[st.Partition] = max(offsets[st.Partition], st.Offset)
		if started && sum() >= total {
			return total - base, at.Sub(from).Seconds()
		}
	}
	return 0, 0
}

// Runs pairs each counter run with the viewers runs after it: the
// count alone, watched, and with the same load on a stand-in server.
type Runs struct {
	Config
	alone, watched, standIn []watchedRun
}

// Config is the viewers' load.
type Config struct {
	Viewers  int // live-page viewers on /events
	PollRate int // /results requests per second, in total
}

// Run counts topic three times after a counter run: alone, watched by the
// viewers, and with the same load on a stand-in server.
func (v *Runs) Run(ctx context.Context, b *bed.Bed, topic bed.Names, scale float64) error {
	if err := raiseFileLimit(v.Viewers); err != nil {
		return err
	}
	alone, err := v.countWatched(ctx, b, topic, scale, 0, false)
	if err != nil {
		return fmt.Errorf("count without viewers: %w", err)
	}
	w, err := v.countWatched(ctx, b, topic, scale, v.Viewers, false)
	if err != nil {
		return fmt.Errorf("count with viewers: %w", err)
	}
	s, err := v.countWatched(ctx, b, topic, scale, v.Viewers, true)
	if err != nil {
		return fmt.Errorf("count with the viewers on a stand-in server: %w", err)
	}
	r, rep := w.row, w.report
	fmt.Fprintf(b.Log, "bench: viewers run: %s votes/s alone, %s votes/s watched (%.2f), /results %.0f req/s, peak RSS %.0f / %.0f MiB, delay p99 %s; "+
		"the load on a stand-in: %s votes/s (%.2f), /results %.0f req/s\n",
		bed.Human(alone.row.Rate()), bed.Human(r.Rate()), r.Rate()/alone.row.Rate(), w.polled, alone.row.RSSMiB, r.RSSMiB, rep.quantile(0.99).Round(time.Millisecond),
		bed.Human(s.row.Rate()), s.row.Rate()/alone.row.Rate(), s.polled)
	v.alone = append(v.alone, alone)
	v.watched, v.standIn = append(v.watched, w), append(v.standIn, s)
	return nil
}

// ratios are each run's rate over the count alone's before it.
func (v *Runs) ratios(runs []watchedRun) []float64 {
	out := make([]float64, len(runs))
	for j := range runs {
		out[j] = runs[j].row.Rate() / v.alone[j].row.Rate()
	}
	return out
}

// medianIndex is the index of the median of ratios.
func medianIndex(ratios []float64) int {
	idx := make([]int, len(ratios))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(ratios[a], ratios[b]) })
	return idx[(len(idx)-1)/2]
}

// rows are the median watched run and the median stand-in run, each
// against the count alone before it.
func (v *Runs) Rows() []bed.Row {
	var out []bed.Row
	for _, runs := range [][]watchedRun{v.watched, v.standIn} {
		if len(runs) == 0 {
			continue
		}
		ratios := v.ratios(runs)
		i := medianIndex(ratios)
		r := runs[i].row
		r.Versus = fmt.Sprintf("%.2f of the count alone", ratios[i])
		if len(runs) > 1 {
			r.Versus += fmt.Sprintf(" (median of %d)", len(runs))
		}
		out = append(out, r)
	}
	return out
}

func (v *Runs) Print(w io.Writer) {
	if len(v.watched) == 0 {
		return
	}
	ratios := v.ratios(v.watched)
	i := medianIndex(ratios)
	med, alone := v.watched[i], v.alone[i].row
	rep := med.report
	perViewer := (med.row.RSSMiB - alone.RSSMiB) * 1024 / float64(rep.viewers)
	fmt.Fprintf(w, "viewers: %d on /events and /results at %.0f requests/s (%.0f%% of them 304 Not Modified) during the count: rate ratio to the count alone %s (goal >= 0.90); "+
		"peak RSS %.0f MiB alone, %.0f MiB watched: %.1f KiB per viewer; %d changes seen by every viewer, delay checkpoint written to viewer got it: "+
		"p50 %s, p99 %s, max %s (goal p99 <= BATCH_MAX_WAIT + 1 s = 2 s); %d viewers dropped, %d missed the final totals\n",
		rep.viewers, med.polled, 100*med.same, bed.JoinRatios(ratios), alone.RSSMiB, med.row.RSSMiB, perViewer, rep.changes,
		rep.quantile(0.5).Round(time.Millisecond), rep.quantile(0.99).Round(time.Millisecond), rep.quantile(1).Round(time.Millisecond),
		rep.dropped, rep.missedFinal)
	standIn := v.ratios(v.standIn)
	kept := make([]float64, len(ratios))
	for k := range kept {
		kept[k] = ratios[k] / standIn[k]
	}
	fmt.Fprintf(w, "viewers on a stand-in: the same load on a server process that only writes the bytes (/results at %.0f requests/s) left the count at %s of alone, "+
		"what the load itself costs this machine; watched over stand-in, pair by pair: %s (median %.2f)\n",
		v.standIn[medianIndex(standIn)].polled, bed.JoinRatios(standIn), bed.JoinRatios(kept), kept[medianIndex(kept)])
	v.printCPU(w)
}
