package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", "", NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestMethodsAndPaths(t *testing.T) {
	s := start(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/metrics", 200},
		{"HEAD", "/healthz", 200},
		{"POST", "/metrics", 405},
		{"PUT", "/nowhere", 405},
		{"GET", "/nowhere", 404},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+s.Addr()+tc.path, strings.NewReader("a body nobody reads"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, res.Status, tc.status)
		}
		if tc.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, res.Header.Get("Allow"))
		}
	}
}

// TestSlowHeaders: a client that never finishes its headers is
// disconnected after readHeaderTimeout, not held forever.
func TestSlowHeaders(t *testing.T) {
	s := start(t)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
	began := time.Now()
	c.SetReadDeadline(began.Add(readHeaderTimeout + 10*time.Second))
	_, err = io.ReadAll(c)
	if took := time.Since(began); err != nil || took > readHeaderTimeout+5*time.Second {
		t.Errorf("the connection stayed open %s (err %v), want it closed after about %s", took, err, readHeaderTimeout)
	}
}

func TestWebConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: "+filepath.Join(dir, "none.crt")+"\n  key_file: x.key\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yml")
	os.WriteFile(unknown, []byte("no_such_key: 1\n"), 0o600)
	for _, file := range []string{filepath.Join(dir, "missing.yml"), bad, unknown} {
		_, err := Listen("127.0.0.1:0", file, NewRegistry(), slog.New(slog.DiscardHandler))
		if err == nil || !strings.HasPrefix(err.Error(), "HTTP_WEB_CONFIG_FILE "+file+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line naming HTTP_WEB_CONFIG_FILE and the file", filepath.Base(file), err)
		}
	}
}
