package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// copyMover is what the rebalance worker asks of the store.
type copyMover interface {
	store.Locker
	jobClaimer
	copyLister
	AddFileOn(ctx context.Context, fid int64, devID int) error
	RemoveFileOn(ctx context.Context, fid int64, devID int) error
	Checksum(ctx context.Context, fid int64) (store.Checksum, error)
}

// rebalancePass works on the rebalance queue (file_to_queue type 2, spec 5.11): each row moves one
// copy of a fid from its source device (Job.FromDevID) to one of the destination devices listed in
// Job.Arg, then deletes the source copy. Rows are injected by whichever tracker runs the rebalance
// (a Perl tracker sharing the database, or rebalance_start).
func (w *Workers) rebalancePass(ctx context.Context) (bool, error) {
	jobs, err := w.claim(ctx, w.moves, store.QueueRebalance, "rebalance")
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	v, err := w.loadView(ctx)
	if err != nil {
		return false, err
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			w.release(ctx, store.QueueRebalance, j)
			continue
		}
		if err := w.rebalanceFid(ctx, v, j); err != nil {
			if ctx.Err() != nil {
				w.release(ctx, store.QueueRebalance, j)
				continue
			}
			w.log.Info("rebalance", "fid", j.Fid, "from", j.FromDevID, "err", err)
		}
	}
	return len(jobs) == w.cfg.BatchSize, ctx.Err()
}

// parseDevList reads a comma-separated devid list ("3,4,7"); bad entries are skipped.
func parseDevList(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// retryQueue reschedules j on q with the replication backoff and returns why.
func (w *Workers) retryQueue(ctx context.Context, q store.Queue, j store.Job, why error) error {
	d := replBackoff[min(j.FailCount, len(replBackoff)-1)]
	j.FailCount++
	j.NextTry = w.unix() + int64(w.jitter(d)/time.Second)
	if err := w.moves.Retry(ctx, q, j); err != nil {
		return fmt.Errorf("%v; reschedule: %w", why, err)
	}
	return why
}

// rebalanceFid moves fid's copy off j.FromDevID.
func (w *Workers) rebalanceFid(ctx context.Context, v *view, j store.Job) error {
	q := store.QueueRebalance
	unlock, err := w.moves.Lock(ctx, fidLock(j.Fid), time.Second)
	if errors.Is(err, store.ErrLocked) {
		return w.retryLockBusy(ctx, q, j)
	}
	if err != nil {
		return err
	}
	defer unlock()
	f, err := w.moves.FileByFid(ctx, j.Fid)
	if errors.Is(err, store.ErrNotFound) {
		return w.moves.Done(ctx, q, j.Fid)
	}
	if err != nil {
		return w.retryQueue(ctx, q, j, err)
	}
	on, err := w.moves.FileOn(ctx, f.Fid)
	if err != nil {
		return w.retryQueue(ctx, q, j, err)
	}
	holds := make(map[int]bool, len(on))
	for _, d := range on {
		holds[d] = true
	}
	src := j.FromDevID
	if !holds[src] {
		return w.moves.Done(ctx, q, f.Fid) // nothing left to move
	}
	if !v.readable(src) || !v.canDelete(src) {
		return w.retryQueue(ctx, q, j, fmt.Errorf("source dev%d cannot be read and deleted from now", src))
	}
	var dests []int
	for _, d := range parseDevList(j.Arg) {
		if !holds[d] && v.writable(d) {
			dests = append(dests, d)
		}
	}
	dests = weightedOrder(dests, func(id int) float64 { return 100 * v.percentFree(id) }, w.randFloat)
	var stored *store.Checksum
	if c, err := w.moves.Checksum(ctx, f.Fid); err == nil {
		stored = &c
	} else if !errors.Is(err, store.ErrNotFound) {
		return w.retryQueue(ctx, q, j, err)
	}
	hashType := store.HashNone
	if stored != nil {
		hashType = stored.Type
	}
	// A destination that holds the fid already got its copy in an earlier attempt whose source
	// delete failed: finish that move instead of making another copy.
	moved := false
	for _, d := range parseDevList(j.Arg) {
		moved = moved || holds[d]
	}
	for _, dst := range dests {
		if moved {
			break
		}
		if _, err := w.copyReplica(ctx, v, f, src, dst, hashType, stored); err != nil {
			w.stats.copyErrors.Add(1)
			var ce *node.CopyError
			if errors.As(err, &ce) && ce.Source {
				w.noteErr(ctx, v, src, err)
				return w.retryQueue(ctx, q, j, err)
			}
			w.noteErr(ctx, v, dst, err)
			continue
		}
		if err := w.moves.AddFileOn(ctx, f.Fid, dst); err != nil {
			return w.retryQueue(ctx, q, j, err)
		}
		w.stats.replicated.Add(1)
		w.stats.replicatedBytes.Add(uint64(f.Length))
		moved = true
	}
	if !moved {
		return w.retryQueue(ctx, q, j, fmt.Errorf("no destination of %q can take fid %d now", j.Arg, f.Fid))
	}
	u, _ := v.url(src, f.Fid, false)
	if err := w.node.Delete(ctx, u); err != nil {
		w.noteErr(ctx, v, src, err)
		return w.retryQueue(ctx, q, j, fmt.Errorf("delete source copy: %w", err))
	}
	if err := w.moves.RemoveFileOn(ctx, f.Fid, src); err != nil {
		return w.retryQueue(ctx, q, j, err)
	}
	w.stats.rebalanced.Add(1)
	return w.moves.Done(ctx, q, f.Fid)
}
