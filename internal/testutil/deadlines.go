package testutil

import (
	"net"
	"sync/atomic"
	"time"
)

// ArmCounter wraps a listener and counts the deadlines set on the connections it accepts (each is a
// runtime timer update), for tests of how often a server arms them. Set Listener before use.
type ArmCounter struct {
	net.Listener
	arms atomic.Int64
}

// Arms returns how many deadlines were set so far on the accepted connections.
func (l *ArmCounter) Arms() int64 { return l.arms.Load() }

// Accept returns the next connection, counting its deadlines.
func (l *ArmCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &armCountConn{Conn: c, arms: &l.arms}, nil
}

type armCountConn struct {
	net.Conn
	arms *atomic.Int64
}

func (c *armCountConn) SetDeadline(t time.Time) error {
	c.arms.Add(1)
	return c.Conn.SetDeadline(t)
}

func (c *armCountConn) SetReadDeadline(t time.Time) error {
	c.arms.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *armCountConn) SetWriteDeadline(t time.Time) error {
	c.arms.Add(1)
	return c.Conn.SetWriteDeadline(t)
}
