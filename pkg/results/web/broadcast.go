package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// frame is one encoding of the results, made once per change and shared by
// every /results reply and every event stream: the same bytes for all.
type frame struct {
	id    uint64
	json  []byte // the /results body
	event piece  // the same as a server-sent event: "id: N\ndata: {...}\n\n"
	etag  string

	gzOnce sync.Once
	gz     []byte // json gzipped, on first demand

	// event compressed on its own, as a piece of any viewer's gzip stream
	// (see gzipStream).
	gzEvent piece

	next chan struct{} // closed when a newer frame replaces this one
}

func newFrame(id uint64, body []byte) *frame {
	h := fnv.New64a()
	h.Write(body)
	event := make([]byte, 0, len(body)+32)
	event = append(event, "id: "...)
	event = strconv.AppendUint(event, id, 10)
	event = append(event, "\ndata: "...)
	event = append(event, body...)
	event = append(event, "\n\n"...)
	return &frame{
		id: id, json: append(bytes.Clone(body), '\n'), event: newPiece(event, nil),
		etag:    `"` + strconv.FormatUint(h.Sum64(), 36) + `"`,
		gzEvent: newPiece(deflateAlone(event), event),
		next:    make(chan struct{}),
	}
}

// gzipped is the body gzipped, compressed by the first request that
// accepts it; the others wait for it and share it.
func (f *frame) gzipped() []byte {
	f.gzOnce.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(f.json)
		zw.Close()
		f.gz = b.Bytes()
	})
	return f.gz
}

// hub holds the current frame and counts the viewers. A viewer waits on
// the frame it last sent to be replaced and then takes the newest: its
// whole queue is that one pointer, so a slow viewer skips to the latest
// results and costs no memory per change, and the publisher never waits
// for any viewer.
type hub struct {
	cur     atomic.Pointer[frame]
	lastKey []byte // the last results encoded without their age; publisher only

	viewers, refused, dropped atomic.Int64

	plain *plainPieces
	gz    *gzipPieces
}

func (h *hub) current() *frame { return h.cur.Load() }

// publish makes a frame of body, unless key (the results without their
// age) is what the current frame already shows.
func (h *hub) publish(key, body []byte) {
	if bytes.Equal(key, h.lastKey) {
		return
	}
	h.lastKey = key
	var id uint64 = 1
	old := h.cur.Load()
	if old != nil {
		id = old.id + 1
	}
	h.cur.Store(newFrame(id, body))
	if old != nil {
		close(old.next)
	}
}

// admit counts a new viewer, or refuses it past max (no limit if max <= 0).
func (h *hub) admit(max int) bool {
	if n := h.viewers.Add(1); max > 0 && n > int64(max) {
		h.viewers.Add(-1)
		h.refused.Add(1)
		return false
	}
	return true
}

// encode marshals the current results twice: without their age, to tell
// whether they changed, and as served.
func (h *Handler) encode() (key, body []byte, err error) {
	res := h.snapshot()
	age := res.AgeSeconds
	res.AgeSeconds = 0
	if key, err = json.Marshal(&res); err != nil {
		return nil, nil, err
	}
	if age == 0 {
		return key, key, nil
	}
	res.AgeSeconds = age
	body, err = json.Marshal(&res)
	return key, body, err
}

// refresh publishes the current results if they changed.
func (h *Handler) refresh() {
	key, body, err := h.encode()
	if err != nil {
		return // results.Results always marshals; nothing better to do
	}
	h.hub.publish(key, body)
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

// serveResults sends the current frame, gzipped if the client accepts it,
// or 304 Not Modified if the client already has it (If-None-Match).
func (h *Handler) serveResults(w http.ResponseWriter, r *http.Request) {
	f := h.hub.current()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	// A shared cache (the nginx in front, a CDN) may answer with it for a
	// second: one request a second reaches the origin however many poll;
	// after that it asks again, with the ETag.
	hdr.Set("Cache-Control", "public, max-age=1")
	hdr.Set("Vary", "Accept-Encoding")
	body, etag := f.json, f.etag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		// Another representation, another tag.
		body, etag = f.gzipped(), strings.TrimSuffix(f.etag, `"`)+`-gzip"`
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("ETag", etag)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		hdr.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
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
		http.Error(w, "too many viewers on this replica: poll /results, or retry later", http.StatusServiceUnavailable)
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
	f := h.hub.current()
	// Two sends, so that each event is a piece of its own on the wire.
	err := s.send(enc.start())
	if err == nil {
		err = s.send(enc.event(f))
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
			f = h.hub.current()
			err = s.send(enc.event(f))
		case <-keepAlive.C:
			err = s.send(enc.keepAlive())
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
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}
