package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 400) {
		t.Fatalf("String() = %d bytes, want 400", len(got))
	}
}

func TestClock(t *testing.T) {
	c := NewClock()
	start := c.Now()
	if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !start.Equal(want) {
		t.Fatalf("NewClock().Now() = %v, want %v", start, want)
	}
	c.Advance(90 * time.Second)
	if got := c.Now().Sub(start); got != 90*time.Second {
		t.Fatalf("after Advance(90s) the clock moved %v, want 90s", got)
	}
}

func TestTracker(t *testing.T) {
	ft := NewTracker(t, "127.0.0.2", func(line string) (string, Action) {
		if line == "bye" {
			return "OK \r\n", Hangup
		}
		return "OK echo=" + line + "\r\n", Keep
	})
	c, err := net.Dial("tcp", ft.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tt := range []struct{ send, want string }{
		{"noop\r\n", "OK echo=noop\r\n"},
		{"x y\n", "OK echo=x y\r\n"},
		{"bye\r\n", "OK \r\n"},
	} {
		c.Write([]byte(tt.send))
		if got, err := br.ReadString('\n'); got != tt.want || err != nil {
			t.Fatalf("reply to %q = %q, %v; want %q", tt.send, got, err, tt.want)
		}
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatalf("connection still open after Hangup")
	}
	if got, want := strings.Join(ft.Lines(), "|"), "noop|x y|bye"; got != want {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
	if n := ft.Accepts(); n != 1 {
		t.Errorf("Accepts() = %d, want 1", n)
	}
}

func TestListen(t *testing.T) {
	var addr string
	t.Run("listening", func(t *testing.T) {
		ln := Listen(t, "127.0.0.2:0")
		addr = ln.Addr().String()
		if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.2" {
			t.Fatalf("Listen address = %q, want one on 127.0.0.2", addr)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("Dial(%s) = %v while listening", addr, err)
		}
		c.Close()
	})
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("Dial(%s) succeeded after the test that listened ended, want refused", addr)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t, "127.0.0.2")
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.2" {
		t.Fatalf("FreeAddr = %q, want an address on 127.0.0.2", addr)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("Dial(%s) succeeded, want refused", addr)
	}
}

func TestWaitForPollsUntilTrue(t *testing.T) {
	n := 0
	WaitFor(t, time.Minute, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond polled %d times, want 3", n)
	}
}

// fatalRecorder is a testing.TB whose Fatalf and Errorf record the message instead of failing the
// test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}
func (r *fatalRecorder) Errorf(format string, args ...any) { r.Fatalf(format, args...) }

func TestWaitForFailsAfterDeadline(t *testing.T) {
	r := &fatalRecorder{TB: t}
	WaitFor(r, 0, "nothing", func() bool { return false })
	if r.msg != "timed out after 0s waiting for nothing" {
		t.Fatalf("Fatalf message = %q", r.msg)
	}
}

func TestDial(t *testing.T) {
	ln := Listen(t, "127.0.0.2:0")
	c := Dial(t, ln.Addr().String())
	defer c.Close()
	if got, want := c.RemoteAddr().String(), ln.Addr().String(); got != want {
		t.Errorf("Dial connected to %s, want %s", got, want)
	}
	r := &fatalRecorder{TB: t}
	if c := Dial(r, FreeAddr(t, "127.0.0.2")); c != nil || r.msg == "" {
		t.Errorf("Dial of a closed port = %v with Fatal %q; want nil and a Fatal", c, r.msg)
	}
}

func TestServeCancelled(t *testing.T) {
	var gotErr bool
	ServeCancelled(t, "127.0.0.2", func(ctx context.Context, ln net.Listener) error {
		gotErr = ctx.Err() != nil
		return nil
	})
	if !gotErr {
		t.Errorf("serve got a live context, want one cancelled before the call")
	}
	r := &fatalRecorder{TB: t}
	ServeCancelled(r, "127.0.0.2", func(ctx context.Context, ln net.Listener) error { return errors.New("boom") })
	if r.msg != "Serve with a context cancelled before it started = boom, want nil" {
		t.Errorf("Errorf message = %q", r.msg)
	}
}

func TestTableReportsEveryMismatch(t *testing.T) {
	r := &fatalRecorder{TB: t}
	double := func(n int) int { return 2 * n }
	Table(r, "double", double, map[int]int{1: 2, 2: 4})
	if r.msg != "" {
		t.Fatalf("matching cases reported %q", r.msg)
	}
	Table(r, "double", double, map[int]int{3: 7})
	if r.msg != "double(3) = 6, want 7" {
		t.Fatalf("Errorf message = %q", r.msg)
	}
}

func TestParsesAndRejects(t *testing.T) {
	r := &fatalRecorder{TB: t}
	Parses(r, "Atoi", strconv.Atoi, map[string]int{"1": 1, "-2": -2})
	Rejects(r, "Atoi", strconv.Atoi, "", "x")
	if r.msg != "" {
		t.Fatalf("matching cases reported %q", r.msg)
	}
	Parses(r, "Atoi", strconv.Atoi, map[string]int{"x": 0})
	if !strings.HasPrefix(r.msg, `Atoi("x") = 0, strconv.Atoi: parsing "x": invalid syntax; want 0`) {
		t.Fatalf("Parses message = %q", r.msg)
	}
	Rejects(r, "Atoi", strconv.Atoi, "7")
	if r.msg != `Atoi("7") = 7, <nil>; want an error` {
		t.Fatalf("Rejects message = %q", r.msg)
	}
	r.msg = ""
	RejectsWith(r, "Atoi", strconv.Atoi, map[string]error{"x": strconv.ErrSyntax, "": strconv.ErrSyntax})
	if r.msg != "" {
		t.Fatalf("matching errors reported %q", r.msg)
	}
	RejectsWith(r, "Atoi", strconv.Atoi, map[string]error{"x": strconv.ErrRange})
	if r.msg != `Atoi("x") = 0, strconv.Atoi: parsing "x": invalid syntax; want value out of range` {
		t.Fatalf("RejectsWith message = %q", r.msg)
	}
}

type closeRecorder struct{ closed chan struct{} }

func (c *closeRecorder) Close() error { close(c.closed); return nil }

func TestServingStop(t *testing.T) {
	boom := errors.New("boom")
	// Graceful: only the context ends, and serve's error comes back.
	c := &closeRecorder{closed: make(chan struct{})}
	s := Go(c, func(ctx context.Context) error { <-ctx.Done(); return boom })
	if err := s.Stop(t, "graceful", false, time.Minute); err != boom {
		t.Fatalf("Stop(graceful) = %v, want %v", err, boom)
	}
	select {
	case <-c.closed:
		t.Fatal("a graceful Stop closed the server")
	default:
	}
	// Crash: the server is closed before the context ends.
	c = &closeRecorder{closed: make(chan struct{})}
	s = Go(c, func(ctx context.Context) error { <-c.closed; return nil })
	if err := s.Stop(t, "crashed", true, time.Minute); err != nil {
		t.Fatalf("Stop(crash) = %v, want nil", err)
	}
	// A serve loop that ignores both fails the test.
	hang := make(chan struct{})
	defer close(hang)
	s = Go(&closeRecorder{closed: make(chan struct{})}, func(context.Context) error { <-hang; return nil })
	r := &fatalRecorder{TB: t}
	s.Stop(r, "hung", false, 0)
	if r.msg != "hung did not stop within 0s" {
		t.Fatalf("Errorf message = %q", r.msg)
	}
}

func TestRun(t *testing.T) {
	stopped := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-stopped:
		default:
			t.Error("serve still running after its test ended")
		}
	})
	Run(t, "graceful", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })

	r := &fatalRecorder{TB: t}
	t.Cleanup(func() {
		if r.msg != "boom Serve: boom" {
			t.Errorf("Errorf message = %q, want %q", r.msg, "boom Serve: boom")
		}
	})
	Run(r, "boom", func(ctx context.Context) error { <-ctx.Done(); return errors.New("boom") })
}
