package httpconn

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/valyala/fasthttp"
)

func TestDeadlineKept(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	for _, tc := range []struct {
		name       string
		armed      time.Time
		want       time.Time
		wantLatest time.Time
		wantKept   bool
	}{
		{name: "none armed", want: at(time.Minute), wantLatest: at(67500 * time.Millisecond)},
		{name: "armed later within slack", armed: at(65 * time.Second), want: at(time.Minute),
			wantLatest: at(67500 * time.Millisecond), wantKept: true},
		{name: "armed at the slack's end", armed: at(67500 * time.Millisecond), want: at(time.Minute),
			wantLatest: at(67500 * time.Millisecond), wantKept: true},
		{name: "armed at the deadline", armed: at(time.Minute), want: at(time.Minute),
			wantLatest: at(67500 * time.Millisecond), wantKept: true},
		{name: "armed past the slack", armed: at(68 * time.Second), want: at(time.Minute),
			wantLatest: at(67500 * time.Millisecond)},
		{name: "armed earlier", armed: at(59 * time.Second), want: at(time.Minute),
			wantLatest: at(67500 * time.Millisecond)},
		{name: "none asked, some armed", armed: at(time.Second)},
		{name: "none asked, none armed", wantKept: true},
		{name: "passed", armed: at(time.Minute), want: now, wantLatest: now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deadline{armed: tc.armed}
			d.set(tc.want, now)
			if !d.latest.Equal(tc.wantLatest) {
				t.Errorf("latest = %v after now, want %v", d.latest.Sub(now), tc.wantLatest.Sub(now))
			}
			if got := d.ok(); got != tc.wantKept {
				t.Errorf("ok = %v, want %v", got, tc.wantKept)
			}
			var armed []time.Time
			if err := d.arm(func(t time.Time) error { armed = append(armed, t); return nil }); err != nil {
				t.Fatal(err)
			}
			if tc.wantKept != (len(armed) == 0) || len(armed) == 1 && !armed[0].Equal(tc.wantLatest) {
				t.Errorf("armed %v, want kept %v or the latest allowed", armed, tc.wantKept)
			}
			if !d.ok() {
				t.Errorf("after arm: armed %v does not serve %v", d.armed, d.want)
			}
		})
	}
}

// A fasthttp server behind a Tracker with CoarseDeadlines arms the deadlines of the first request
// on a kept-alive connection and none for the requests that follow; without it (the gateway's
// Tracker) every deadline fasthttp asks for is armed at once, three per kept-alive request.
func TestTrackerCoarseDeadlines(t *testing.T) {
	const requests = 10
	for _, tc := range []struct {
		coarse bool
		want   int64 // deadlines armed by the requests after the first
	}{{false, 3 * requests}, {true, 0}} {
		tr := NewTracker(Options{CoarseDeadlines: tc.coarse})
		ac := &testutil.ArmCounter{Listener: testutil.Listen(t, "127.0.0.1:0")}
		serveOn(t, tr, ac, &fasthttp.Server{
			Handler:     func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
			ReadTimeout: time.Minute, WriteTimeout: time.Hour, IdleTimeout: time.Minute,
		})
		c := testutil.Dial(t, ac.Addr().String())
		br := bufio.NewReader(c)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		roundTrip(t, c, br, req)
		first := ac.Arms()
		for range requests {
			if status, body := roundTrip(t, c, br, req); status != 200 || body != "ok" {
				t.Fatalf("answer %d %q, want 200 ok", status, body)
			}
		}
		// Each answer is written before the server asks for the next keep-alive wait's deadline,
		// so when an answer has been read that wait's deadline may or may not be armed yet. Both
		// counts are taken at such a point (after the first answer and after the last), so the
		// difference is the requests' own deadlines give or take that one.
		if got := ac.Arms() - first; got > tc.want+1 || got < tc.want-1 {
			t.Errorf("coarse %v: %d kept-alive requests armed %d deadlines, want %d (the first armed %d)",
				tc.coarse, requests, got, tc.want, first)
		}
	}
}

// A coarse deadline shorter than the one armed is armed before the read that waits on it, and so
// is a deadline that has passed.
func TestCoarseDeadlineShortened(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &Conn{Conn: a, t: NewTracker(Options{}), coarse: true}
	c.head.done = true
	buf := make([]byte, 8)
	c.SetReadDeadline(time.Now().Add(time.Hour)) //nolint:errcheck // checked by Read
	go b.Write([]byte("x"))                      //nolint:errcheck // read below
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{20 * time.Millisecond, -time.Second} {
		c.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck // checked by Read
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read past a deadline %v ahead = %v, want a timeout", d, err)
		}
	}
}
