package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// fsckChecker is what the fsck worker asks of the store; its progress lives in server settings.
type fsckChecker interface {
	store.Locker
	jobClaimer
	copyLister
	AddFsckEvent(ctx context.Context, e store.FsckEvent) error
	FsckEvents(ctx context.Context, afterLogID int64, limit int) ([]store.FsckEvent, error)
	Enqueue(ctx context.Context, q store.Queue, j store.Job) error
	ListFids(ctx context.Context, fromFid int64, count int) ([]store.File, error)
	AddFileOn(ctx context.Context, fid int64, devID int) error
	RemoveFileOn(ctx context.Context, fid int64, devID int) error
	Checksum(ctx context.Context, fid int64) (store.Checksum, error)
	SetChecksum(ctx context.Context, c store.Checksum) error
	Settings(ctx context.Context) (map[string]string, error)
	SetSettings(ctx context.Context, kv map[string]string) error
}

// Fsck event codes (fsck_log.evcode, spec 6.1).
const (
	EvNoPaths     = "NOPA" // no copies recorded
	EvPolicy      = "POVI" // replication policy not met
	EvMissing     = "MISS" // a copy is missing
	EvBadLength   = "BLEN" // a copy has the wrong length
	EvGone        = "GONE" // no good copy anywhere
	EvSearch      = "SRCH" // searching every device for a copy
	EvFound       = "FOND" // the search found one
	EvReplicate   = "REPL" // replication queued
	EvBadCount    = "BCNT" // devcount was wrong
	EvBadChecksum = "BSUM" // a copy's digest differs from the stored one
	EvNoChecksum  = "NSUM" // checksum was missing and has been stored
	EvMultiSum    = "MSUM" // copies disagree and nothing is stored
	EvBadAlg      = "BALG" // stored checksum uses another algorithm
)

// fsckStallRetry is when a fid that could not be checked (a copy unreachable) is looked at again.
const fsckStallRetry = 60 * time.Second

// errStall means a fid could not be checked now: a copy on a live device did not answer.
var errStall = errors.New("worker: fsck stalled on an unreachable copy")

// fsckPass checks retried fids from the fsck queue, then, while an fsck run is on (server setting
// fsck_host set by fsck_start), the next FsckBatch fids after fsck_highest_fid_checked. Trackers share
// the run through the mgfs:fsck lock and the progress settings.
func (w *Workers) fsckPass(ctx context.Context) (bool, error) {
	jobs, err := w.claim(ctx, w.checks, store.QueueFsck, "fsck")
	if err != nil {
		return false, err
	}
	settings, err := w.checks.Settings(ctx)
	if err != nil {
		return false, fmt.Errorf("settings: %w", err)
	}
	if len(jobs) == 0 && settings["fsck_host"] == "" {
		return false, nil
	}
	v, classes, err := w.loadPlacement(ctx)
	if err != nil {
		return false, err
	}
	for _, j := range jobs {
		err := w.fsckFid(ctx, v, classes, settings, j.Fid)
		switch {
		case errors.Is(err, errStall):
			j.FailCount++
			j.NextTry = w.unix() + int64(fsckStallRetry/time.Second)
			err = w.checks.Retry(ctx, store.QueueFsck, j)
		case err == nil:
			err = w.checks.Done(ctx, store.QueueFsck, j.Fid)
		}
		if err != nil {
			return false, err
		}
	}
	more := len(jobs) == w.cfg.BatchSize
	if settings["fsck_host"] == "" {
		return more, nil
	}
	unlock, err := w.checks.Lock(ctx, "mgfs:fsck", 0)
	if errors.Is(err, store.ErrLocked) {
		return more, nil
	}
	if err != nil {
		return more, err
	}
	defer unlock()
	// Read again under the lock: another tracker may have moved the run on.
	if settings, err = w.checks.Settings(ctx); err != nil {
		return more, err
	}
	if settings["fsck_host"] == "" {
		return more, nil
	}
	highest, _ := strconv.ParseInt(settings["fsck_highest_fid_checked"], 10, 64)
	end, _ := strconv.ParseInt(settings["fsck_fid_at_end"], 10, 64)
	checked, _ := strconv.ParseInt(settings["fsck_fids_checked"], 10, 64)
	files, err := w.checks.ListFids(ctx, highest, w.cfg.FsckBatch)
	if err != nil {
		return more, err
	}
	finished := len(files) < w.cfg.FsckBatch
	for _, f := range files {
		if end > 0 && f.Fid > end {
			finished = true
			break
		}
		if err := w.fsckFid(ctx, v, classes, settings, f.Fid); errors.Is(err, errStall) {
			if err := w.checks.Enqueue(ctx, store.QueueFsck, store.Job{Fid: f.Fid, NextTry: w.unix() + int64(fsckStallRetry/time.Second)}); err != nil {
				return more, err
			}
		} else if err != nil {
			return more, err
		}
		highest = f.Fid
		checked++
		if ctx.Err() != nil {
			break
		}
	}
	if err := w.fsckSumEvents(ctx); err != nil {
		return more, err
	}
	progress := map[string]string{
		"fsck_highest_fid_checked": strconv.FormatInt(highest, 10),
		"fsck_fids_checked":        strconv.FormatInt(checked, 10),
	}
	finished = finished && ctx.Err() == nil
	if finished {
		progress["fsck_host"] = ""
		progress["fsck_stop_time"] = strconv.FormatInt(w.unix(), 10)
	}
	// One transaction, so fsck_status on any tracker never sees a finished run without its totals.
	if err := w.checks.SetSettings(ctx, progress); err != nil {
		return more, err
	}
	if finished {
		w.log.Info("fsck finished", "highest_fid", highest, "checked", checked)
		return more, nil
	}
	return true, nil
}

// fsckMode returns the digest algorithm fsck checks a file with: the server setting fsck_checksum
// (MD5, SHA-1, off), or when unset the class hashtype.
func fsckMode(settings map[string]string, classHash store.Hash) store.Hash {
	v := settings["fsck_checksum"]
	if h, ok := store.ParseHash(v); ok {
		return h
	}
	if v == "off" {
		return store.HashNone
	}
	return classHash
}

// digest returns the digest of fid's copy on devID (node.Client.Digest): n is the length read over
// HTTP, or -1 when the side channel answered.
func (w *Workers) digest(ctx context.Context, v *view, devID int, fid int64, h store.Hash, reason string) (n int64, sum []byte, err error) {
	u, ok := v.url(devID, fid, true)
	if !ok {
		return 0, nil, fmt.Errorf("device %d has no host", devID)
	}
	return w.node.Digest(ctx, u, h, reason)
}

// fsckFid checks one fid (spec 5.9) and repairs what it can: bad copies are forgotten, a lost file is
// searched for on every device, and replication is queued when the policy is not met.
func (w *Workers) fsckFid(ctx context.Context, v *view, classes map[[2]int]classInfo, settings map[string]string, fid int64) error {
	unlock, err := w.checks.Lock(ctx, fidLock(fid), time.Second)
	if errors.Is(err, store.ErrLocked) {
		return errStall
	}
	if err != nil {
		return err
	}
	defer unlock()
	defer w.stats.fsckChecked.Add(1)

	f, err := w.checks.FileByFid(ctx, fid)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	cls := w.classOf(classes, f)
	all, err := w.checks.FileOn(ctx, fid)
	if err != nil {
		return err
	}
	event := func(code string, dev int) error {
		w.stats.fsckEvents.Add(1)
		return w.checks.AddFsckEvent(ctx, store.FsckEvent{UTime: w.unix(), Fid: fid, EvCode: code, DevID: dev})
	}
	nonDead := func(devs []int) []int {
		var out []int
		for _, d := range devs {
			if dev, ok := v.devs[d]; ok && dev.Status != "dead" {
				out = append(out, d)
			}
		}
		return out
	}
	policyMet := func(on []int) bool {
		vd := cls.policy.decide(v, on, cls.minDevCount, nil, w.randFloat).verdict
		return vd == satisfied || vd == tooHappy
	}

	needFix := false
	on := nonDead(all)
	if len(all) == 0 {
		if err := event(EvNoPaths, 0); err != nil {
			return err
		}
		needFix = true
	} else if !policyMet(on) {
		if err := event(EvPolicy, 0); err != nil {
			return err
		}
		needFix = true
	}
	if f.DevCount != len(all) {
		if err := event(EvBadCount, 0); err != nil {
			return err
		}
		// AddFileOn and RemoveFileOn recount devcount; a row that exists (or not) is left as it is.
		if len(all) > 0 {
			err = w.checks.AddFileOn(ctx, fid, all[0])
		} else {
			err = w.checks.RemoveFileOn(ctx, fid, 0)
		}
		if err != nil {
			return err
		}
	}
	var stored *store.Checksum
	if c, err := w.checks.Checksum(ctx, fid); err == nil {
		stored = &c
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if cls.hashType != store.HashNone && stored == nil {
		needFix = true
	}
	policyOnly := settings["fsck_opt_policy_only"] == "1"
	alg := fsckMode(settings, cls.hashType)
	if !policyOnly {
		if alg != store.HashNone {
			needFix = true
		}
		for _, d := range on {
			if needFix {
				break
			}
			if !v.readable(d) {
				return errStall
			}
			u, _ := v.url(d, fid, true)
			n, err := w.node.Size(ctx, u)
			switch {
			case errors.Is(err, node.ErrNotFound) || err == nil && n != f.Length:
				needFix = true
			case err != nil:
				w.noteErr(ctx, v, d, err)
				return errStall
			}
		}
		if needFix {
			if on, err = w.fsckFix(ctx, v, f, on, alg, cls, stored, event); err != nil {
				return err
			}
		}
	}
	if !policyMet(on) && len(on) > 0 {
		if err := w.checks.Enqueue(ctx, store.QueueReplicate, store.Job{Fid: fid, NextTry: w.unix() + 1}); err != nil {
			return err
		}
		w.Kick(JobReplicate)
		return event(EvReplicate, 0)
	}
	return nil
}

// fsckFix checks every copy's length (and digest when alg is set), forgets bad copies, searches all
// devices when none is good, and settles checksums. It returns the copies left.
func (w *Workers) fsckFix(ctx context.Context, v *view, f store.File, on []int, alg store.Hash, cls classInfo,
	stored *store.Checksum, event func(string, int) error) ([]int, error) {
	var good []int
	sums := make(map[int][]byte)
	for _, d := range on {
		if !v.readable(d) {
			return nil, errStall
		}
		u, _ := v.url(d, f.Fid, true)
		n, err := w.node.Size(ctx, u)
		var sum []byte
		if err == nil && n == f.Length && alg != store.HashNone {
			var m int64
			if m, sum, err = w.digest(ctx, v, d, f.Fid, alg, "fsck"); m >= 0 {
				n = m
			}
		}
		switch {
		case errors.Is(err, node.ErrNotFound):
			if err := event(EvMissing, d); err != nil {
				return nil, err
			}
		case err != nil:
			w.noteErr(ctx, v, d, err)
			return nil, errStall
		case n != f.Length:
			if err := event(EvBadLength, d); err != nil {
				return nil, err
			}
		default:
			good = append(good, d)
			sums[d] = sum
			continue
		}
		if err := w.checks.RemoveFileOn(ctx, f.Fid, d); err != nil {
			return nil, err
		}
	}
	if len(good) == 0 {
		if err := event(EvSearch, 0); err != nil {
			return nil, err
		}
		for id, dev := range v.devs {
			if dev.Status == "dead" || !v.readable(id) {
				continue
			}
			u, _ := v.url(id, f.Fid, true)
			n, err := w.node.Size(ctx, u)
			if err != nil || n != f.Length {
				w.noteErr(ctx, v, id, err)
				continue
			}
			var sum []byte
			if alg != store.HashNone {
				if _, sum, err = w.digest(ctx, v, id, f.Fid, alg, "fsck"); err != nil {
					continue
				}
			}
			if err := w.checks.AddFileOn(ctx, f.Fid, id); err != nil {
				return nil, err
			}
			if err := event(EvFound, id); err != nil {
				return nil, err
			}
			good = append(good, id)
			sums[id] = sum
		}
		if len(good) == 0 {
			return nil, event(EvGone, 0)
		}
	}
	if alg == store.HashNone {
		return good, nil
	}
	if stored != nil && stored.Type != alg {
		return good, event(EvBadAlg, 0)
	}
	groups := make(map[string][]int)
	for _, d := range good {
		k := hex.EncodeToString(sums[d])
		groups[k] = append(groups[k], d)
	}
	if stored != nil {
		match := groups[hex.EncodeToString(stored.Sum)]
		if len(match) == 0 {
			// No copy matches what was stored; keep them all for an operator to judge.
			return good, event(EvBadChecksum, 0)
		}
		if len(match) == len(good) {
			return good, nil
		}
		for _, d := range good {
			if hex.EncodeToString(sums[d]) == hex.EncodeToString(stored.Sum) {
				continue
			}
			if err := event(EvBadChecksum, d); err != nil {
				return nil, err
			}
			if err := w.checks.RemoveFileOn(ctx, f.Fid, d); err != nil {
				return nil, err
			}
		}
		return match, nil
	}
	if len(groups) > 1 {
		code := EvBadChecksum
		if cls.hashType == store.HashNone {
			code = EvMultiSum
		}
		return good, event(code, 0)
	}
	if cls.hashType == alg {
		if err := w.checks.SetChecksum(ctx, store.Checksum{Fid: f.Fid, Type: alg, Sum: sums[good[0]]}); err != nil {
			return nil, err
		}
		return good, event(EvNoChecksum, 0)
	}
	return good, nil
}

// fsckSumEvents adds the fsck_log rows written since fsck_logid_processed to the per-code totals
// fsck_sum_evcount_<CODE> that fsck_status reports, as the Perl job master does. The caller holds
// the mgfs:fsck lock.
func (w *Workers) fsckSumEvents(ctx context.Context) error {
	settings, err := w.checks.Settings(ctx)
	if err != nil {
		return err
	}
	after, _ := strconv.ParseInt(settings["fsck_logid_processed"], 10, 64)
	counts := make(map[string]int64)
	last := after
	for {
		evs, err := w.checks.FsckEvents(ctx, last, 1000)
		if err != nil {
			return err
		}
		for _, e := range evs {
			counts[e.EvCode]++
			last = e.LogID
		}
		if len(evs) < 1000 {
			break
		}
	}
	if last == after {
		return nil
	}
	kv := map[string]string{"fsck_logid_processed": strconv.FormatInt(last, 10)}
	for code, n := range counts {
		key := "fsck_sum_evcount_" + code
		old, _ := strconv.ParseInt(settings[key], 10, 64)
		kv[key] = strconv.FormatInt(old+n, 10)
	}
	// The totals and the point they count up to move together, or a crash in between would count
	// events twice.
	return w.checks.SetSettings(ctx, kv)
}
