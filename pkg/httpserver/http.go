package httpserver

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// Server timeouts. A slow or idle client holds a connection and a goroutine,
// nothing else, and only this long; event streams set their own write
// deadline per event (see pkg/results/web).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second // bodies are ignored: only headers count
	writeTimeout      = 30 * time.Second // a reply, /metrics included, must be written in this
	idleTimeout       = 60 * time.Second // between requests on a kept-alive connection
	maxHeaderBytes    = 16 << 10
	// sendBuffer is the kernel's send buffer of each connection, instead
	// of Linux's autotuning up to 4 MiB: what a client that stops reading
	// can hold of this process's memory, and what an event stream's writes
	// fill before they block and its viewer's timeout runs.
	sendBuffer = 256 << 10
)

// boundedListener gives every accepted TCP connection a fixed send buffer.
type boundedListener struct{ net.Listener }

func (l boundedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sendBuffer)
	}
	return c, err
}

// newHTTPServer returns the server of a service's HTTP port: timeouts for
// headers, whole requests, replies and idle connections, and only GET and
// HEAD.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           onlyGetHead(h),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// onlyGetHead answers 405 to any method but GET and HEAD, whatever the path:
// nothing on these ports changes state, and a request body is never read.
func onlyGetHead(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkWebConfig reads a web configuration file (exporter-toolkit's format,
// as Prometheus exporters take with --web.config.file) and reports the first
// thing wrong with it on one line: a missing file, bad YAML, a password that
// is not a bcrypt hash, a certificate or key that does not load.
func checkWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		return fmt.Errorf("HTTP_WEB_CONFIG_FILE %s: %s", path, msg)
	}
	return nil
}

// serve serves s.ln: plain HTTP, or with s.webConfig through
// exporter-toolkit, which adds TLS and basic auth as the file says and
// reads it again for every connection and request, so certificates and
// users can change without a restart.
func (s *Server) serve() error {
	if s.webConfig == "" {
		return s.srv.Serve(s.ln)
	}
	path := s.webConfig
	return web.Serve(s.ln, s.srv, &web.FlagConfig{WebConfigFile: &path}, s.log.With("component", "http"))
}
