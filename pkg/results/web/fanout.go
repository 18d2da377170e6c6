package web

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// fanout serves the viewers on plain TCP connections without a goroutine
// each: the publisher writes every new frame to each of them in turn, one
// system call that must not wait. A viewer whose socket cannot take the
// whole piece then gets a goroutine that writes the rest, under
// ViewerTimeout, and catches up to the newest frame before handing the
// viewer back. 10,000 viewers so cost the GC a slice of small structs
// rather than 20,000 goroutines to scan, and the scheduler nothing.
type fanout struct {
	hub                *hub
	timeout, keepAlive time.Duration

	mu      sync.Mutex
	viewers []*fanViewer
	closed  bool
	sentID  uint64    // the newest frame a pass has sent
	quiet   time.Time // when that or the last keep-alive was sent
	swept   time.Time // when the viewers were last checked for leaving
	scratch []byte    // what leaving viewers' sockets are read into
}

// eachRun is how many viewers each goes through under the lock at a time.
const eachRun = 256

// fanViewer is one viewer; the fanout's mutex guards all of it but conn.
type fanViewer struct {
	conn    *net.TCPConn
	raw     syscall.RawConn
	enc     streamEncoder
	chunked bool
	sent    uint64 // the id of the last frame sent
	busy    bool   // a goroutine is writing to it: skip it
	i       int    // its index in viewers, -1 once removed
}

func newFanout(h *hub, timeout, keepAlive time.Duration) *fanout {
	return &fanout{hub: h, timeout: timeout, keepAlive: keepAlive, quiet: time.Now(), scratch: make([]byte, 512)}
}

// add serves c as a viewer from now on, sending it the header, the start
// and the current frame from the calling goroutine. It reports false if
// it cannot (not a TCP connection, or no raw I/O here); the caller keeps c.
func (fo *fanout) add(c hijacked, enc streamEncoder) bool {
	tcp, ok := c.conn.(*net.TCPConn)
	if !ok || !rawIO {
		return false
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return false
	}
	v := &fanViewer{conn: tcp, raw: raw, enc: enc, chunked: c.chunked, busy: true}
	fo.mu.Lock()
	if fo.closed {
		fo.mu.Unlock()
		fo.hub.viewers.Add(-1)
		tcp.Close()
		return true
	}
	ed := fo.hub.edition()
	v.sent = ed.f.id
	first := append(append(c.head, enc.start().wire(c.chunked)...), enc.event(ed).wire(c.chunked)...)
	v.i = len(fo.viewers)
	fo.viewers = append(fo.viewers, v)
	fo.mu.Unlock()
	fo.own(v, first)
	return true
}

// own writes b to v, which is busy, waiting up to the timeout; then the
// frames v has missed meanwhile, until it is up to date and idle again.
func (fo *fanout) own(v *fanViewer, b []byte) {
	for {
		_ = v.conn.SetWriteDeadline(time.Now().Add(fo.timeout))
		_, err := v.conn.Write(b)
		// An expired deadline would fail the fanout's writes too.
		_ = v.conn.SetWriteDeadline(time.Time{})
		fo.mu.Lock()
		switch {
		case err != nil:
			if isTimeout(err) {
				fo.hub.dropped.Add(1)
			}
			fo.remove(v)
		case fo.closed:
			b = v.end()
			fo.mu.Unlock()
			_ = v.conn.SetWriteDeadline(time.Now().Add(fo.timeout))
			_, _ = v.conn.Write(b)
			fo.mu.Lock()
			fo.remove(v)
		default:
			if f := fo.hub.current(); f.id != v.sent {
				v.sent = f.id
				b = v.enc.event(f.at(fo.hub.now())).wire(v.chunked)
				fo.mu.Unlock()
				continue
			}
			v.busy = false
		}
		fo.mu.Unlock()
		return
	}
}

// end is what ends v's body cleanly: its encoder's end, then the last
// chunk if chunked.
func (v *fanViewer) end() []byte {
	b := v.enc.end().wire(v.chunked)
	if v.chunked {
		b = append(b, lastChunk...)
	}
	return b
}

// remove forgets v and closes its connection. The mutex must be held.
func (fo *fanout) remove(v *fanViewer) {
	if v.i < 0 {
		return
	}
	last := fo.viewers[len(fo.viewers)-1]
	fo.viewers[v.i], last.i = last, v.i
	fo.viewers[len(fo.viewers)-1] = nil
	fo.viewers = fo.viewers[:len(fo.viewers)-1]
	v.i = -1
	v.conn.Close()
	fo.hub.viewers.Add(-1)
}

// pass sends the current frame to every idle viewer that lacks it, or a
// keep-alive if nothing was sent for keepAlive, and once a second looks
// for viewers that left. The publisher calls it after each refresh.
func (fo *fanout) pass(now time.Time) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if fo.closed {
		return
	}
	f := fo.hub.current()
	var ed *edition // made when a viewer needs it: an idle tick makes none
	at := func() *edition {
		if ed == nil {
			ed = f.at(fo.hub.now())
		}
		return ed
	}
	// Every tick, not only on a new frame: a viewer can miss one while
	// each lets go of the lock (see there).
	fo.each(func(v *fanViewer) []byte {
		if v.sent == f.id {
			return nil
		}
		v.sent = f.id
		return v.enc.event(at()).wire(v.chunked)
	})
	if fo.closed {
		return // while each let go of the lock
	}
	switch {
	case f.id != fo.sentID:
		fo.sentID, fo.quiet = f.id, now
	case now.Sub(fo.quiet) >= fo.keepAlive:
		fo.each(func(v *fanViewer) []byte { return v.enc.keepAlive(at()).wire(v.chunked) })
		fo.quiet = now
	}
	if fo.closed {
		return
	}
	if now.Sub(fo.swept) >= time.Second {
		fo.sweep()
		fo.swept = now
	}
}

// each writes what piece returns to every idle viewer without waiting:
// what the socket cannot take at once, a goroutine sends (see own); a
// viewer whose connection failed is removed. Every eachRun viewers it
// lets go of the lock, so that joining viewers and catching-up ones need
// not wait for all the writes of a change (10,000 take a few hundred ms
// on a loaded machine); a viewer another one's removal moves behind i
// meanwhile is missed this time, and caught up at the next tick.
func (fo *fanout) each(piece func(*fanViewer) []byte) {
	for i, run := 0, 0; i < len(fo.viewers); run++ {
		if run == eachRun {
			fo.mu.Unlock()
			fo.mu.Lock()
			if fo.closed {
				return
			}
			run = 0
		}
		v := fo.viewers[i]
		if v.busy {
			i++
			continue
		}
		b := piece(v)
		if len(b) == 0 {
			i++ // it has this frame already
			continue
		}
		n, err := tryWrite(v.raw, b)
		switch {
		case err != nil:
			fo.remove(v) // viewers[i] is another viewer now
			continue
		case n < len(b):
			v.busy = true
			go fo.own(v, b[n:])
		}
		i++
	}
}

// sweep removes the idle viewers that closed their side: a viewer sends
// nothing after its request, so a read that does not have to wait finds
// either nothing (still there) or the end.
func (fo *fanout) sweep() {
	for i := 0; i < len(fo.viewers); {
		v := fo.viewers[i]
		if !v.busy && !tryRead(v.raw, fo.scratch) {
			fo.remove(v)
			continue
		}
		i++
	}
}

// close ends every stream: cleanly for the idle viewers whose sockets take
// the end at once, while the busy ones end when their goroutine is done.
func (fo *fanout) close() {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	fo.closed = true
	for i := 0; i < len(fo.viewers); {
		v := fo.viewers[i]
		if v.busy {
			i++
			continue
		}
		_, _ = tryWrite(v.raw, v.end())
		fo.remove(v)
	}
}
