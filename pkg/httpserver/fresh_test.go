package httpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestNemesisSeed4MetricsFresh: a scrape shows the values as they are when
// it is asked, however slowly another scraper reads. Found by the nemesis's
// seed 4 (docs/nemesis.md): scrapes coalesced on one gather, and a scrape
// that came while an earlier one's reply was still being written joined
// that earlier gather, so a counter showed a partition it had let go of
// seconds before (two replicas showing one partition, their votes summed
// over the truth), and under a steady stream of scrapes a snapshot minutes
// old.
func TestNemesisSeed4MetricsFresh(t *testing.T) {
	reg := NewRegistry()
	value := prometheus.NewGauge(prometheus.GaugeOpts{Name: "votestream_test_value"})
	// Enough series that a reply outgrows the socket buffers.
	filler := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "votestream_test_filler"}, []string{"i"})
	reg.MustRegister(value, filler)
	for i := range 40000 {
		filler.WithLabelValues(strconv.Itoa(i)).Set(1)
	}
	s, err := Listen("127.0.0.1:0", "", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
	value.Set(1)

	// A scraper that reads the first bytes of its reply and then nothing:
	// its handler stays blocked writing the rest.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := bufio.NewReader(slow).ReadString('\n'); err != nil {
		t.Fatalf("the slow scrape got no reply: %v", err)
	}

	value.Set(2)
	c := http.Client{Timeout: 30 * time.Second}
	res, err := c.Get("http://" + s.Addr() + "/metrics?name[]=votestream_test_value")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "votestream_test_value 2\n") {
		t.Errorf("a scrape asked after the value became 2 shows:\n%s", body)
	}
}
