//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package netx

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

func TestPeerClosed(t *testing.T) {
	t.Parallel()
	ln := testutil.Listen(t, "127.0.0.5:0")
	defer ln.Close()
	for _, tc := range []struct {
		name string
		peer func(net.Conn) // what the server side does before the check
		want error
	}{
		{"idle", func(net.Conn) {}, nil},
		{"closed", func(c net.Conn) { c.Close() }, ErrPeerEOF},
		{"unsolicited", func(c net.Conn) { c.Write([]byte("HTTP/1.1 408")) }, ErrUnsolicited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.Dial(t, ln.Addr().String())
			defer c.Close()
			srv, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			tc.peer(srv)
			var got error
			// The FIN or the bytes reach the client asynchronously: poll until the answer settles
			// on something other than "usable" (or, for the idle case, check once).
			deadline := time.Now().Add(10 * time.Second)
			for {
				got = PeerClosed(c)
				if got != nil || tc.want == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if !errors.Is(got, tc.want) && got != tc.want {
				t.Fatalf("PeerClosed = %v, want %v", got, tc.want)
			}
			// The check only peeks: a usable connection still carries data both ways.
			if tc.want == nil {
				if _, err := srv.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				var b [1]byte
				if n, err := c.Read(b[:]); n != 1 || err != nil || b[0] != 'x' {
					t.Fatalf("Read after the check = %d %q, %v; want 1 \"x\"", n, b[:n], err)
				}
			}
		})
	}
}

// A connection closed on this side is not usable either (the tracker client's old probe said so;
// the gateway's said "usable").
func TestPeerClosedOwnClose(t *testing.T) {
	t.Parallel()
	ln := testutil.Listen(t, "127.0.0.5:0")
	c, err := net.Dial("tcp", ln.Addr().String())
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := PeerClosed(c); err == nil {
		t.Fatalf("PeerClosed(closed conn) = nil, want an error")
	}
}

// A connection that is not a socket cannot be inspected and counts as usable.
func TestPeerClosedNotSocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := PeerClosed(a); err != nil {
		t.Fatalf("PeerClosed(net.Pipe) = %v, want nil", err)
	}
}
