package worker

import (
	"context"
	"errors"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// fidForgetter is what the delete worker asks of the store.
type fidForgetter interface {
	store.Locker
	jobClaimer
	copyLister
	RemoveFileOn(ctx context.Context, fid int64, devID int) error
	ForgetFid(ctx context.Context, fid int64) error
}

// Delete deferral delays (spec 5.6), each scaled by the row's failcount.
const (
	deleteNotWritable = 60 * time.Second   // × (10 + failcount): node not observed writeable
	deleteReadonly    = 3600 * time.Second // × (1 + failcount): readonly/down device or non-alive host
	deleteFailed      = 1800 * time.Second // × (1 + failcount): the DELETE got another answer
)

// deletePass claims due rows of the delete queue and removes their copies from the storage nodes.
func (w *Workers) deletePass(ctx context.Context) (bool, error) {
	jobs, err := w.claim(ctx, w.deletes, store.QueueDelete, "deletes")
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	w.stats.claimedDeletes.Add(uint64(len(jobs)))
	v, err := w.loadView(ctx)
	if err != nil {
		return false, err
	}
	w.fanOut(ctx, store.QueueDelete, jobs, w.cfg.DeleteWorkers, "delete", func(ctx context.Context, j store.Job) error {
		return w.deleteFid(ctx, v, j)
	})
	return len(jobs) == w.cfg.BatchSize, ctx.Err()
}

// deleteFid removes every copy of a deleted fid and then forgets it; copies that cannot be deleted now
// keep the row, rescheduled by the rules of spec 5.6.
func (w *Workers) deleteFid(ctx context.Context, v *view, j store.Job) error {
	unlock, err := w.deletes.Lock(ctx, fidLock(j.Fid), time.Second)
	if errors.Is(err, store.ErrLocked) {
		return w.retryLockBusy(ctx, store.QueueDelete, j)
	}
	if err != nil {
		return err // the lease brings the row back
	}
	defer unlock()

	if _, err := w.deletes.FileByFid(ctx, j.Fid); err == nil {
		// The fid is a live file (a stale-upload row that was committed after all): its copies are
		// not ours to delete.
		w.log.Warn("delete: fid is a live file; dropping the delete row", "fid", j.Fid)
		return w.deletes.Done(ctx, store.QueueDelete, j.Fid)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	devs, err := w.deletes.FileOn(ctx, j.Fid)
	if err != nil {
		return err
	}
	var wait time.Duration // shortest deferral asked for by a remaining copy; 0 = none
	deferTo := func(d time.Duration) {
		if wait == 0 || d < wait {
			wait = d
		}
	}
	fc := time.Duration(j.FailCount)
	for _, dev := range devs {
		d, _, ok := v.host(dev)
		switch {
		case !ok:
			// Unknown device: nothing to send a DELETE to. ForgetFid drops the row.
			continue
		case d.Status == "dead":
			if err := w.deletes.RemoveFileOn(ctx, j.Fid, dev); err != nil {
				return err
			}
			continue
		case !v.obs[dev].Writable || v.isHung(dev):
			deferTo(deleteNotWritable * (10 + fc))
			continue
		case !v.canDelete(dev):
			deferTo(deleteReadonly * (1 + fc))
			continue
		}
		u, _ := v.url(dev, j.Fid, false)
		if err := w.node.Delete(ctx, u); err != nil {
			w.log.Info("delete: copy not removed", "fid", j.Fid, "devid", dev, "err", err)
			w.noteErr(ctx, v, dev, err)
			deferTo(deleteFailed * (1 + fc))
			continue
		}
		if err := w.deletes.RemoveFileOn(ctx, j.Fid, dev); err != nil {
			return err
		}
		w.stats.deletedCopies.Add(1)
	}
	if wait > 0 {
		w.stats.deleteRetries.Add(1)
		j.FailCount++
		j.NextTry = w.unix() + int64(wait/time.Second)
		return w.deletes.Retry(ctx, store.QueueDelete, j)
	}
	if err := w.deletes.ForgetFid(ctx, j.Fid); err != nil {
		return err
	}
	w.stats.deleteDone.Add(1)
	return w.deletes.Done(ctx, store.QueueDelete, j.Fid)
}
