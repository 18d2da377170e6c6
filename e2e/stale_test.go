package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseMessage is one message of an event stream: an event or a keep-alive,
// with the age of the results it carries (-1 if none).
type sseMessage struct {
	at        time.Time
	keepAlive bool
	age       float64
}

// followEvents reads an event stream's messages onto the returned channel,
// and its end (nil: the body ended) onto ended.
func followEvents(body io.Reader) (<-chan sseMessage, <-chan error) {
	msgs, ended := make(chan sseMessage, 64), make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(body, 64<<10)
		m := sseMessage{age: -1}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				ended <- err
				return
			}
			switch line = strings.TrimSuffix(line, "\n"); {
			case line == "":
				m.at = time.Now()
				msgs <- m
				m = sseMessage{age: -1}
			case strings.HasPrefix(line, ": keep-alive"):
				m.keepAlive = true
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Age *float64 `json:"age_seconds"`
				}
				if json.Unmarshal([]byte(line[len("data: "):]), &d) == nil && d.Age != nil {
					m.age = *d.Age
				}
			}
		}
	}()
	return msgs, ended
}

var viewAgeRE = regexp.MustCompile(`(?m)^votestream_election_view_age_seconds\{[^}]*\} (\S+)$`)

// TestStalledViewTLS serves a counter over TLS, so HTTP/2, and stops the
// broker under it: its view of the election stalls. /results and the
// view's age metric must show the age growing from then on, and an event
// stream open since before must go on past the old reset (10 s without a
// change) to a keep-alive (15 s) that carries the age.
func TestStalledViewTLS(t *testing.T) {
	bin := Binaries(t)
	dir := t.TempDir()
	password := RandomPassword(t)
	file, caFile := webConfig(t, dir, "viewer", password)
	broker := StartBroker(t)
	env := NewEnv(t, broker, 2)
	counter := Start(t, "counter", bin.Counter, env.Vars("SCALE=0.0002", "HTTP_WEB_CONFIG_FILE="+file)...)
	base := "https://" + counter.MetricsAddr(t)
	tr := httpsClient(t, caFile).Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		req.SetBasicAuth("viewer", password)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
			t.Fatalf("GET %s: %s over %s, want 200 over HTTP/2", path, res.Status, res.Proto)
		}
		return res
	}
	age := func() float64 {
		t.Helper()
		res := get("/results")
		defer res.Body.Close()
		var r struct {
			AsOf string  `json:"as_of"`
			Age  float64 `json:"age_seconds"`
		}
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(r.AsOf, "0001-") {
			return -1 // not synced yet
		}
		return r.Age
	}
	metricAge := func() float64 {
		t.Helper()
		res := get("/metrics")
		defer res.Body.Close()
		text, _ := io.ReadAll(res.Body)
		m := viewAgeRE.FindSubmatch(text)
		if m == nil {
			t.Fatal("no votestream_election_view_age_seconds in /metrics")
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}

	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if a := age(); a >= 0 && a < 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the view is not live after 30s")
		}
	}
	stream := get("/events")
	defer stream.Body.Close()
	msgs, ended := followEvents(stream.Body)

	if err := broker.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now() // every checkpoint read came before
	time.Sleep(3 * time.Second)
	for what, got := range map[string]float64{"/results": age(), "metric": metricAge()} {
		if want := time.Since(stopped).Seconds() - 0.1; got < want {
			t.Errorf("%s: the view is %.1fs old %s after the broker stopped, want at least %.1fs",
				what, got, time.Since(stopped).Round(100*time.Millisecond), want)
		}
	}

	var last time.Time // of the last message
	for {
		select {
		case m := <-msgs:
			if !m.keepAlive {
				last = m.at
				continue
			}
			if want := m.at.Sub(stopped).Seconds() - 0.1; m.age < want {
				t.Errorf("a keep-alive %s after the broker stopped carries age %.1fs, want at least %.1fs",
					m.at.Sub(stopped).Round(100*time.Millisecond), m.age, want)
			}
			if quiet := m.at.Sub(last); quiet < 10*time.Second {
				t.Errorf("a keep-alive after %s without a message: want none before 10s", quiet.Round(100*time.Millisecond))
			}
			t.Logf("keep-alive %s after the last event, %s after the broker stopped: age %.1fs",
				m.at.Sub(last).Round(100*time.Millisecond), m.at.Sub(stopped).Round(100*time.Millisecond), m.age)
			return
		case err := <-ended:
			t.Fatalf("the idle stream ended %s after its last event (reset?): %v", time.Since(last).Round(100*time.Millisecond), err)
		case <-time.After(30 * time.Second):
			t.Fatal("no keep-alive within 30s of the last message")
		}
	}
}
