package gateway

import (
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// node is one storage node or upstream server: its connection pool and its passive health. Nodes
// outlive reloads, so a reload keeps both warm connections and what the gateway learnt about health.
type node struct {
	addr  string
	name  string // the User-Agent of requests to the node (the gateway's server_name)
	hc    *fasthttp.HostClient
	conns connPool // hc's connections, for GETs and HEADs (see node.get)
	// getting counts GETs and HEADs in progress (uploads are hc.PendingRequests).
	getting atomic.Int64

	mu        sync.Mutex // guards fails, window and downUntil
	fails     int        // failures counted in the current window
	window    time.Time  // start of the current failure window
	downUntil time.Time  // the node is avoided until then

	requests atomic.Int64
	dials    atomic.Int64
	failures atomic.Int64
	// staleReads counts answers found cut by a pooled connection the node had closed before the
	// request was sent (see idleConn.SetWriteDeadline), not yet taken by retryStale.
	staleReads atomic.Int64

	// inflight counts requests waiting for response headers; stuck counts those past their hedge
	// delay, which make the node suspect (see suspect).
	inflight, stuck atomic.Int64
	// latMean and latDev are EWMAs of the first-byte latency and of its deviation, in nanoseconds
	// (as TCP estimates its round-trip time); latMean is 0 before the first sample.
	latMean, latDev atomic.Int64
}

// observe records one first-byte latency. Concurrent updates may lose one another's sample; the
// estimate stays an estimate.
func (n *node) observe(d time.Duration) {
	mean, dev := n.latMean.Load(), n.latDev.Load()
	if mean == 0 {
		n.latMean.Store(max(int64(d), 1))
		n.latDev.Store(int64(d) / 2)
		return
	}
	diff := int64(d) - mean
	n.latMean.Store(max(mean+diff/8, 1))
	n.latDev.Store(dev + (max(diff, -diff)-dev)/4)
}

// hedgeDelay is the automatic hedge delay of n: a high percentile of its first-byte latency (mean
// plus twice the deviation) times hedgeFactor, between hedgeMin and hedgeMax.
func (n *node) hedgeDelay() time.Duration {
	mean := n.latMean.Load()
	if mean == 0 {
		return hedgeInitial
	}
	d := time.Duration(mean+2*n.latDev.Load()) * hedgeFactor
	return min(max(d, hedgeMin), hedgeMax)
}

// suspect reports whether a request to n is stuck past its hedge delay: new requests prefer other
// nodes until it answers.
func (n *node) suspect() bool { return n.stuck.Load() > 0 }

// load orders nodes for the first try: fewer requests waiting and a lower latency come first. It is
// 0 (unknown) before the first latency sample.
func (n *node) load() int64 {
	return (n.inflight.Load() + 1) * n.latMean.Load()
}

// lessLoaded reports whether a should be tried before b: both have a latency estimate and a's load
// is lower. A node not heard from yet keeps its place.
func lessLoaded(a, b *node) bool {
	la, lb := a.load(), b.load()
	return la > 0 && lb > 0 && la < lb
}

// available reports whether n may be tried first under h at now.
func (n *node) available(now time.Time, h Health) bool {
	if h.MaxFails < 0 {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return !now.Before(n.downUntil)
}

// fail records one failed attempt, as nginx counts max_fails within fail_timeout.
func (n *node) fail(now time.Time, h Health) {
	n.failures.Add(1)
	if h.MaxFails < 0 {
		return
	}
	ft := h.FailTimeout.D()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.window.IsZero() || now.Sub(n.window) >= ft {
		n.window, n.fails = now, 0
	}
	n.fails++
	if n.fails >= h.MaxFails {
		n.downUntil = now.Add(ft)
		n.fails, n.window = 0, time.Time{}
	}
}

// succeed clears the failure count after a good answer.
func (n *node) succeed() {
	n.mu.Lock()
	n.fails, n.window = 0, time.Time{}
	n.mu.Unlock()
}

// NodeStats is the state of one storage node or upstream server.
type NodeStats struct {
	Addr      string    `json:"addr"`
	Up        bool      `json:"up"`
	DownUntil time.Time `json:"down_until,omitzero"`
	Requests  int64     `json:"requests"`
	Failures  int64     `json:"failures"`
	Conns     int       `json:"conns"`
	// Dials counts connections opened; far fewer than Requests when keep-alive works.
	Dials int64 `json:"dials"`
	// InFlight counts requests waiting for response headers.
	InFlight int64 `json:"in_flight"`
	// LatencyMs is the moving average of first-byte latency, HedgeDelayMs the automatic hedge
	// delay derived from it.
	LatencyMs    float64 `json:"latency_ms"`
	HedgeDelayMs float64 `json:"hedge_delay_ms"`
	// Suspect is true while a request to the node is stuck past its hedge delay.
	Suspect bool `json:"suspect"`
}

func (n *node) stats(now time.Time) NodeStats {
	n.mu.Lock()
	down := n.downUntil
	n.mu.Unlock()
	st := NodeStats{Addr: n.addr, Up: !now.Before(down), Requests: n.requests.Load(),
		Failures: n.failures.Load(), Conns: n.hc.ConnsCount(), Dials: n.dials.Load(),
		InFlight: n.inflight.Load(), LatencyMs: durationMs(time.Duration(n.latMean.Load())),
		HedgeDelayMs: durationMs(n.hedgeDelay()), Suspect: n.suspect()}
	if !st.Up {
		st.DownUntil = down
	}
	return st
}

func durationMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// nodeOptions are the connection settings of every node.
type nodeOptions struct {
	connect   time.Duration
	idle      time.Duration
	maxConns  int
	serverHdr string
}

// nodes is the registry of every node the gateway has talked to, by address. It is safe for
// concurrent use.
type nodes struct {
	mu   sync.Mutex // guards m and opts
	m    map[string]*node
	opts nodeOptions
}

func newNodes(opts nodeOptions) *nodes { return &nodes{m: map[string]*node{}, opts: opts} }

// get returns the node for addr, creating it on first use.
func (ns *nodes) get(addr string) *node {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if n := ns.m[addr]; n != nil {
		return n
	}
	o := ns.opts
	n := &node{addr: addr, name: o.serverHdr}
	n.hc = &fasthttp.HostClient{
		Addr:                addr,
		Name:                o.serverHdr,
		DialTimeout:         idleDialer(o.connect, o.idle, &n.dials, &n.staleReads),
		MaxConns:            o.maxConns,
		MaxIdleConnDuration: 10 * time.Second,
		MaxConnWaitTimeout:  o.connect,
		StreamResponseBody:  true,
		// An upload body is copied to the node through this buffer (held only while a request is
		// written): fasthttp's 4 KiB default costs a write system call per 4 KiB.
		WriteBufferSize: writeBufferSize,
		// An answer's head and a small body arrive together: read them with one system call
		// (fasthttp's 4 KiB default takes two or three for a 4 KiB object).
		ReadBufferSize: nodeReadBufferSize,
		// Bodies up to this size are read whole before the answer is used (so a copy that dies
		// within them is failed over before the first byte); larger ones stream.
		MaxResponseBodySize:           maxBufferedBody,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		NoDefaultUserAgentHeader:      false,
		RetryIfErr: func(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
			return false, n.retryStale(attempts, err)
		},
	}
	n.conns = newHostConns(n.hc.AcquireConn, n.hc.ReleaseConn, n.hc.CloseConn)
	ns.m[addr] = n
	return n
}

func (ns *nodes) all() []*node {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	out := make([]*node, 0, len(ns.m))
	for _, n := range ns.m {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *node) int { return strings.Compare(a.addr, b.addr) })
	return out
}

func (ns *nodes) closeIdle() {
	for _, n := range ns.all() {
		n.hc.CloseIdleConnections()
	}
}

// takeStale takes one count of staleReads, reporting whether there was one.
func (n *node) takeStale() bool {
	for {
		v := n.staleReads.Load()
		if v <= 0 {
			return false
		}
		if n.staleReads.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// nodeReadBufferSize is the read buffer of a node connection, held while an answer is read: an
// answer's head and a body of up to about 15 KiB in one read.
const nodeReadBufferSize = 16 << 10

// maxBufferedBody is the largest storage answer read whole (with its Content-Length) before the
// answer is used; larger or chunked ones stream.
const maxBufferedBody = 64 << 10

// retryStale retries a request once when a kept-alive connection turned out to be closed by the node
// before it answered; every other error is left to the gateway's own failover to the next node.
// A connection found closed before the request was written (errStaleConn), or found closed on the
// first read of the answer to a request sent on it without the liveness check (a staleReads count),
// is always safe to retry: fasthttp sends no request with a body stream twice. The second one in a
// row means the node restarted and every idle connection predates it: they are all closed, so the
// next attempt dials (fasthttp stops after MaxIdemponentCallAttempts).
func (n *node) retryStale(attempts int, err error) bool {
	if errors.Is(err, errStaleConn) || (errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF)) && n.takeStale() {
		if attempts >= 2 {
			n.hc.CloseIdleConnections()
		}
		return true
	}
	return attempts < 2 && (errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF))
}
