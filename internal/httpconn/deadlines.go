package httpconn

import "time"

// deadlineSlack sets how late a Conn with Options.CoarseDeadlines may arm a deadline: by up to
// 1/deadlineSlack of the time left until it when it was asked for, so one asked for 60 s ahead is
// armed between 60 and 67.5 s ahead. The next request on the connection asks for a deadline a
// little later than the last, and the one armed still serves it while it lies within the slack:
// arming a deadline is a runtime timer update, which fasthttp's server would otherwise pay up to
// three times per request (the keep-alive wait, the request head and the answer).
const deadlineSlack = 8

// deadline is one direction's deadline of a Conn with coarse deadlines. Only the goroutine using
// the connection touches it: fasthttp sets deadlines, reads and writes a connection from one
// goroutine at a time, and so must any other user of a Conn with coarse deadlines (Close, not a
// deadline, ends a read blocked in another goroutine).
type deadline struct {
	want   time.Time // the deadline asked for; zero: none
	latest time.Time // the latest deadline that may stand for want (want plus the slack)
	armed  time.Time // the deadline set on the connection now
}

// set records t, asked for at now.
func (d *deadline) set(t, now time.Time) {
	d.want, d.latest = t, t
	if t.After(now) {
		d.latest = t.Add(t.Sub(now) / deadlineSlack)
	}
}

// ok reports whether the armed deadline serves the one asked for: it is neither earlier nor later
// than the slack allows.
func (d *deadline) ok() bool {
	if d.want.IsZero() {
		return d.armed.IsZero()
	}
	return !d.armed.IsZero() && !d.armed.Before(d.want) && !d.armed.After(d.latest)
}

// arm sets the deadline on the connection through setFn unless the armed one serves. It arms the
// latest deadline allowed, so that the requests that follow soon can keep it.
func (d *deadline) arm(setFn func(time.Time) error) error {
	if d.ok() {
		return nil
	}
	if err := setFn(d.latest); err != nil {
		return err
	}
	d.armed = d.latest
	return nil
}

// SetDeadline sets both deadlines (see SetReadDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	if !c.coarse {
		return c.Conn.SetDeadline(t)
	}
	now := time.Now()
	c.rd.set(t, now)
	c.wd.set(t, now)
	return nil
}

// SetReadDeadline sets the read deadline. With Options.CoarseDeadlines it only records t, and Read
// arms it before the next read, late by up to an eighth of the time left until it, unless the
// deadline armed already lies between t and that: a deadline asked for and never waited on
// (fasthttp's request head deadline, when the head came whole with the keep-alive wait's read)
// costs nothing, and nor does one that an earlier request's armed deadline serves.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !c.coarse {
		return c.Conn.SetReadDeadline(t)
	}
	c.rd.set(t, time.Now())
	return nil
}

// SetWriteDeadline sets the write deadline; with Options.CoarseDeadlines, Write and ReadFrom arm
// it as Read arms the read deadline (see SetReadDeadline).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.coarse {
		return c.Conn.SetWriteDeadline(t)
	}
	c.wd.set(t, time.Now())
	return nil
}

// Write writes to the connection, with Options.CoarseDeadlines after arming the write deadline.
func (c *Conn) Write(p []byte) (int, error) {
	if c.coarse {
		if err := c.wd.arm(c.Conn.SetWriteDeadline); err != nil {
			return 0, err
		}
	}
	if c.held.On() {
		return c.writeHeld(p)
	}
	return c.Conn.Write(p)
}
