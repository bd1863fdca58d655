package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

// The scripted tracker of these tests is testutil.Tracker.
type action = testutil.Action

const (
	keep   = testutil.Keep
	hangup = testutil.Hangup
	hang   = testutil.Hang
)

type fakeTracker = testutil.Tracker

func newFakeTracker(t *testing.T, ip string, answer func(line string) (string, action)) *fakeTracker {
	t.Helper()
	return testutil.NewTracker(t, ip, answer)
}

// refusedAddr returns an address on ip where nothing listens.
func refusedAddr(t *testing.T, ip string) string { t.Helper(); return testutil.FreeAddr(t, ip) }

func okNoop(string) (string, action) { return "OK \r\n", keep }

// fakeClock is a settable clock for the pool's health bookkeeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newPool(t *testing.T, cfg Config) (*Pool, *fakeClock) {
	t.Helper()
	p, err := NewPool(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p.now = clk.now
	t.Cleanup(func() { p.Close() })
	return p, clk
}

func TestDoEncodesAndDecodes(t *testing.T) {
	ft := newFakeTracker(t, "127.0.0.2", func(string) (string, action) {
		return "OK paths=1&path1=http://127.0.0.3:7500/dev1/0/000/000/0000000001.fid\r\n", keep
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}})
	r, err := p.Do(t.Context(), "get_paths", mogproto.Args{{Name: "domain", Value: "d"}, {Name: "key", Value: "a+b c/é"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Get("path1"), "http://127.0.0.3:7500/dev1/0/000/000/0000000001.fid"; got != want {
		t.Errorf("path1 = %q, want %q", got, want)
	}
	if got, want := ft.Lines(), []string{"get_paths domain=d&key=a%2Bb+c/%C3%A9"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tracker saw %q, want %q", got, want)
	}
	if _, err := p.Do(t.Context(), "bad cmd", nil); err == nil {
		t.Errorf("Do(%q) succeeded", "bad cmd")
	}
}

func TestErrIsAnAnswer(t *testing.T) {
	a := newFakeTracker(t, "127.0.0.2", func(line string) (string, action) {
		if strings.HasPrefix(line, "noop") {
			return "OK \r\n", keep
		}
		return "ERR unknown_key unknown_key\r\n", keep
	})
	b := newFakeTracker(t, "127.0.0.3", okNoop)
	p, _ := newPool(t, Config{Trackers: []string{a.Addr, b.Addr}})
	_, err := p.Do(t.Context(), "delete", mogproto.Args{{Name: "domain", Value: "d"}, {Name: "key", Value: "k"}})
	var perr *mogproto.Error
	if !errors.As(err, &perr) || perr.Code != mogproto.ErrUnknownKey {
		t.Fatalf("delete error = %v, want ERR unknown_key", err)
	}
	if n := len(b.Lines()); n != 0 {
		t.Errorf("second tracker got %d requests after an ERR, want 0", n)
	}
	// The connection survives an ERR: the next call on the same tracker reuses it.
	p.next.Store(0)
	if err := p.Noop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := a.Accepts(); n != 1 {
		t.Errorf("tracker accepted %d connections, want 1 (reused after ERR)", n)
	}
}

func TestDeadTrackerSkippedThenRetried(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	a := newFakeTracker(t, "127.0.0.2", func(string) (string, action) {
		if failing.Load() {
			return "", hangup
		}
		return "OK \r\n", keep
	})
	b := newFakeTracker(t, "127.0.0.3", okNoop)
	p, clk := newPool(t, Config{Trackers: []string{a.Addr, b.Addr}, RetryAfter: conf.Duration(5 * time.Second)})

	// First call starts on a, which hangs up before replying; noop is idempotent so b answers.
	if err := p.Noop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(a.Lines()); got != 1 {
		t.Fatalf("a saw %d requests, want 1", got)
	}
	st := p.Stats().Trackers[0]
	if st.Up || st.Failures != 1 || st.ConsecutiveFailures != 1 {
		t.Errorf("Stats(a) = %+v, want down with 1 failure", st)
	}
	for range 6 {
		if err := p.Noop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(a.Lines()); got != 1 {
		t.Errorf("a saw %d requests while down, want 1", got)
	}
	// After RetryAfter, a is tried again; it still fails, so the next pause doubles.
	clk.add(5 * time.Second)
	for range 2 {
		if err := p.Noop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(a.Lines()); got != 2 {
		t.Fatalf("a saw %d requests after its pause, want 2", got)
	}
	clk.add(5 * time.Second)
	for range 2 {
		p.Noop(t.Context())
	}
	if got := len(a.Lines()); got != 2 {
		t.Errorf("a saw %d requests during its doubled pause, want 2", got)
	}
	clk.add(5 * time.Second)
	failing.Store(false)
	for range 2 {
		p.Noop(t.Context())
	}
	if got := len(a.Lines()); got != 3 {
		t.Errorf("a saw %d requests after the doubled pause, want 3", got)
	}
	if st := p.Stats().Trackers[0]; !st.Up || st.ConsecutiveFailures != 0 {
		t.Errorf("Stats(a) = %+v, want up again", st)
	}
}

func TestRefusedTrackerFailsOver(t *testing.T) {
	b := newFakeTracker(t, "127.0.0.3", func(line string) (string, action) { return "OK domain=d\r\n", keep })
	p, _ := newPool(t, Config{Trackers: []string{refusedAddr(t, "127.0.0.2"), b.Addr}})
	// A refused connection never carried the request, so even a mutation fails over.
	if err := p.CreateDomain(t.Context(), "d"); err != nil {
		t.Fatalf("CreateDomain = %v, want success on the second tracker", err)
	}
}

func TestAllTrackersDown(t *testing.T) {
	p, _ := newPool(t, Config{Trackers: []string{refusedAddr(t, "127.0.0.2"), refusedAddr(t, "127.0.0.3")}})
	err := p.Noop(t.Context())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Noop = %v, want ErrUnavailable", err)
	}
	// Both are down now, but still tried rather than failing without an attempt.
	err = p.Noop(t.Context())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second Noop = %v, want ErrUnavailable", err)
	}
	if got := p.Stats().Trackers[1].Requests; got != 2 {
		t.Errorf("Requests on the second tracker = %d, want 2", got)
	}
}

func TestTimeoutFailsOverOnlyForReads(t *testing.T) {
	a := newFakeTracker(t, "127.0.0.2", func(string) (string, action) { return "", hang })
	b := newFakeTracker(t, "127.0.0.3", func(line string) (string, action) {
		return "OK paths=1&path1=http://x/1.fid\r\n", keep
	})
	// Timeout bounds each attempt, the second tracker's answer too: a second leaves a loaded machine
	// room to answer in time (it had 100ms, one scheduling delay of the race build under load).
	const timeout = conf.Duration(time.Second)
	p, _ := newPool(t, Config{Trackers: []string{a.Addr, b.Addr}, Timeout: timeout})
	paths, err := p.GetPaths(t.Context(), "d", "k", GetPathsOptions{})
	if err != nil || len(paths) != 1 {
		t.Fatalf("GetPaths = %q, %v, want one path from the second tracker", paths, err)
	}

	p2, _ := newPool(t, Config{Trackers: []string{a.Addr, b.Addr}, Timeout: timeout})
	before := len(b.Lines())
	err = p2.CreateClose(t.Context(), CloseRequest{Domain: "d", Key: "k", Fid: 1, DevID: 1, Path: "http://x/1.fid", Size: 1})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("CreateClose = %v, want ErrUnavailable wrapping a timeout", err)
	}
	if got := len(b.Lines()); got != before {
		t.Errorf("create_close reached the second tracker after a timeout (%d requests)", got-before)
	}
}

func TestCloseMidReply(t *testing.T) {
	a := newFakeTracker(t, "127.0.0.2", func(string) (string, action) { return "OK paths=1&pa", hangup })
	b := newFakeTracker(t, "127.0.0.3", func(line string) (string, action) {
		if strings.HasPrefix(line, "delete") {
			return "OK \r\n", keep
		}
		return "OK paths=1&path1=http://b/1.fid\r\n", keep
	})
	p, _ := newPool(t, Config{Trackers: []string{a.Addr, b.Addr}})
	paths, err := p.GetPaths(t.Context(), "d", "k", GetPathsOptions{})
	if err != nil || len(paths) != 1 || paths[0] != "http://b/1.fid" {
		t.Fatalf("GetPaths = %q, %v, want the second tracker's path", paths, err)
	}
	p2, _ := newPool(t, Config{Trackers: []string{a.Addr, b.Addr}})
	if err := p2.Delete(t.Context(), "d", "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Delete = %v, want ErrUnavailable", err)
	}
	for _, l := range b.Lines() {
		if strings.HasPrefix(l, "delete") {
			t.Errorf("delete was resent to the second tracker after a broken reply")
		}
	}
}

func TestGarbledReplyIsAnError(t *testing.T) {
	a := newFakeTracker(t, "127.0.0.2", func(string) (string, action) { return "HTTP/1.0 400 Bad request\r\n", keep })
	p, _ := newPool(t, Config{Trackers: []string{a.Addr}})
	if err := p.Noop(t.Context()); !errors.Is(err, mogproto.ErrProtocol) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Noop = %v, want ErrUnavailable wrapping ErrProtocol", err)
	}
}

func TestConnectionReuseInOrder(t *testing.T) {
	ft := newFakeTracker(t, "127.0.0.2", func(line string) (string, action) {
		args, _ := mogproto.ParseArgs([]byte(line[strings.IndexByte(line, ' ')+1:]))
		return string(mogproto.AppendOK(nil, mogproto.Args{{Name: "echo", Value: args.Get("n")}})), keep
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}})
	for i := range 20 {
		r, err := p.Do(t.Context(), "noop", mogproto.Args{{Name: "n", Value: fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Get("echo"), fmt.Sprint(i); got != want {
			t.Fatalf("reply %d echo = %q, want %q", i, got, want)
		}
	}
	if n := ft.Accepts(); n != 1 {
		t.Errorf("accepts = %d, want 1 connection for 20 sequential calls", n)
	}
	if st := p.Stats().Trackers[0]; st.Idle != 1 || st.InFlight != 0 || st.Requests != 20 {
		t.Errorf("Stats = %+v, want 1 idle, 0 in flight, 20 requests", st)
	}
}

func TestStaleIdleConnectionIsReplaced(t *testing.T) {
	// The tracker closes every connection after its reply, as a restarted tracker leaves them.
	ft := newFakeTracker(t, "127.0.0.2", func(string) (string, action) {
		return "OK \r\n", hangup
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}})
	if err := p.Noop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitPeerClosed(t, p)
	// delete is not retried after a lost reply, so it only succeeds if the stale connection was
	// noticed before sending.
	if err := p.Delete(t.Context(), "d", "k"); err != nil {
		t.Fatalf("Delete on a pool with a stale idle connection = %v", err)
	}
	if n := ft.Accepts(); n != 2 {
		t.Errorf("accepts = %d, want 2", n)
	}
}

// TestStaleIdleConnectionResent: a read is sent on a pooled connection without probing it first;
// when the tracker had closed it (nothing at all comes back), the read is sent again on a new
// connection to the same tracker, which is not counted as a tracker failure.
func TestStaleIdleConnectionResent(t *testing.T) {
	ft := newFakeTracker(t, "127.0.0.2", func(string) (string, action) {
		return "OK paths=1&path1=http://10.0.0.1:7500/dev1/0/000/000/0000000001.fid\r\n", hangup
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}})
	const calls = 4
	for i := range calls {
		paths, err := p.GetPaths(t.Context(), "d", "k", GetPathsOptions{NoVerify: true})
		if err != nil || len(paths) != 1 {
			t.Fatalf("GetPaths %d on a pool whose idle connection the tracker closed = %v, %v", i, paths, err)
		}
		if i == 0 {
			waitPeerClosed(t, p)
		}
	}
	// Every call after the first found the closed connection, then dialled once.
	if n := ft.Accepts(); n != calls {
		t.Errorf("accepts = %d, want %d", n, calls)
	}
	if st := p.Stats().Trackers[0]; st.Failures != 0 || st.ConsecutiveFailures != 0 {
		t.Errorf("Stats = %+v, want no failure", st)
	}
}

// waitPeerClosed waits until the pool's one idle connection has seen the tracker's close.
func waitPeerClosed(t *testing.T, p *Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr := p.trackers[0]
		tr.mu.Lock()
		dead := len(tr.idle) == 1 && netx.PeerClosed(tr.idle[0].nc) != nil
		tr.mu.Unlock()
		if dead {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("idle connection never saw the close")
		}
		runtime.Gosched()
	}
}

func TestConcurrentCallers(t *testing.T) {
	echo := func(line string) (string, action) {
		args, _ := mogproto.ParseArgs([]byte(line[strings.IndexByte(line, ' ')+1:]))
		return string(mogproto.AppendOK(nil, mogproto.Args{{Name: "echo", Value: args.Get("n")}})), keep
	}
	a := newFakeTracker(t, "127.0.0.2", echo)
	b := newFakeTracker(t, "127.0.0.3", echo)
	for _, maxIdle := range []int{2, 8} {
		t.Run(fmt.Sprintf("max idle %d", maxIdle), func(t *testing.T) { concurrentCallers(t, a.Addr, b.Addr, maxIdle) })
	}
}

// concurrentCallers runs 8 callers of 50 commands each on a pool of trackers a and b keeping maxIdle
// idle connections per tracker.
func concurrentCallers(t *testing.T, a, b string, maxIdle int) {
	p, _ := newPool(t, Config{Trackers: []string{a, b}, MaxIdlePerTracker: maxIdle})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				want := fmt.Sprintf("%d-%d", g, i)
				r, err := p.Do(t.Context(), "noop", mogproto.Args{{Name: "n", Value: want}})
				if err != nil {
					errs <- err
					return
				}
				if got := r.Get("echo"); got != want {
					errs <- fmt.Errorf("echo = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var total, opened int64
	for _, st := range p.Stats().Trackers {
		total += st.Requests
		opened += st.Opened
		if st.Idle > maxIdle || st.InFlight != 0 {
			t.Errorf("Stats = %+v, want at most %d idle and none in flight", st, maxIdle)
		}
	}
	if total != 400 {
		t.Errorf("requests = %d, want 400", total)
	}
	// With room for every caller's connection on each tracker, no connection is dialled twice.
	if maxIdle >= 8 && opened > 2*8 {
		t.Errorf("%d connections opened for 8 callers with %d kept idle per tracker, want at most 16", opened, maxIdle)
	}
	t.Logf("%d connections opened for 400 commands of 8 callers, %d kept idle per tracker", opened, maxIdle)
}

func TestContextCancelIsNotATrackerFailure(t *testing.T) {
	seen := make(chan struct{}, 1)
	a := newFakeTracker(t, "127.0.0.2", func(string) (string, action) {
		seen <- struct{}{}
		return "", hang
	})
	p, _ := newPool(t, Config{Trackers: []string{a.Addr}, Timeout: conf.Duration(time.Hour)})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-seen; cancel() }()
	_, err := p.Do(ctx, "get_paths", mogproto.Args{{Name: "domain", Value: "d"}, {Name: "key", Value: "k"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	if st := p.Stats().Trackers[0]; !st.Up || st.Failures != 0 || st.Idle != 0 {
		t.Errorf("Stats = %+v, want up, no failures, the aborted connection not pooled", st)
	}
}

func TestLongReplyLine(t *testing.T) {
	long := strings.Repeat("x", 20000)
	a := newFakeTracker(t, "127.0.0.2", func(string) (string, action) { return "OK v=" + long + "\r\n", keep })
	p, _ := newPool(t, Config{Trackers: []string{a.Addr}})
	r, err := p.Do(t.Context(), "noop", nil)
	if err != nil || r.Get("v") != long {
		t.Fatalf("Do = %d bytes, %v, want %d bytes", len(r.Get("v")), err, len(long))
	}
}

func TestClosedPool(t *testing.T) {
	p, _ := newPool(t, Config{})
	p.Close()
	if err := p.Noop(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Noop after Close = %v, want ErrClosed", err)
	}
}

func TestStatsJSON(t *testing.T) {
	p, _ := newPool(t, Config{Trackers: []string{"127.0.0.2:7001", "127.0.0.3"}})
	b, err := json.Marshal(p.Stats())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"trackers":[{"addr":"127.0.0.2:7001","up":true,"consecutive_failures":0,"requests":0,"failures":0,"in_flight":0,"idle":0,"connections_opened":0,"connection_waits":0,"connection_wait_timeouts":0},{"addr":"127.0.0.3:7001","up":true,"consecutive_failures":0,"requests":0,"failures":0,"in_flight":0,"idle":0,"connections_opened":0,"connection_waits":0,"connection_wait_timeouts":0}]}`
	if string(b) != want {
		t.Errorf("Stats JSON = %s, want %s", b, want)
	}
}

func TestNormalizeAddr(t *testing.T) {
	testutil.Table(t, "NormalizeAddr", NormalizeAddr, map[string]string{
		"h":          "h:7001",
		"h:7002":     "h:7002",
		" 10.0.0.1 ": "10.0.0.1:7001",
		"::1":        "[::1]:7001",
		"[::1]":      "[::1]:7001",
		"[::1]:7005": "[::1]:7005",
	})
	if got, want := strings.Join(ParseTrackers("a, b:7002,,c"), ","), "a:7001,b:7002,c:7001"; got != want {
		t.Errorf("ParseTrackers = %q, want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Trackers: []string{"h", "10.0.0.1:7001"}}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	bad := Config{Trackers: []string{"h:notaport", ":7001", "h:70000"}, MaxIdlePerTracker: -1, MaxConnsPerTracker: -1}
	err := bad.Validate()
	var fe *conf.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Validate(bad) = %v, want field errors", err)
	}
	for _, field := range []string{"trackers[0]", "trackers[1]", "trackers[2]", "max_idle_per_tracker", "max_conns_per_tracker"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate(bad) = %v, missing %s", err, field)
		}
	}
}
