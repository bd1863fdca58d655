package tracker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mogway/mogway/tracker/node"
)

// verifier sends get_paths' verification HEADs. It shares one HEAD among the queries that check
// the same path at the same time: a query that finds a HEAD of its path in flight waits for that
// HEAD's answer instead of sending its own. The answer it gets comes from a HEAD that was still in
// flight when the query began, so it is as fresh as one the query would have sent itself, give or
// take that overlap. Hot keys, read by many clients at once, cost one HEAD per round trip to the
// node rather than one per query.
//
// It also hedges: a HEAD whose node has not begun to answer within the hedge delay
// (verify_hedge_delay) goes on in the background, and the query, with every query sharing that HEAD,
// hears that it is late and checks its next copy, as it would after a failed check, instead of
// waiting up to node_timeout for a node that may have just frozen. Until the late HEAD ends, queries
// for its path hear at once that it is late, and send the node no HEAD of their own. When it ends by
// running out of node_timeout, the host is marked hung, as a query that waited it out would have
// done (query.noteNodeErr): the query has gone, so what must still be live is the verifier, which
// lives until the server stops. Only a HEAD that is slow costs a goroutine: one answered within the
// delay runs on the query's goroutine, as before.
type verifier struct {
	node  *node.Client
	hedge time.Duration // how long a query waits for a node to begin its answer
	// hung records that host hostID did not answer a HEAD sent at asked within node_timeout.
	hung func(hostID int, asked time.Time, err error)
	log  *slog.Logger

	ctx    context.Context // of the late HEADs; ended by stop
	cancel context.CancelFunc
	late   sync.WaitGroup // late HEADs not yet ended

	mu    sync.Mutex // guards calls, spare and the done and late fields of the calls in calls
	calls map[string]*verifyCall
	// spare holds ended calls that no query joined, for the next HEADs to reuse: a check that
	// nobody shares then allocates nothing of the verifier's.
	spare []*verifyCall

	// joined, when set (by tests), is called when a query starts waiting for another's HEAD.
	joined func(url string)
}

// errVerifyAborted is what queries sharing a HEAD hear when its Size call panicked.
var errVerifyAborted = errors.New("tracker: shared verification aborted")

type verifyCall struct {
	// done is made by the first query that joins the call (nil until then: most HEADs are
	// nobody's but their sender's) and closed when n and err are set, or late is.
	done chan struct{}
	n    int64
	err  error
	// late is set when the HEAD outlived the hedge delay; queries that join the call from then
	// on get it at once.
	late *lateVerify
}

// maxSpareCalls bounds verifier.spare: about as many as there are queries at once.
const maxSpareCalls = 64

// lateVerify is a verification HEAD that outlived the hedge delay and goes on in the background.
type lateVerify struct {
	done chan struct{} // closed when n and err are set
	n    int64
	err  error
}

// init readies v to send its HEADs with nc, waiting hedge for each before its queries move on.
// Late HEADs end when ctx does, or when stop is called.
func (v *verifier) init(ctx context.Context, nc *node.Client, hedge time.Duration, hung func(int, time.Time, error), log *slog.Logger) {
	v.node, v.hedge, v.hung, v.log = nc, hedge, hung, log
	v.ctx, v.cancel = context.WithCancel(ctx)
}

// stop ends the late HEADs and waits for their goroutines. A HEAD ended this way marks no host.
func (v *verifier) stop() {
	v.cancel()
	v.late.Wait()
}

// size returns the size of the file at url on host hostID (node.Size), sharing a HEAD already in
// flight for it. When the node has not begun its answer within the hedge delay, size returns late
// instead of waiting: its done channel is closed once the HEAD ends, which may be as late as
// node_timeout after it began.
func (v *verifier) size(ctx context.Context, url string, hostID int) (n int64, late *lateVerify, err error) {
	v.mu.Lock()
	if c, ok := v.calls[url]; ok {
		if c.late != nil {
			v.mu.Unlock()
			return 0, c.late, nil
		}
		if c.done == nil {
			c.done = make(chan struct{})
		}
		done := c.done
		v.mu.Unlock()
		if v.joined != nil {
			v.joined(url)
		}
		<-done
		if c.late != nil {
			return 0, c.late, nil
		}
		return c.n, nil, c.err
	}
	var c *verifyCall
	if k := len(v.spare); k > 0 {
		c, v.spare = v.spare[k-1], v.spare[:k-1]
	} else {
		c = new(verifyCall)
	}
	*c = verifyCall{err: errVerifyAborted} // until SizeWithin returns
	if v.calls == nil {
		v.calls = map[string]*verifyCall{}
	}
	v.calls[url] = c
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if c.late != nil {
			if c.done != nil {
				close(c.done)
			}
			return // the late HEAD's goroutine ends the call
		}
		delete(v.calls, url)
		if c.done != nil {
			close(c.done) // the joined queries read n and err
		} else if len(v.spare) < maxSpareCalls {
			v.spare = append(v.spare, c) // out of calls, with nobody holding it: free to reuse
		}
	}()
	asked := time.Now()
	n, rest, err := v.node.SizeWithin(ctx, url, v.hedge)
	if rest == nil {
		c.n, c.err = n, err
		return n, nil, err
	}
	// The call stays in calls until the HEAD ends, so that later queries of url skip it at once.
	l := &lateVerify{done: make(chan struct{}), err: errVerifyAborted}
	v.mu.Lock()
	c.late = l
	v.mu.Unlock()
	v.late.Go(func() { v.wait(url, l, rest, hostID, asked) })
	return 0, l, nil
}

// wait waits for the late HEAD rest, whose end l reports, and marks host hostID hung when it ran out of
// node_timeout, unless stop ended it.
func (v *verifier) wait(url string, l *lateVerify, rest *node.LateSize, hostID int, asked time.Time) {
	defer func() {
		if r := recover(); r != nil {
			v.log.Error("late verification panicked", "url", url, "panic", r)
		}
		v.mu.Lock()
		delete(v.calls, url)
		v.mu.Unlock()
		close(l.done)
	}()
	l.n, l.err = rest.Wait(v.ctx)
	if l.err != nil && v.ctx.Err() == nil && node.IsTimeout(l.err) {
		v.hung(hostID, asked, l.err)
	}
}
