package clustertest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Freezer makes a server hang the way a stopped process or a stuck disk does: while it is frozen,
// the kernel still completes TCP handshakes on the listener (connects succeed and requests are
// sent), but the server reads nothing more and writes nothing more on any connection, so clients
// wait until their own timeouts. Thaw lets everything continue where it stopped, as SIGCONT does.
// Nothing is mocked: the server is the real one, behind a real listener.
//
// The zero value is a thawed Freezer. Its methods are safe for concurrent use. Wrap a listener with
// Listener before the server starts serving on it.
type Freezer struct {
	mu      sync.Mutex    // guards thawed
	thawed  chan struct{} // nil while running; closed by Thaw
	stalled atomic.Int64
}

// Stalled returns the number of times a connection got stuck on f: once for each request that
// arrived, or connection that was opened, while f was frozen. A test can count with it how many
// requests went to a hung node.
func (f *Freezer) Stalled() int64 { return f.stalled.Load() }

// Freeze stalls every listener and connection wrapped by f. Freezing a frozen Freezer does nothing.
func (f *Freezer) Freeze() {
	f.mu.Lock()
	if f.thawed == nil {
		f.thawed = make(chan struct{})
	}
	f.mu.Unlock()
}

// Thaw lets the stalled accepts, reads and writes go on. Thawing a running Freezer does nothing.
func (f *Freezer) Thaw() {
	f.mu.Lock()
	if f.thawed != nil {
		close(f.thawed)
		f.thawed = nil
	}
	f.mu.Unlock()
}

// Frozen reports whether f is frozen.
func (f *Freezer) Frozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.thawed != nil
}

// wait blocks while f is frozen; it returns net.ErrClosed if closed is closed first.
func (f *Freezer) wait(closed <-chan struct{}) error {
	f.mu.Lock()
	g := f.thawed
	f.mu.Unlock()
	if g == nil {
		return nil
	}
	f.stalled.Add(1)
	select {
	case <-g:
		return nil
	case <-closed:
		return net.ErrClosed
	}
}

// Listener wraps ln so that f stalls the connections it accepts. Closing a connection ends a stall
// on it with net.ErrClosed, so a server can still be shut down while frozen.
func (f *Freezer) Listener(ln net.Listener) net.Listener {
	return &frozenListener{Listener: ln, f: f}
}

type frozenListener struct {
	net.Listener
	f *Freezer
}

// Accept hands the server every connection, frozen or not: the kernel has completed the handshake
// either way, and the connection stalls on its first read. (Stalling Accept instead would leave
// all but one new connection in the kernel's backlog, out of Stalled's count.)
func (l *frozenListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frozenConn{Conn: c, f: l.f, closed: make(chan struct{})}, nil
}

type frozenConn struct {
	net.Conn
	f         *Freezer
	closeOnce sync.Once
	closed    chan struct{}
}

// Read stalls before and after the underlying read: a read already blocked on an idle keep-alive
// connection when f froze must not deliver the next request to the server.
func (c *frozenConn) Read(p []byte) (int, error) {
	if err := c.f.wait(c.closed); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if werr := c.f.wait(c.closed); werr != nil {
		return 0, werr
	}
	return n, err
}

func (c *frozenConn) Write(p []byte) (int, error) {
	if err := c.f.wait(c.closed); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *frozenConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// FreezeNode makes storage node i hang (Freezer): its port still accepts connections but nothing
// answers, as with a node whose disk or process is stuck. The node is thawed at cleanup.
func (c *Cluster) FreezeNode(t testing.TB, i int) {
	t.Helper()
	c.nodes[i].freezer.Freeze()
	t.Cleanup(c.nodes[i].freezer.Thaw)
}

// ThawNode lets storage node i go on from where FreezeNode stopped it.
func (c *Cluster) ThawNode(t testing.TB, i int) {
	t.Helper()
	c.nodes[i].freezer.Thaw()
}

// NodeStalled returns how many requests (or new connections) reached storage node i while it was
// frozen (Freezer.Stalled): how often something waited on the hung node.
func (c *Cluster) NodeStalled(i int) int64 { return c.nodes[i].freezer.Stalled() }
