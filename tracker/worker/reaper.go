package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/mogway/mogway/tracker/store"
)

// deviceReaper is what the reaper and the stale-upload reaper ask of the store.
type deviceReaper interface {
	store.Locker
	Settings(ctx context.Context) (map[string]string, error)
	FidsOnDevice(ctx context.Context, devID int, afterFid int64, limit int) ([]int64, error)
	RemoveFileOn(ctx context.Context, fid int64, devID int) error
	Enqueue(ctx context.Context, q store.Queue, j store.Job) error
	StaleTempfiles(ctx context.Context, olderThan int64, limit int) ([]store.Tempfile, error)
	DiscardUpload(ctx context.Context, fid int64, devIDs ...int) error
}

// tempfileBatch is the number of stale uploads reaped per pass, as in the Perl delete worker.
const tempfileBatch = 50

// reaperPass re-replicates the copies of dead devices (spec 5.7): once a device has been seen dead for
// ReapDelay, its file_on rows are dropped in batches and each fid is queued for replication.
func (w *Workers) reaperPass(ctx context.Context) (bool, error) {
	v, err := w.loadView(ctx)
	if err != nil {
		return false, err
	}
	now := w.now()
	var due []int
	w.mu.Lock()
	for id := range w.dead {
		if d, ok := v.devs[id]; !ok || d.Status != "dead" {
			delete(w.dead, id) // revived or deleted: forget it
		}
	}
	for id, d := range v.devs {
		if d.Status != "dead" {
			continue
		}
		first, ok := w.dead[id]
		if !ok {
			w.dead[id] = now
			continue
		}
		if now.Sub(first) >= w.cfg.ReapDelay.D() {
			due = append(due, id)
		}
	}
	w.mu.Unlock()
	if len(due) == 0 {
		return false, nil
	}
	sort.Ints(due)
	unlock, err := w.reaps.Lock(ctx, "mgfs:reaper", 0)
	if errors.Is(err, store.ErrLocked) {
		return false, nil // another tracker is reaping
	}
	if err != nil {
		return false, fmt.Errorf("reaper lock: %w", err)
	}
	defer unlock()
	batch := w.cfg.ReaperBatch
	// The server setting queue_rate_for_reaper, as in MogileFS, overrides reaper_batch.
	if settings, err := w.reaps.Settings(ctx); err == nil {
		if n, err := strconv.Atoi(settings["queue_rate_for_reaper"]); err == nil && n > 0 {
			batch = n
		}
	}
	more := false
	reaped := 0
	for _, dev := range due {
		fids, err := w.reaps.FidsOnDevice(ctx, dev, 0, batch)
		if err != nil {
			return false, fmt.Errorf("fids on dev%d: %w", dev, err)
		}
		for _, fid := range fids {
			// Queue first: if the tracker dies between the two steps the copy is merely counted twice.
			j := store.Job{Fid: fid, NextTry: w.unix() + 1, FromDevID: 0}
			if err := w.reaps.Enqueue(ctx, store.QueueReplicate, j); err != nil {
				return false, fmt.Errorf("reap fid %d: %w", fid, err)
			}
			if err := w.reaps.RemoveFileOn(ctx, fid, dev); err != nil {
				return false, fmt.Errorf("reap fid %d from dev%d: %w", fid, dev, err)
			}
			w.stats.reaped.Add(1)
			reaped++
		}
		if len(fids) == batch {
			more = true
		}
		if len(fids) > 0 {
			w.log.Info("reaper: copies of dead device queued for replication", "devid", dev, "fids", len(fids))
		}
	}
	if reaped > 0 {
		w.Kick(JobReplicate)
	}
	return more, nil
}

// tempfilePass reaps uploads opened more than TempfileMaxAge ago and never closed (spec 5.6): their
// offered devices get file_on rows and the fid goes on the delete queue, so the delete worker removes
// whatever was written (a 404 is fine).
func (w *Workers) tempfilePass(ctx context.Context) (bool, error) {
	unlock, err := w.reaps.Lock(ctx, "mgfs:tempfiles", 0)
	if errors.Is(err, store.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tempfiles lock: %w", err)
	}
	defer unlock()
	cutoff := w.now().Add(-w.cfg.TempfileMaxAge.D()).Unix()
	stale, err := w.reaps.StaleTempfiles(ctx, cutoff, tempfileBatch)
	if err != nil {
		return false, fmt.Errorf("stale tempfiles: %w", err)
	}
	queued := 0
	for _, t := range stale {
		// DiscardUpload takes the tempfile row in the same transaction as it records the offered
		// devices and queues the fid for deletion, so a create_close racing with the reaper on
		// any tracker either commits the file or finds the upload gone, never both.
		err := w.reaps.DiscardUpload(ctx, t.Fid, t.DevIDs...)
		switch {
		case err == nil:
			w.stats.tempfilesReaped.Add(1)
			queued++
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExists):
			// Closed or discarded meanwhile, or committed after all (only its row was left over).
		default:
			return false, fmt.Errorf("stale upload fid %d: %w", t.Fid, err)
		}
	}
	if queued > 0 {
		w.log.Info("stale uploads queued for deletion", "count", queued)
		w.Kick(JobDelete)
	}
	return len(stale) == tempfileBatch, nil
}
