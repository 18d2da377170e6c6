package web

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"time"
)

// A sink carries one event stream to its viewer, each send one piece on
// the wire.
type sink interface {
	send(p piece) error
	gone() <-chan struct{} // closed when the viewer goes
	close(clean bool)      // ends the stream: cleanly (the body's end sent), or not
}

// newResponseSink streams through the ResponseWriter, for a connection
// that cannot be taken over (HTTP/2). The header must be complete.
func newResponseSink(w http.ResponseWriter, r *http.Request, timeout time.Duration) sink {
	return &responseSink{w: w, rc: http.NewResponseController(w), done: r.Context().Done(), timeout: timeout}
}

// responseSink writes through net/http: a write, then a flush.
type responseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	done    <-chan struct{}
	timeout time.Duration
}

func (s *responseSink) send(p piece) error {
	// Replaces the server's WriteTimeout, meant for short replies.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(p.data()); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil {
		return err
	}
	// Disarmed once sent: on HTTP/2 a deadline that expires while the
	// stream waits for the next event resets it.
	_ = s.rc.SetWriteDeadline(time.Time{})
	return nil
}

func (s *responseSink) gone() <-chan struct{} { return s.done }
func (s *responseSink) close(bool)            {} // net/http ends the body

// hijacked is a connection taken over from net/http, with the status
// line and header still to send before the body, chunked for HTTP/1.1
// (for HTTP/1.0 the body ends when the connection closes).
type hijacked struct {
	conn    net.Conn
	head    []byte
	chunked bool
}

// hijack takes r's connection over, so that each event costs one write of
// bytes shared by every viewer. The header must be complete.
func hijack(w http.ResponseWriter, r *http.Request) (hijacked, error) {
	chunked := r.ProtoAtLeast(1, 1)
	var head bytes.Buffer
	head.WriteString(r.Proto + " 200 OK\r\n")
	if chunked {
		w.Header().Set("Transfer-Encoding", "chunked")
	}
	w.Header().Set("Connection", "close")
	if err := w.Header().Write(&head); err != nil {
		return hijacked{}, err
	}
	head.WriteString("\r\n")
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Del("Transfer-Encoding")
		w.Header().Del("Connection")
		return hijacked{}, err
	}
	// The server's read and idle deadlines no longer apply; each send sets
	// its own write deadline.
	_ = conn.SetDeadline(time.Time{})
	return hijacked{conn: conn, head: head.Bytes(), chunked: chunked}, nil
}

// connSink writes the response itself on a hijacked connection that the
// fanout cannot serve (TLS), from a goroutine of its own.
type connSink struct {
	hijacked
	timeout time.Duration
	left    chan struct{}
}

func newConnSink(c hijacked, timeout time.Duration) *connSink {
	s := &connSink{hijacked: c, timeout: timeout, left: make(chan struct{})}
	go s.watch()
	return s
}

// watch closes left when the viewer closes its side (or the connection
// ends). A viewer sends nothing after its request.
func (s *connSink) watch() {
	defer close(s.left)
	br := bufio.NewReaderSize(s.conn, 16)
	for {
		if _, err := br.Discard(16); err != nil {
			return
		}
	}
}

func (s *connSink) send(p piece) error {
	b := p.wire(s.chunked)
	if len(b) == 0 && s.head == nil {
		return nil // an empty chunk would end the body
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	if s.head != nil {
		// One record for the header and the first piece, not two.
		b = append(s.head, b...)
		s.head = nil
	}
	_, err := s.conn.Write(b)
	return err
}

func (s *connSink) gone() <-chan struct{} { return s.left }

// close sends the last chunk if clean, and closes the connection.
func (s *connSink) close(clean bool) {
	if clean && s.chunked {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
		_, _ = s.conn.Write([]byte(lastChunk))
	}
	s.conn.Close()
}

// lastChunk ends a chunked body (with no trailer fields).
const lastChunk = "0\r\n\r\n"
