package gateway

import (
	"net"
	"time"
)

// idleListener wraps accepted connections so that reads and writes wait at most an idle time for
// progress (see idleConn): a response body of any size may take as long as it needs while the client
// keeps reading, and an upload as long as the client keeps sending.
type idleListener struct {
	net.Listener
	read, write time.Duration
}

func (l *idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: c, read: l.read, write: l.write}, nil
}

// serverConn extends the deadlines fasthttp sets by an idle time on each write, and on each read
// while an upload body streams (streaming set by the handler). Request heads and keep-alive waits keep
// fasthttp's own ReadTimeout and IdleTimeout. fasthttp uses a connection from one goroutine at a time.
type serverConn struct {
	net.Conn
	read, write time.Duration
	rd, wd      time.Time // deadlines fasthttp asked for
	ra, wa      time.Time // deadlines set on the connection now
	streaming   bool
}

func (c *serverConn) SetDeadline(t time.Time) error {
	c.rd, c.wd, c.ra, c.wa = t, t, t, t
	return c.Conn.SetDeadline(t)
}

func (c *serverConn) SetReadDeadline(t time.Time) error {
	c.rd, c.ra = t, t
	return c.Conn.SetReadDeadline(t)
}

func (c *serverConn) SetWriteDeadline(t time.Time) error {
	c.wd, c.wa = t, t
	return c.Conn.SetWriteDeadline(t)
}

func (c *serverConn) Read(p []byte) (int, error) {
	if c.streaming && c.read > 0 {
		if d, ok := extend(c.ra, c.rd, time.Now(), c.read); !ok {
			if err := c.Conn.SetReadDeadline(d); err != nil {
				return 0, err
			}
			c.ra = d
		}
	}
	return c.Conn.Read(p)
}

// Write bounds each write by the idle time. Responses on a kept-alive connection mostly reuse the
// deadline of the one before (see idleSlack), so a small answer costs no timer update.
func (c *serverConn) Write(p []byte) (int, error) {
	if c.write > 0 {
		if d, ok := extend(c.wa, c.wd, time.Now(), c.write); !ok {
			if err := c.Conn.SetWriteDeadline(d); err != nil {
				return 0, err
			}
			c.wa = d
		}
	}
	return c.Conn.Write(p)
}

// NetConn returns the connection c wraps (for httpconn.Tracker.ConnState).
func (c *serverConn) NetConn() net.Conn { return c.Conn }
