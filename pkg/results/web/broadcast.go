package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// frame is one encoding of the results, made once per change and shared by
// every /results reply and every event stream: the same bytes for all,
// the age aside (see edition).
type frame struct {
	id   uint64
	asOf time.Time // when the results were true; zero: they have no age
	// The /results body (without its newline) is head, the age, tail;
	// without an age, head alone.
	head, tail []byte
	idLine     []byte // "id: N\ndata: ", which begins the frame as an event
	etag       string

	// The same compressed, each alone, for the gzip replies and streams.
	gzID, gzHead, gzTail deflated

	ed atomic.Pointer[edition] // the newest edition served

	next chan struct{} // closed when a newer frame replaces this one
}

// newFrame makes frame id of body, the results encoded with their age at
// ageMark (or none) and true as of asOf.
func newFrame(id uint64, body []byte, asOf time.Time) *frame {
	h := fnv.New64a()
	h.Write(body)
	head, tail, aged := cutAge(body)
	if !aged {
		asOf = time.Time{}
	}
	idLine := append(strconv.AppendUint([]byte("id: "), id, 10), "\ndata: "...)
	return &frame{
		id: id, asOf: asOf, head: head, tail: tail, idLine: idLine,
		etag:   `"` + strconv.FormatUint(h.Sum64(), 36) + `"`,
		gzID:   stored(idLine),
		gzHead: compress(head),
		gzTail: compress(tail),
		next:   make(chan struct{}),
	}
}

// hub holds the current frame and counts the viewers. A viewer waits on
// the frame it last sent to be replaced and then takes the newest: its
// whole queue is that one pointer, so a slow viewer skips to the latest
// results and costs no memory per change, and the publisher never waits
// for any viewer.
type hub struct {
	cur     atomic.Pointer[frame]
	lastKey []byte           // the last results encoded; publisher only
	now     func() time.Time // the clock of the results' age

	viewers, refused, dropped atomic.Int64

	plain *plainPieces
	gz    *gzipPieces
}

func (h *hub) current() *frame { return h.cur.Load() }

// edition is the current frame as it is to be served now.
func (h *hub) edition() *edition { return h.current().at(h.now()) }

// publish makes a frame of body, the results true as of asOf encoded with
// their age at ageMark, unless the current frame already shows them.
func (h *hub) publish(body []byte, asOf time.Time) {
	if bytes.Equal(body, h.lastKey) {
		return
	}
	h.lastKey = body
	var id uint64 = 1
	old := h.cur.Load()
	if old != nil {
		id = old.id + 1
	}
	h.cur.Store(newFrame(id, body, asOf))
	if old != nil {
		close(old.next)
	}
}

// admit counts a new viewer, or refuses it past max (no limit if max is
// 0, none admitted if negative).
func (h *hub) admit(max int) bool {
	if max < 0 {
		h.refused.Add(1)
		return false
	}
	if n := h.viewers.Add(1); max > 0 && n > int64(max) {
		h.viewers.Add(-1)
		h.refused.Add(1)
		return false
	}
	return true
}

// refresh publishes the current results if they changed.
func (h *Handler) refresh() {
	res := h.source()
	res.AgeSeconds = 0
	if !res.AsOf.IsZero() {
		res.AgeSeconds = ageMark // the age is put in when served
	}
	body, err := json.Marshal(&res)
	if err != nil {
		return // results.Results always marshals; nothing better to do
	}
	h.hub.publish(body, res.AsOf)
}

// publishLoop refreshes the frame every Interval, and sends it to the
// fanout's viewers, until Close.
func (h *Handler) publishLoop() {
	t := time.NewTicker(h.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case now := <-t.C:
			h.refresh()
			h.fan.pass(now)
		}
	}
}

// serveResults sends the current frame at its age now, gzipped if the
// client accepts it, or 304 Not Modified if the client already has it
// (If-None-Match): the same results at the same age, to the second.
func (h *Handler) serveResults(w http.ResponseWriter, r *http.Request) {
	ed := h.hub.edition()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	// A shared cache (the nginx in front, a CDN) may answer with it for a
	// second: one request a second reaches the origin however many poll;
	// after that it asks again, with the ETag.
	hdr.Set("Cache-Control", "public, max-age=1")
	hdr.Set("Vary", "Accept-Encoding")
	write, length, etag := ed.writeJSON, ed.length, ed.etag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		// Another representation, another tag.
		write, length, etag = ed.writeGzip, ed.gzLength, ed.gzTag
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("ETag", etag)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		hdr.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(length))
	if r.Method == http.MethodHead {
		return
	}
	write(w)
}

// serveEvents streams the results: the current frame at once, then each
// newer one, until the client goes or Close is called. A viewer past
// MaxViewers gets 503 with Retry-After; one that cannot take an event
// within ViewerTimeout is disconnected. A client that accepts gzip gets
// the frames' compressed bytes, made once for all (see gzipStream). A
// plain TCP connection goes to the fanout, which needs no goroutine per
// viewer; a TLS one, or HTTP/2, keeps a goroutine that streams to it.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	if !h.hub.admit(h.opt.MaxViewers) {
		w.Header().Set("Retry-After", strconv.Itoa(int(h.opt.RetryAfter/time.Second)))
		msg := "too many viewers on this replica: poll /results, or retry later"
		if h.opt.MaxViewers < 0 {
			msg = "no event streams on this replica: poll /results"
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx would hold events back
	hdr.Set("Vary", "Accept-Encoding")
	var enc streamEncoder = plainStream{h.hub.plain}
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		hdr.Set("Content-Encoding", "gzip")
		enc = &gzipStream{pieces: h.hub.gz}
	}
	if r.Method == http.MethodHead {
		h.hub.viewers.Add(-1)
		return
	}
	if r.ProtoMajor == 1 {
		if c, err := hijack(w, r); err == nil {
			if !h.fan.add(c, enc) {
				// TLS: a goroutine of its own, and net/http's, with the
				// request and the connection's 8 KiB of buffers, ends.
				go h.stream(newConnSink(c, h.opt.ViewerTimeout), enc)
			}
			return
		}
	}
	h.stream(newResponseSink(w, r, h.opt.ViewerTimeout), enc)
}

// stream sends the events to s until the viewer goes, Close is called or
// a send fails, and then counts the viewer out.
func (h *Handler) stream(s sink, enc streamEncoder) {
	defer h.hub.viewers.Add(-1)
	keepAlive := time.NewTimer(h.opt.KeepAlive)
	defer keepAlive.Stop()
	ed := h.hub.edition()
	f := ed.f
	// Two sends, so that each event is a piece of its own on the wire.
	err := s.send(enc.start())
	if err == nil {
		err = s.send(enc.event(ed))
	}
	for err == nil {
		select {
		case <-s.gone():
			s.close(false)
			return
		case <-h.done:
			s.close(s.send(enc.end()) == nil)
			return
		case <-f.next:
			ed = h.hub.edition()
			f = ed.f
			err = s.send(enc.event(ed))
		case <-keepAlive.C:
			// The age of what this viewer has.
			err = s.send(enc.keepAlive(f.at(h.hub.now())))
		}
		keepAlive.Reset(h.opt.KeepAlive)
	}
	s.close(false)
	if isTimeout(err) {
		h.hub.dropped.Add(1)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		if name = strings.TrimSpace(name); !strings.EqualFold(name, "gzip") && name != "*" {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// noneMatch reports whether an If-None-Match header lists etag (weakly
// compared, as RFC 9110 asks for this header) or is "*".
func noneMatch(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}
