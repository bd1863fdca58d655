package backup

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// sizeWatch reports the growth of a file being written to a Progress, every 100ms from its own
// goroutine, until done.
type sizeWatch struct {
	total atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// watchSize starts watching path; with a nil progress it watches nothing.
func watchSize(path string, progress Progress) *sizeWatch {
	w := &sizeWatch{stop: make(chan struct{})}
	if progress == nil {
		return w
	}
	report := func() {
		if fi, err := os.Stat(path); err == nil {
			progress(fi.Size(), max(fi.Size(), w.total.Load()))
		}
	}
	w.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				report()
				return
			case <-t.C:
				report()
			}
		}
	})
	return w
}

// setTotal records the expected size of the file.
func (w *sizeWatch) setTotal(n int64) { w.total.Store(n) }

// done stops the watch and waits for its goroutine; the last report comes before it returns.
func (w *sizeWatch) done() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}
