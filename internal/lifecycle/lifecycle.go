// Package lifecycle runs a service's actors (its HTTP server, its Kafka
// loop, its background goroutines) as one group: the first to return stops
// the others, one after another in the order they were added, and Run
// returns that first error. It is oklog's run.Group with that order made
// explicit, so a counter writes its final checkpoint, then closes Kafka,
// and only then stops the HTTP server that shows it.
package lifecycle

import (
	"context"

	"github.com/oklog/run"
)

// Group is a service's actors. The zero value is ready to use.
type Group struct {
	g    run.Group
	last chan struct{} // closed once the last actor added has returned
}

// Add adds an actor: execute runs until it fails or finishes, or until
// stop is called, which happens once every actor added before it has
// returned.
func (g *Group) Add(execute func() error, stop func()) {
	before, done := g.last, make(chan struct{})
	g.last = done
	g.g.Add(func() error {
		defer close(done)
		return execute()
	}, func(error) {
		if before != nil {
			<-before
		}
		stop()
	})
}

// Go adds an actor that runs f until ctx ends or its turn to stop comes.
// Pass context.WithoutCancel of the service's context to an actor that must
// outlive the first ones while they stop.
func (g *Group) Go(ctx context.Context, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error { return f(ctx) }, cancel)
}

// Run runs every actor and returns once they all have, with the error of
// the first to return.
func (g *Group) Run() error { return g.g.Run() }
