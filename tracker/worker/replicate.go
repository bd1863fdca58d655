package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// replicaRecorder is what the replicate worker asks of the store.
type replicaRecorder interface {
	store.Locker
	jobClaimer
	copyLister
	Classes(ctx context.Context) ([]store.Class, error)
	AddFileOn(ctx context.Context, fid int64, devID int) error
	RemoveFileOn(ctx context.Context, fid int64, devID int) error
	Checksum(ctx context.Context, fid int64) (store.Checksum, error)
	SetChecksum(ctx context.Context, c store.Checksum) error
}

// replBackoff is the retry delay after the n-th failure (spec 5.5); the last entry repeats.
var replBackoff = [...]time.Duration{
	15 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 24 * time.Hour,
}

// lockBusyRetry is when a fid whose lock another tracker holds is looked at again.
const lockBusyRetry = 2 * time.Second

func fidLock(fid int64) string { return "mgfs:fid:" + strconv.FormatInt(fid, 10) + ":replicate" }

// retryLockBusy puts j back on q for another look after lockBusyRetry, without counting a failure:
// another tracker holds the fid's lock and works on it.
func (w *Workers) retryLockBusy(ctx context.Context, q store.Queue, j store.Job) error {
	w.stats.lockBusy.Add(1)
	j.NextTry = w.unix() + int64(lockBusyRetry/time.Second)
	return w.replicas.Retry(ctx, q, j)
}

// classInfo is what replication needs of a file's class.
type classInfo struct {
	minDevCount int
	hashType    store.Hash
	policy      policy
}

func (w *Workers) loadClasses(ctx context.Context) (map[[2]int]classInfo, error) {
	cs, err := w.replicas.Classes(ctx)
	if err != nil {
		return nil, fmt.Errorf("load classes: %w", err)
	}
	m := make(map[[2]int]classInfo, len(cs))
	for _, c := range cs {
		p, err := parsePolicy(c.ReplPolicy)
		if err != nil {
			w.log.Warn("class replication policy ignored; using MultipleHosts()", "domain", c.DomainID, "class", c.Name, "err", err)
		}
		m[[2]int{c.DomainID, c.ID}] = classInfo{minDevCount: c.MinDevCount, hashType: c.HashType, policy: p}
	}
	return m, nil
}

// loadPlacement loads what choosing and checking copies needs: the cluster view and the classes.
func (w *Workers) loadPlacement(ctx context.Context) (*view, map[[2]int]classInfo, error) {
	v, err := w.loadView(ctx)
	if err != nil {
		return nil, nil, err
	}
	classes, err := w.loadClasses(ctx)
	return v, classes, err
}

func (w *Workers) classOf(classes map[[2]int]classInfo, f store.File) classInfo {
	if c, ok := classes[[2]int{f.DomainID, f.ClassID}]; ok {
		if c.minDevCount < 1 {
			c.minDevCount = 1
		}
		return c
	}
	return classInfo{minDevCount: w.cfg.DefaultMinDevCount}
}

// replicatePass claims due replication rows and works on them with ReplicateWorkers goroutines.
func (w *Workers) replicatePass(ctx context.Context) (bool, error) {
	jobs, err := w.claim(ctx, w.replicas, store.QueueReplicate, "replication")
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	w.stats.claimedReplicates.Add(uint64(len(jobs)))
	v, classes, err := w.loadPlacement(ctx)
	if err != nil {
		return false, err
	}
	w.fanOut(ctx, store.QueueReplicate, jobs, w.cfg.ReplicateWorkers, "replicate", func(ctx context.Context, j store.Job) error {
		return w.replicateFid(ctx, v, classes, j)
	})
	return len(jobs) == w.cfg.BatchSize, ctx.Err()
}

// fanOut runs work on each claimed job of q, at most n at once, and logs its errors under what. A job
// not started, or cut short, because ctx is done goes back on q at once rather than after its lease.
func (w *Workers) fanOut(ctx context.Context, q store.Queue, jobs []store.Job, n int, what string, work func(context.Context, store.Job) error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, j := range jobs {
		g.Go(func() error {
			if gctx.Err() != nil {
				w.release(ctx, q, j)
				return nil
			}
			err := work(gctx, j)
			switch {
			case err == nil:
			case gctx.Err() != nil:
				// Stopping: the row may still be leased; give it back rather than wait out the lease.
				w.release(ctx, q, j)
			default:
				w.log.Warn(what, "fid", j.Fid, "err", err)
			}
			return nil
		})
	}
	g.Wait()
}

// retryReplicate reschedules j on the replication queue with the failure backoff.
func (w *Workers) retryReplicate(ctx context.Context, j store.Job, why error) error {
	w.stats.replicateRetries.Add(1)
	return w.retryQueue(ctx, store.QueueReplicate, j, why)
}

// replicateFid brings one fid to its policy (spec 5.5) and settles its queue row.
func (w *Workers) replicateFid(ctx context.Context, v *view, classes map[[2]int]classInfo, j store.Job) error {
	unlock, err := w.replicas.Lock(ctx, fidLock(j.Fid), time.Second)
	if errors.Is(err, store.ErrLocked) {
		return w.retryLockBusy(ctx, store.QueueReplicate, j)
	}
	if err != nil {
		return w.retryReplicate(ctx, j, fmt.Errorf("lock: %w", err))
	}
	defer unlock()

	f, err := w.replicas.FileByFid(ctx, j.Fid)
	if errors.Is(err, store.ErrNotFound) {
		return w.replicas.Done(ctx, store.QueueReplicate, j.Fid) // deleted meanwhile
	}
	if err != nil {
		return w.retryReplicate(ctx, j, err)
	}
	cls := w.classOf(classes, f)
	all, err := w.replicas.FileOn(ctx, f.Fid)
	if err != nil {
		return w.retryReplicate(ctx, j, err)
	}
	var on []int // known, not dead: what the policy counts
	known := 0
	for _, d := range all {
		dev, ok := v.devs[d]
		if !ok {
			continue
		}
		known++
		if dev.Status != "dead" {
			on = append(on, d)
		}
	}
	if known == 0 {
		// no_source: nothing left to copy from. Park the row for an operator (spec 5.5, 8.3 #44).
		w.stats.replicateParked.Add(1)
		j.NextTry = store.NeverRetry
		j.FailCount++
		if err := w.replicas.Retry(ctx, store.QueueReplicate, j); err != nil {
			return err
		}
		return fmt.Errorf("fid %d has no copies left (no_source); parked", f.Fid)
	}

	var stored *store.Checksum
	if c, err := w.replicas.Checksum(ctx, f.Fid); err == nil {
		stored = &c
	} else if !errors.Is(err, store.ErrNotFound) {
		return w.retryReplicate(ctx, j, err)
	}
	hashType := cls.hashType
	if stored != nil {
		hashType = stored.Type
	}

	failedDst := make(map[int]bool)
	badSrc := make(map[int]bool)
	for range len(v.devs) + 4 {
		d := cls.policy.decide(v, on, cls.minDevCount, failedDst, w.randFloat)
		switch d.verdict {
		case satisfied:
			w.stats.replicateDone.Add(1)
			return w.replicas.Done(ctx, store.QueueReplicate, f.Fid)
		case tempFail:
			return w.retryReplicate(ctx, j, fmt.Errorf("fid %d: no destination can take a copy now", f.Fid))
		case tooHappy:
			dev, err := w.removeSurplus(ctx, v, f, on)
			if err != nil {
				return w.retryReplicate(ctx, j, fmt.Errorf("fid %d: remove surplus copy: %w", f.Fid, err))
			}
			on = without(on, dev)
			continue
		}
		dst := 0
		if len(d.ideal) > 0 {
			dst = d.ideal[0]
		} else {
			dst = d.desperate[0]
		}
		src, ok := w.pickSource(v, on, badSrc, j.FromDevID)
		if !ok {
			return w.retryReplicate(ctx, j, fmt.Errorf("fid %d: no readable source (source_down)", f.Fid))
		}
		sum, err := w.copyReplica(ctx, v, f, src, dst, hashType, stored)
		if err != nil {
			w.stats.copyErrors.Add(1)
			var ce *node.CopyError
			if errors.As(err, &ce) && ce.Source {
				badSrc[src] = true
				w.noteErr(ctx, v, src, err)
			} else {
				failedDst[dst] = true
				w.noteErr(ctx, v, dst, err)
			}
			w.log.Info("replicate: copy failed", "fid", f.Fid, "from", src, "to", dst, "err", err)
			continue
		}
		// The checksum goes in before the copy is recorded, so a reader who sees the copy sees it too.
		if stored == nil && cls.hashType != store.HashNone && sum != nil {
			c := store.Checksum{Fid: f.Fid, Type: cls.hashType, Sum: sum}
			if err := w.replicas.SetChecksum(ctx, c); err != nil {
				w.log.Warn("replicate: store checksum", "fid", f.Fid, "err", err)
			} else {
				stored = &c
			}
		}
		if err := w.replicas.AddFileOn(ctx, f.Fid, dst); err != nil {
			return w.retryReplicate(ctx, j, fmt.Errorf("fid %d: record copy on dev%d: %w", f.Fid, dst, err))
		}
		w.stats.replicated.Add(1)
		w.stats.replicatedBytes.Add(uint64(f.Length))
		on = append(on, dst)
	}
	return w.retryReplicate(ctx, j, fmt.Errorf("fid %d: gave up after too many attempts", f.Fid))
}

func without(s []int, x int) []int {
	out := s[:0:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// pickSource returns a readable copy not yet found bad, preferring the job's fromdevid.
func (w *Workers) pickSource(v *view, on []int, bad map[int]bool, prefer int) (int, bool) {
	var ok []int
	for _, d := range on {
		if !bad[d] && v.readable(d) {
			if d == prefer {
				return d, true
			}
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return 0, false
	}
	return ok[w.randN(len(ok))], true
}

// copyReplica copies f from src to dst and checks the result: the destination must hold exactly the
// file's length, and when a digest is known or needed, the right digest. It returns the digest of the
// streamed bytes when hashType is set. Errors are *node.CopyError, so the caller knows whom to blame.
func (w *Workers) copyReplica(ctx context.Context, v *view, f store.File, src, dst int, hashType store.Hash, stored *store.Checksum) ([]byte, error) {
	srcURL, ok1 := v.url(src, f.Fid, false)
	dstURL, ok2 := v.url(dst, f.Fid, false)
	if !ok1 || !ok2 {
		return nil, &node.CopyError{Source: !ok1, Err: errors.New("device has no host")}
	}
	var contentMD5 []byte
	if stored != nil && stored.Type == store.HashMD5 {
		contentMD5 = stored.Sum
	}
	sum, err := w.node.Copy(ctx, srcURL, dstURL, f.Length, hashType, contentMD5)
	if err != nil {
		return nil, err
	}
	if stored != nil && sum != nil && !bytes.Equal(sum, stored.Sum) {
		// The source served bytes that do not match the stored checksum: do not keep what was written.
		if err := w.node.Delete(ctx, dstURL); err != nil {
			w.log.Warn("replicate: remove bad copy", "url", dstURL, "err", err)
		}
		return nil, &node.CopyError{Source: true, Err: fmt.Errorf("source digest %x does not match stored %s %x", sum, stored.Type, stored.Sum)}
	}
	size, err := w.node.Size(ctx, dstURL)
	if err != nil {
		return nil, &node.CopyError{Source: false, Err: fmt.Errorf("verify: %w", err)}
	}
	if size != f.Length {
		return nil, &node.CopyError{Source: false, Err: fmt.Errorf("verify: HEAD %s: size %d, want %d", dstURL, size, f.Length)}
	}
	// A node that verifies Content-MD5 has already checked the bytes it kept.
	trusted := contentMD5 != nil && v.obs[dst].RejectBadMD5
	if sum != nil && !trusted {
		n, got, err := w.digest(ctx, v, dst, f.Fid, hashType, "")
		if err != nil {
			return nil, &node.CopyError{Source: false, Err: fmt.Errorf("verify digest: %w", err)}
		}
		if n >= 0 && n != f.Length || !bytes.Equal(got, sum) {
			return nil, &node.CopyError{Source: false, Err: fmt.Errorf("verify digest: destination holds other bytes")}
		}
	}
	return sum, nil
}

// removeSurplus deletes one copy of an over-replicated fid (spec 5.5 "too happy"). It prefers a copy on
// a host that holds another one, then a drain device, and only deletes after another copy is confirmed
// to have the right size.
func (w *Workers) removeSurplus(ctx context.Context, v *view, f store.File, on []int) (int, error) {
	perHost := make(map[int]int)
	for _, d := range on {
		perHost[v.devs[d].HostID]++
	}
	victim, best := 0, -1
	for _, d := range on {
		if !v.readable(d) || !v.canDelete(d) {
			continue
		}
		score := 0
		if perHost[v.devs[d].HostID] > 1 {
			score += 2
		}
		if v.devs[d].Status == "drain" {
			score++
		}
		if score > best || score == best && w.randN(2) == 0 {
			victim, best = d, score
		}
	}
	if best < 0 {
		return 0, errors.New("no copy can be deleted now")
	}
	confirmed := false
	for _, d := range on {
		if d == victim || !v.readable(d) {
			continue
		}
		u, _ := v.url(d, f.Fid, true)
		n, err := w.node.Size(ctx, u)
		if err == nil && n == f.Length {
			confirmed = true
			break
		}
		w.noteErr(ctx, v, d, err)
	}
	if !confirmed {
		return 0, errors.New("no other copy confirmed")
	}
	u, _ := v.url(victim, f.Fid, false)
	if err := w.node.Delete(ctx, u); err != nil {
		return 0, err
	}
	if err := w.replicas.RemoveFileOn(ctx, f.Fid, victim); err != nil {
		return 0, err
	}
	w.stats.surplusRemoved.Add(1)
	return victim, nil
}
