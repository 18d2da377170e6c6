package webtest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPageErrors checks that the browser harness hears what the page tests
// rely on it to hear: a console error and an uncaught exception.
func TestPageErrors(t *testing.T) {
	b := Start(t, Chromium(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p := b.NewPage(ctx, t)
	p.Navigate(ctx, t, "data:text/html,<p>probe</p>")
	p.Eval(ctx, t, `console.error("probe-console"); setTimeout(() => { throw new Error("probe-exception"); }, 0); 1`)
	var text string
	p.EvalInto(ctx, t, `document.querySelector("p").textContent`, &text)
	if text != "probe" {
		t.Errorf("page text %q, want probe", text)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := strings.Join(b.PageErrors(), "\n")
		if strings.Contains(got, "probe-console") && strings.Contains(got, "probe-exception") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("page errors %q; want the console error and the exception", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
