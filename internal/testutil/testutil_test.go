package testutil

import (
	"bufio"
	"fmt"
	"net"
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

// fatalRecorder is a testing.TB whose Fatalf records the message instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestWaitForFailsAfterDeadline(t *testing.T) {
	r := &fatalRecorder{TB: t}
	WaitFor(r, 0, "nothing", func() bool { return false })
	if r.msg != "timed out after 0s waiting for nothing" {
		t.Fatalf("Fatalf message = %q", r.msg)
	}
}
