package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

// waitFor waits until cond holds, failing the test with what after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

// cancelWhen returns a context that is cancelled once cond holds, polled from another goroutine.
func cancelWhen(t *testing.T, cond func() bool) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer cancel()
		for !cond() && ctx.Err() == nil {
			time.Sleep(time.Millisecond) // polling interval, not synchronisation
		}
	}()
	return ctx
}

// checkPlaces fails the test unless every connection the pool counts against tracker i's
// MaxConnsPerTracker is an idle one and no call waits: once every call has returned, a place still
// taken was leaked.
func checkPlaces(t *testing.T, p *Pool, i int) {
	t.Helper()
	tr := p.trackers[i]
	tr.mu.Lock()
	open, idle, waiting := tr.open, len(tr.idle), len(tr.waiters)
	tr.mu.Unlock()
	if open != idle || waiting != 0 {
		t.Errorf("tracker %s: %d connections counted open, %d idle, %d calls waiting; want as many open as idle and none waiting",
			tr.addr, open, idle, waiting)
	}
}

// Calls beyond MaxConnsPerTracker wait for a connection instead of opening one: with the tracker
// holding every answer, two of six calls are sent and four wait; once the answers come, every call
// gets its own on the same two connections.
func TestMaxConnsCallsWait(t *testing.T) {
	const limit, calls = 2, 6
	release := make(chan struct{})
	ft := newFakeTracker(t, "127.0.0.2", func(line string) (string, action) {
		select {
		case <-release:
		case <-t.Context().Done():
		}
		args, _ := mogproto.ParseArgs([]byte(line[strings.IndexByte(line, ' ')+1:]))
		return string(mogproto.AppendOK(nil, mogproto.Args{{Name: "echo", Value: args.Get("n")}})), keep
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}, MaxConnsPerTracker: limit,
		DialTimeout: conf.Duration(time.Minute), Timeout: conf.Duration(time.Minute)})
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			want := fmt.Sprint(i)
			r, err := p.Do(t.Context(), "noop", mogproto.Args{{Name: "n", Value: want}})
			if err == nil && r.Get("echo") != want {
				err = fmt.Errorf("echo = %q, want %q", r.Get("echo"), want)
			}
			errs <- err
		})
	}
	waitFor(t, fmt.Sprintf("%d calls are sent and %d wait", limit, calls-limit), func() bool {
		if n := len(ft.Lines()); n > limit {
			close(release)
			wg.Wait()
			t.Fatalf("the tracker got %d requests at once, want at most %d", n, limit)
		}
		return len(ft.Lines()) == limit && p.Stats().Trackers[0].Waits == calls-limit
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := p.Stats().Trackers[0]
	if ft.Accepts() != limit || st.Opened != limit || st.Idle != limit || st.WaitTimeouts != 0 {
		t.Errorf("tracker accepted %d connections, Stats = %+v; want %d opened and idle, no wait run out", ft.Accepts(), st, limit)
	}
	checkPlaces(t, p, 0)
}

// The only connection to a tracker is held by a call that tracker never answers: a second call
// waits DialTimeout for it, then treats the tracker as failed and gets its answer from the next
// one, while the first call still waits for its reply.
func TestMaxConnsWaitRunsOut(t *testing.T) {
	silent := testutil.Silent(t, "127.0.0.2:0").Addr().String()
	b := newFakeTracker(t, "127.0.0.3", func(string) (string, action) { return "OK paths=1&path1=http://b/1.fid\r\n", keep })
	p, _ := newPool(t, Config{Trackers: []string{silent, b.Addr}, MaxConnsPerTracker: 1,
		DialTimeout: conf.Duration(200 * time.Millisecond), Timeout: conf.Duration(5 * time.Second)})

	held, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { // the first call starts with the first tracker
		_, err := p.GetPaths(held, "d", "held", GetPathsOptions{})
		done <- err
	}()
	waitFor(t, "the first call holds the silent tracker's connection", func() bool {
		return p.Stats().Trackers[0].Opened == 1
	})
	if err := p.Noop(t.Context()); err != nil { // starts with the second tracker
		t.Fatal(err)
	}
	paths, err := p.GetPaths(t.Context(), "d", "k", GetPathsOptions{}) // starts with the first again
	if err != nil || len(paths) != 1 || paths[0] != "http://b/1.fid" {
		t.Fatalf("GetPaths = %q, %v, want the second tracker's path", paths, err)
	}
	st := p.Stats().Trackers[0]
	if st.InFlight != 1 || st.Opened != 1 || st.Waits != 1 || st.WaitTimeouts != 1 || st.Failures != 1 || st.Up {
		t.Errorf("silent tracker Stats = %+v; want the first call still in flight on the one connection, one wait run out counted as a failure", st)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("held GetPaths = %v, want context.Canceled", err)
	}
	checkPlaces(t, p, 0)
	checkPlaces(t, p, 1)

	// With no other tracker, the call fails with the reason.
	one, _ := newPool(t, Config{Trackers: []string{silent}, MaxConnsPerTracker: 1,
		DialTimeout: conf.Duration(100 * time.Millisecond), Timeout: conf.Duration(5 * time.Second)})
	held, cancel = context.WithCancel(t.Context())
	defer cancel()
	go func() { _, err := one.GetPaths(held, "d", "held", GetPathsOptions{}); done <- err }()
	waitFor(t, "the first call holds the connection", func() bool { return one.Stats().Trackers[0].Opened == 1 })
	_, err = one.GetPaths(t.Context(), "d", "k", GetPathsOptions{})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrMaxConns) || !errors.Is(err, os.ErrDeadlineExceeded) ||
		!strings.Contains(err.Error(), "max_conns_per_tracker") {
		t.Errorf("GetPaths with the only connection busy = %v, want ErrUnavailable wrapping ErrMaxConns and a timeout", err)
	}
	cancel()
	<-done
	checkPlaces(t, one, 0)
}

// A tracker restart closes every idle connection. A read sent on one of them is sent again on a
// new connection, not on the next idle one, which the pool probes and finds closed too.
func TestMaxConnsStaleIdleConnections(t *testing.T) {
	release := make(chan struct{})
	ft := newFakeTracker(t, "127.0.0.2", func(line string) (string, action) {
		if strings.Contains(line, "n=hold") { // answer, then close as a restart does
			select {
			case <-release:
			case <-t.Context().Done():
			}
			return "OK \r\n", hangup
		}
		return "OK paths=0\r\n", keep
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}, MaxConnsPerTracker: 2,
		DialTimeout: conf.Duration(time.Minute), Timeout: conf.Duration(time.Minute)})
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := p.Do(t.Context(), "noop", mogproto.Args{{Name: "n", Value: "hold"}}); done <- err }()
	}
	waitFor(t, "two connections in use", func() bool { return len(ft.Lines()) == 2 })
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both idle connections see the close", func() bool {
		tr := p.trackers[0]
		tr.mu.Lock()
		defer tr.mu.Unlock()
		closed := 0
		for _, c := range tr.idle {
			if netx.PeerClosed(c.nc) != nil {
				closed++
			}
		}
		return closed == 2
	})
	if _, err := p.GetPaths(t.Context(), "d", "k", GetPathsOptions{}); err != nil {
		t.Errorf("GetPaths after the tracker closed every idle connection = %v, want it resent on a new one", err)
	}
	if st := p.Stats().Trackers[0]; ft.Accepts() != 3 || st.Failures != 0 {
		t.Errorf("tracker accepted %d connections, Stats = %+v; want 3 and no failure", ft.Accepts(), st)
	}
	checkPlaces(t, p, 0)
}

// Every way a connection ends frees its place: after each failure the one place of a pool with
// MaxConnsPerTracker 1 is free again (or held by an idle connection), and the next call gets it at
// once instead of waiting DialTimeout.
func TestMaxConnsNoLeak(t *testing.T) {
	const slow = conf.Duration(time.Minute) // a call that waits for a leaked place fails the test by its deadline
	getPaths := func(p *Pool, ctx context.Context) error {
		_, err := p.GetPaths(ctx, "d", "k", GetPathsOptions{})
		return err
	}
	// holdPaths is a call the tracker never answers, whenever its request comes.
	holdPaths := func(p *Pool, ctx context.Context) error {
		_, err := p.GetPaths(ctx, "d", "held", GetPathsOptions{})
		return err
	}
	const okPaths = "OK paths=0\r\n"
	// firstThen answers the tracker's first request with reply, then every later one with okPaths.
	firstThen := func(reply string, next action) func(string, int) (string, action) {
		return func(_ string, n int) (string, action) {
			if n == 1 {
				return reply, next
			}
			return okPaths, keep
		}
	}
	hangOnHeld := func(line string, _ int) (string, action) {
		if strings.Contains(line, "key=held") {
			return "", hang
		}
		return okPaths, keep
	}
	for _, tc := range []struct {
		name   string
		answer func(line string, n int) (string, action) // n counts the requests the tracker got, from 1
		refuse bool
		cfg    Config
		run    func(t *testing.T, p *Pool) // the failing calls
	}{
		{name: "connect refused", refuse: true, run: func(t *testing.T, p *Pool) {
			if err := getPaths(p, t.Context()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("GetPaths = %v, want ErrUnavailable", err)
			}
		}},
		{name: "reply cut", answer: firstThen("OK paths=1&pa", hangup), run: func(t *testing.T, p *Pool) {
			if err := getPaths(p, t.Context()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("GetPaths = %v, want ErrUnavailable", err)
			}
		}},
		{name: "garbled reply", answer: firstThen("HTTP/1.0 400 Bad request\r\n", keep), run: func(t *testing.T, p *Pool) {
			if err := getPaths(p, t.Context()); !errors.Is(err, mogproto.ErrProtocol) {
				t.Errorf("GetPaths = %v, want ErrProtocol", err)
			}
		}},
		{name: "reply timeout", answer: hangOnHeld, cfg: Config{Timeout: conf.Duration(100 * time.Millisecond)}, run: func(t *testing.T, p *Pool) {
			if err := holdPaths(p, t.Context()); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("GetPaths = %v, want a timeout", err)
			}
		}},
		{name: "caller gone mid-reply", answer: hangOnHeld, run: func(t *testing.T, p *Pool) {
			ctx := cancelWhen(t, func() bool { return p.Stats().Trackers[0].Opened == 1 })
			if err := holdPaths(p, ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("GetPaths = %v, want context.Canceled", err)
			}
		}},
		{name: "ERR reply keeps the connection", answer: firstThen("ERR unknown_key unknown_key\r\n", keep), run: func(t *testing.T, p *Pool) {
			if err := getPaths(p, t.Context()); !mogproto.IsCode(err, "unknown_key") {
				t.Errorf("GetPaths = %v, want unknown_key", err)
			}
		}},
		{name: "idle connection closed by the tracker", answer: firstThen("OK \r\n", hangup), run: func(t *testing.T, p *Pool) {
			if err := p.Noop(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitPeerClosed(t, p)
			// A mutation probes the idle connection, finds it closed and dials again.
			if err := p.Delete(t.Context(), "d", "k"); err != nil {
				t.Errorf("Delete on a closed idle connection = %v, want a new connection", err)
			}
		}},
		{name: "idle connections closed by the tracker, read resent", answer: firstThen("OK \r\n", hangup), run: func(t *testing.T, p *Pool) {
			if err := p.Noop(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitPeerClosed(t, p)
			// A read is sent on the closed idle connection without a probe, then again on a new one.
			if err := getPaths(p, t.Context()); err != nil {
				t.Errorf("GetPaths on a closed idle connection = %v, want it resent on a new connection", err)
			}
		}},
		{name: "wait ended by the caller", answer: hangOnHeld, run: func(t *testing.T, p *Pool) {
			held, release := context.WithCancel(t.Context())
			first := make(chan error, 1)
			go func() { first <- holdPaths(p, held) }()
			waitFor(t, "the first call holds the connection", func() bool { return p.Stats().Trackers[0].Opened == 1 })
			ctx := cancelWhen(t, func() bool { return p.Stats().Trackers[0].Waits == 1 })
			if err := getPaths(p, ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("waiting GetPaths = %v, want context.Canceled", err)
			}
			release()
			if err := <-first; !errors.Is(err, context.Canceled) {
				t.Errorf("held GetPaths = %v, want context.Canceled", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			if tc.refuse {
				addr = refusedAddr(t, "127.0.0.2")
			} else {
				var mu sync.Mutex
				n := 0
				addr = newFakeTracker(t, "127.0.0.2", func(line string) (string, action) {
					mu.Lock()
					n++
					i := n
					mu.Unlock()
					return tc.answer(line, i)
				}).Addr
			}
			cfg := tc.cfg
			cfg.Trackers = []string{addr}
			cfg.MaxConnsPerTracker = 1
			cfg.DialTimeout = slow
			cfg.Timeout = cmp.Or(cfg.Timeout, slow)
			p, _ := newPool(t, cfg)
			tc.run(t, p)
			checkPlaces(t, p, 0)
			if tc.refuse || t.Failed() {
				return
			}
			// The place is free: this call does not wait.
			if err := getPaths(p, t.Context()); err != nil {
				t.Errorf("GetPaths after the failure = %v", err)
			}
			if st := p.Stats().Trackers[0]; st.WaitTimeouts != 0 {
				t.Errorf("Stats = %+v, want no wait run out", st)
			}
			checkPlaces(t, p, 0)
			p.Close()
			tr := p.trackers[0]
			tr.mu.Lock()
			open := tr.open
			tr.mu.Unlock()
			if open != 0 {
				t.Errorf("%d connections counted open after Close, want 0", open)
			}
		})
	}
}
