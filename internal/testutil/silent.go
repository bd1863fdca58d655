package testutil

import (
	"net"
	"sync"
	"testing"
)

// Silent listens on the TCP address addr and accepts connections but never reads or answers
// them, as a hung server (a stopped process, a stuck disk) does once the kernel has completed the
// handshake. The listener and every connection it accepted are closed when the test ends.
func Silent(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln := Listen(t, addr)
	var (
		accepting sync.WaitGroup
		mu        sync.Mutex
		conns     []net.Conn // never read, never answered
	)
	accepting.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		accepting.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln
}
