package clustertest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/worker"
)

// TestGetPathsHedgeFrozenNode: with node 1 frozen, the monitor not yet aware of it and a
// node_timeout far longer than the clients wait, get_paths with verification of keys with a copy on
// each node answers every client in time with the copy on node 0, whichever copy the tracker drew
// first: a check that node 1 does not begin to answer within verify_hedge_delay no longer holds the
// query (nor the queries sharing it) for node_timeout.
func TestGetPathsHedgeFrozenNode(t *testing.T) {
	const (
		nodeTimeout    = 20 * time.Second
		clientDeadline = 5 * time.Second
		keys, rounds   = 4, 4 // 16 queries: the frozen copy is drawn first for about half of them
	)
	c := hungCluster(t, nodeTimeout, 0, worker.Config{MonitorInterval: conf.Duration(time.Hour)})
	for i := range keys {
		key := "k" + strconv.Itoa(i)
		c.Upload(t, "d", key, "two", []byte("data of "+key))
		Eventually(t, key+" on both nodes", func() bool {
			paths := c.GetPaths(t, "d", key)
			return len(paths) == 2 && c.NodeOf(devOf(t, paths[0])) != c.NodeOf(devOf(t, paths[1]))
		})
	}
	c.FreezeNode(t, 1)
	for range rounds {
		var wg sync.WaitGroup
		paths := make([][]string, keys)
		errs := make([]error, keys)
		for i := range keys {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
				defer cancel()
				paths[i], errs[i] = c.Client().GetPaths(ctx, "d", "k"+strconv.Itoa(i), client.GetPathsOptions{})
			})
		}
		wg.Wait()
		for i := range keys {
			if errs[i] != nil {
				t.Fatalf("GetPaths(k%d) with node 1 frozen: %v", i, errs[i])
			}
			if len(paths[i]) == 0 || c.NodeOf(devOf(t, paths[i][0])) != 0 {
				t.Fatalf("GetPaths(k%d) with node 1 frozen = %q, want the copy on node 0 first", i, paths[i])
			}
		}
	}
}
