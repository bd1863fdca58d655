package tracker

import (
	"context"
	"errors"
	"sync"

	"github.com/mogway/mogway/tracker/node"
)

// verifier shares one verification HEAD among the get_paths queries that check the same path at
// the same time: a query that finds a HEAD of its path in flight waits for that HEAD's answer
// instead of sending its own. The answer it gets comes from a HEAD that was still in flight when
// the query began, so it is as fresh as one the query would have sent itself, give or take that
// overlap. Hot keys, read by many clients at once, cost one HEAD per round trip to the node
// rather than one per query.
type verifier struct {
	mu    sync.Mutex // guards calls
	calls map[string]*verifyCall

	// joined, when set (by tests), is called when a query starts waiting for another's HEAD.
	joined func(url string)
}

// errVerifyAborted is what queries sharing a HEAD hear when its Size call panicked.
var errVerifyAborted = errors.New("tracker: shared verification aborted")

type verifyCall struct {
	done chan struct{} // closed when n and err are set
	n    int64
	err  error
}

// size returns node.Size of url, sharing a HEAD already in flight for it.
func (v *verifier) size(ctx context.Context, nc *node.Client, url string) (int64, error) {
	v.mu.Lock()
	if c, ok := v.calls[url]; ok {
		v.mu.Unlock()
		if v.joined != nil {
			v.joined(url)
		}
		<-c.done
		return c.n, c.err
	}
	c := &verifyCall{done: make(chan struct{}), err: errVerifyAborted} // until Size returns
	if v.calls == nil {
		v.calls = map[string]*verifyCall{}
	}
	v.calls[url] = c
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.calls, url)
		v.mu.Unlock()
		close(c.done)
	}()
	c.n, c.err = nc.Size(ctx, url)
	return c.n, c.err
}
