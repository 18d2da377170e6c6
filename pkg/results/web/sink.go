package web

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"
)

// A sink carries one event stream to its viewer, each send one piece on
// the wire.
type sink interface {
	send(b []byte) error
	gone() <-chan struct{} // closed when the viewer goes
	close(clean bool)      // ends the stream: cleanly (the body's end sent), or not
}

// newSink takes the connection over from net/http where it can (HTTP/1),
// so that each event costs one write system call of bytes shared by every
// viewer, and no goroutine but the handler's; under HTTP/2 it writes
// through the ResponseWriter. The header must be complete.
func newSink(w http.ResponseWriter, r *http.Request, timeout time.Duration) sink {
	if r.ProtoMajor == 1 {
		if s, err := hijack(w, r, timeout); err == nil {
			return s
		}
	}
	return &responseSink{w: w, rc: http.NewResponseController(w), done: r.Context().Done(), timeout: timeout}
}

// responseSink writes through net/http: a write, then a flush.
type responseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	done    <-chan struct{}
	timeout time.Duration
}

func (s *responseSink) send(b []byte) error {
	// Replaces the server's WriteTimeout, meant for short replies.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *responseSink) gone() <-chan struct{} { return s.done }
func (s *responseSink) close(bool)            {} // net/http ends the body

// connSink writes the response itself on a hijacked connection, chunked
// for HTTP/1.1 (for HTTP/1.0 the body ends when the connection closes).
type connSink struct {
	conn    net.Conn
	chunked bool
	timeout time.Duration
	head    []byte // the status line and header, sent with the first piece
	left    chan struct{}
}

func hijack(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*connSink, error) {
	chunked := r.ProtoAtLeast(1, 1)
	var head bytes.Buffer
	head.WriteString(r.Proto + " 200 OK\r\n")
	if chunked {
		w.Header().Set("Transfer-Encoding", "chunked")
	}
	w.Header().Set("Connection", "close")
	if err := w.Header().Write(&head); err != nil {
		return nil, err
	}
	head.WriteString("\r\n")
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Del("Transfer-Encoding")
		w.Header().Del("Connection")
		return nil, err
	}
	// The server's read and idle deadlines no longer apply; each send sets
	// its own write deadline.
	_ = conn.SetDeadline(time.Time{})
	s := &connSink{conn: conn, chunked: chunked, timeout: timeout, head: head.Bytes(), left: make(chan struct{})}
	go s.watch()
	return s, nil
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

func (s *connSink) send(b []byte) error {
	if len(b) == 0 && s.head == nil {
		return nil // an empty chunk would end the body
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	bufs := net.Buffers{s.head}
	if s.chunked && len(b) > 0 {
		size := append(strconv.AppendInt(make([]byte, 0, 10), int64(len(b)), 16), '\r', '\n')
		bufs = append(bufs, size, b, size[len(size)-2:])
	} else {
		bufs = append(bufs, b)
	}
	s.head = nil
	if _, ok := s.conn.(*net.TCPConn); !ok {
		// A TLS connection would make each piece a record of its own.
		_, err := s.conn.Write(bytes.Join(bufs, nil))
		return err
	}
	_, err := bufs.WriteTo(s.conn) // one writev
	return err
}

func (s *connSink) gone() <-chan struct{} { return s.left }

// close sends the last chunk if clean, and closes the connection.
func (s *connSink) close(clean bool) {
	if clean && s.chunked {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
		_, _ = s.conn.Write([]byte("0\r\n\r\n"))
	}
	s.conn.Close()
}
