package testutil

import (
	"context"
	"io"
	"testing"
	"time"
)

// Serving is a server whose serve loop runs in its own goroutine until Stop.
type Serving struct {
	server io.Closer
	cancel context.CancelFunc
	done   chan error
}

// Go runs serve in a goroutine, with a context that Stop cancels. server is what Stop closes when it
// crashes the server.
func Go(server io.Closer, serve func(ctx context.Context) error) *Serving {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Serving{server: server, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- serve(ctx) }()
	return s
}

// Stop stops the server and waits at most within for serve to return. crash closes the server
// first, abruptly, as a crash would; otherwise only the context ends, for a graceful stop. It
// returns what serve returned; a server still running after within fails the test (Errorf, naming
// the server as name).
func (s *Serving) Stop(t testing.TB, name string, crash bool, within time.Duration) error {
	t.Helper()
	if crash {
		s.server.Close()
	}
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(within):
		t.Errorf("%s did not stop within %s", name, within)
		return nil
	}
}

// Run runs serve as Go does until the test ends, then stops it gracefully (Stop, within a minute)
// and fails the test unless serve returned nil, as a daemon's Serve does after a graceful stop. name
// names the server in the failure.
func Run(t testing.TB, name string, serve func(ctx context.Context) error) {
	t.Helper()
	s := Go(nil, serve)
	t.Cleanup(func() {
		if err := s.Stop(t, name, false, time.Minute); err != nil {
			t.Errorf("%s Serve: %v", name, err)
		}
	})
}
