package worker

// Tests of the rules that keep the workers from destroying good bytes too early or too late: the
// delete worker leaves live files alone and retries copies it could not delete, a surplus copy goes
// only after another copy is confirmed intact, and fsck does not take an unreachable copy for a
// missing one.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/store"
)

// A delete row whose fid is a live file (a stale-upload row for an upload that was committed after
// all) must not cost the file a byte: docs/workers.md, Deletion.
func TestDeleteLeavesLiveFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	w := h.run(testConfig(), nil)
	data := []byte("a live file with a stray delete row")
	f := h.replicated(w, "live", "c2", data, 1)
	ctx := context.Background()
	waitFor(t, "replication row done", func() bool { return h.queueEmpty(store.QueueReplicate) })
	if err := h.st.Enqueue(ctx, store.QueueDelete, store.Job{Fid: f.Fid}); err != nil {
		t.Fatalf("Enqueue(delete, %d): %v", f.Fid, err)
	}
	w.Kick(JobDelete)
	waitFor(t, "delete row settled", func() bool { return h.queueEmpty(store.QueueDelete) })

	if on := h.fileOn(f.Fid); !reflect.DeepEqual(on, []int{1, 2}) {
		t.Fatalf("FileOn(%d) = %v, want [1 2]: a live file's copies are not the delete worker's", f.Fid, on)
	}
	for _, dev := range []int{1, 2} {
		if got := h.readFile(dev, f.Fid); !bytes.Equal(got, data) {
			t.Fatalf("dev%d holds %q on disk, want %q", dev, got, data)
		}
		if got := h.get(dev, f.Fid); !bytes.Equal(got, data) {
			t.Fatalf("GET of dev%d's copy = %q, want %q", dev, got, data)
		}
	}
	if got, err := h.st.FileByFid(ctx, f.Fid); err != nil || got.DevCount != 2 {
		t.Fatalf("FileByFid(%d) = %+v, %v; want the file with devcount 2", f.Fid, got, err)
	}
	if s := w.Stats(); s.DeletedCopies != 0 || s.DeleteDone != 0 {
		t.Fatalf("Stats() deleted_copies %d, delete_done %d; want 0 and 0", s.DeletedCopies, s.DeleteDone)
	}
}

// pinRandN makes every random choice of the workers its first option (randN returns 0), so the
// surplus copy removeSurplus picks is fixed.
func pinRandN(w *Workers) { w.randN = func(int) int { return 0 } }

// A file with three copies where it wants two, only one of them intact (another missing, the third
// truncated), keeps its intact copy: a surplus copy is removed only after another copy is confirmed
// intact (docs/workers.md, Replication). The intact copy takes each place in turn, so that whichever
// copy the (pinned) choice of victim falls on, one case offers the intact one.
func TestReplicateSurplusKeepsIntactCopy(t *testing.T) {
	t.Parallel()
	data := []byte("three copies, two wanted, one good")
	for intact := 1; intact <= 3; intact++ {
		t.Run("intact dev"+strconv.Itoa(intact), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, 3, 1)
			f := h.upload("happy", "c2", data, 1)
			h.addCopies(f.Fid, data, 2, 3)
			var damaged []int
			for dev := 1; dev <= 3; dev++ {
				if dev != intact {
					damaged = append(damaged, dev)
				}
			}
			missing, truncated := damaged[0], damaged[1]
			if err := os.Remove(h.filePath(missing, f.Fid)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(h.filePath(truncated, f.Fid), data[:7], 0o644); err != nil {
				t.Fatal(err)
			}

			w := h.runPinned(h.st, testConfig(), nil, pinRandN)
			w.Kick(JobReplicate)
			// Either a damaged copy went (the intact one confirmed it could) and the row is done,
			// or the victim was the intact copy, nothing confirmed, and the row is retried.
			waitFor(t, "replication row settled", func() bool { return h.rowSettled(store.QueueReplicate, f.Fid) })
			if on := h.fileOn(f.Fid); !slices.Contains(on, intact) {
				t.Fatalf("FileOn(%d) = %v, want it to keep dev%d, the only intact copy", f.Fid, on, intact)
			}
			if got := h.readFile(intact, f.Fid); !bytes.Equal(got, data) {
				t.Fatalf("intact copy on dev%d holds %q on disk, want %q", intact, got, data)
			}
			if got := h.get(intact, f.Fid); !bytes.Equal(got, data) {
				t.Fatalf("GET of dev%d's copy = %q, want %q", intact, got, data)
			}
			if n := w.Stats().SurplusRemoved; n > 1 {
				t.Fatalf("Stats().SurplusRemoved = %d, want at most 1", n)
			}
		})
	}
}

// Of three copies, two on one host and one on another, the surplus copy removed is one of the two
// that share a host (docs/workers.md, Replication): the file ends on both hosts, with no new copy.
func TestReplicateSurplusFromSharedHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 2) // dev1, dev2 on the first host; dev3, dev4 on the second
	data := []byte("two copies on one host, one on the other")
	f := h.upload("shared", "c2", data, 1)
	h.addCopies(f.Fid, data, 2, 3)
	// With every choice pinned to its first option, a victim picked without the host rule is dev3:
	// the case must fail when that rule is lost.
	w := h.runPinned(h.st, testConfig(), nil, pinRandN)
	w.Kick(JobReplicate)
	waitFor(t, "replication row settled", func() bool { return h.rowSettled(store.QueueReplicate, f.Fid) })
	on := h.fileOn(f.Fid)
	if len(on) != 2 || on[1] != 3 || on[0] != 1 && on[0] != 2 {
		t.Fatalf("FileOn(%d) = %v, want dev3 and one of dev1, dev2", f.Fid, on)
	}
	gone := 3 - on[0] // the other of dev1, dev2
	for _, dev := range on {
		if got := h.readFile(dev, f.Fid); !bytes.Equal(got, data) {
			t.Fatalf("kept copy on dev%d holds %q, want %q", dev, got, data)
		}
	}
	if got := h.readFile(gone, f.Fid); got != nil {
		t.Fatalf("removed copy on dev%d still on disk: %q", gone, got)
	}
	if s := w.Stats(); s.SurplusRemoved != 1 || s.Replicated != 0 {
		t.Fatalf("Stats() surplus_removed %d, replicated %d; want 1 and 0", s.SurplusRemoved, s.Replicated)
	}
	if _, err := h.st.QueueJobs(context.Background(), store.QueueReplicate, f.Fid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("QueueJobs(replicate, %d) = %v, want the row done", f.Fid, err)
	}
}

// A copy on a node that does not answer stalls fsck for that file: no MISS or GONE, its copies are
// kept, and the fid goes on the fsck queue for a minute later, when it is checked again
// (docs/workers.md, fsck).
func TestFsckStallsOnUnreachableCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	var skew atomic.Int64 // added to the workers' clock
	w := h.runPinned(h.st, testConfig(), nil, func(w *Workers) {
		w.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	data := []byte("on a node that is down during fsck")
	f := h.replicated(w, "stall", "c2", data, 1)
	ctx := context.Background()
	waitFor(t, "replication row done", func() bool { return h.queueEmpty(store.QueueReplicate) })

	h.stopNode(1, true)
	if err := w.MonitorRound(ctx); err != nil {
		t.Fatal(err)
	}
	if o, ok := w.Observed(2); !ok || o.Reachable {
		t.Fatalf("Observed(2) = %+v, %v after its node stopped; want unreachable", o, ok)
	}
	before := time.Now().Unix()
	h.startFsck()
	w.Kick(JobFsck)
	h.waitFsck()
	after := time.Now().Unix()

	if _, codes := h.fsckEvents(); len(codes) != 0 {
		t.Fatalf("fsck events = %v, want none: an unreachable copy is neither MISS nor GONE", codes)
	}
	if on := h.fileOn(f.Fid); !reflect.DeepEqual(on, []int{1, 2}) {
		t.Fatalf("FileOn(%d) = %v, want [1 2] kept", f.Fid, on)
	}
	j, err := h.st.QueueJobs(ctx, store.QueueFsck, f.Fid)
	if err != nil || j.NextTry < before+60 || j.NextTry > after+60 {
		t.Fatalf("QueueJobs(fsck, %d) = %+v, %v; want a row due 60s after the check (%d..%d)", f.Fid, j, err, before+60, after+60)
	}
	if got := h.readFile(2, f.Fid); !bytes.Equal(got, data) {
		t.Fatalf("dev2 holds %q on disk, want %q", got, data)
	}

	// A minute later, with the node back, the queued fid is checked again and passes.
	h.startNode(1)
	if err := w.MonitorRound(ctx); err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(61 * time.Second))
	checked := w.Stats().FsckChecked
	w.Kick(JobFsck)
	waitFor(t, "stalled fid checked again", func() bool { return h.queueEmpty(store.QueueFsck) })
	if got := w.Stats().FsckChecked; got != checked+1 {
		t.Fatalf("Stats().FsckChecked = %d, want %d: one more check of the queued fid", got, checked+1)
	}
	if _, codes := h.fsckEvents(); len(codes) != 0 {
		t.Fatalf("fsck events after the recheck = %v, want none", codes)
	}
	if on := h.fileOn(f.Fid); !reflect.DeepEqual(on, []int{1, 2}) {
		t.Fatalf("FileOn(%d) = %v after the recheck, want [1 2]", f.Fid, on)
	}
}

// failDeletes fronts storage node i (front) with a proxy that answers every DELETE of a .fid file
// with 500 while fail is set, and counts them.
func (h *harness) failDeletes(i int, fail *atomic.Bool, deletes *atomic.Int64) {
	h.t.Helper()
	h.front(i, func(node http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, ".fid") {
				deletes.Add(1)
				if fail.Load() {
					http.Error(rw, "disk on fire", http.StatusInternalServerError)
					return
				}
			}
			node.ServeHTTP(rw, r)
		})
	})
}

// front puts a proxy on storage node i's address, in front of the node, and points the node's host
// at it: every request to the node goes through the handler wrap returns, which passes what it
// does not answer itself to node.
func (h *harness) front(i int, wrap func(node http.Handler) http.Handler) {
	h.t.Helper()
	n := h.nodes[i]
	target, err := url.Parse("http://" + net.JoinHostPort(n.ip, strconv.Itoa(n.port)))
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(wrap(httputil.NewSingleHostReverseProxy(target)))
	ln, err := net.Listen("tcp", net.JoinHostPort(n.ip, "0"))
	if err != nil {
		h.t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	h.t.Cleanup(srv.Close)
	ctx := context.Background()
	hosts, err := h.st.Hosts(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, host := range hosts {
		if host.ID == n.hostID {
			host.HTTPPort = ln.Addr().(*net.TCPAddr).Port
			if err := h.st.UpdateHost(ctx, host); err != nil {
				h.t.Fatalf("UpdateHost: %v", err)
			}
			return
		}
	}
	h.t.Fatalf("no host %d", n.hostID)
}

// A copy whose DELETE gets another answer than 2xx or 404 (here 500) is kept and the file retried
// in 30 min × attempts; once the node deletes it the file is forgotten (docs/workers.md, Deletion).
func TestDeleteRetriesFailedDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	data := []byte("the node cannot delete me yet")
	f := h.upload("stubborn", "c2", data, 1)
	h.addCopies(f.Fid, data, 2)
	ctx := context.Background()
	var fail atomic.Bool
	var deletes atomic.Int64
	fail.Store(true)
	h.failDeletes(1, &fail, &deletes)
	var skew atomic.Int64 // added to the workers' clock
	now := func() int64 { return time.Now().Add(time.Duration(skew.Load())).Unix() }
	w := h.runPinned(h.st, testConfig(), nil, func(w *Workers) {
		w.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	if o, ok := w.Observed(2); !ok || !o.Writable {
		t.Fatalf("Observed(2) = %+v, %v through the proxy; want writable", o, ok)
	}
	if _, err := h.st.DeleteFile(ctx, h.dmid, "stubborn"); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}

	for attempt := int64(1); attempt <= 2; attempt++ {
		before := now()
		w.Kick(JobDelete)
		waitFor(t, "delete attempt "+strconv.FormatInt(attempt, 10)+" settled", func() bool {
			j, err := h.st.QueueJobs(ctx, store.QueueDelete, f.Fid)
			return errors.Is(err, store.ErrNotFound) || err == nil && int64(j.FailCount) == attempt
		})
		after := now()
		j, err := h.st.QueueJobs(ctx, store.QueueDelete, f.Fid)
		if lo, hi := before+1800*attempt, after+1800*attempt; err != nil || j.NextTry < lo || j.NextTry > hi {
			t.Fatalf("after failure %d: delete row = %+v, %v; want nexttry %d..%d (30 min × %d)", attempt, j, err, lo, hi, attempt)
		}
		if on := h.fileOn(f.Fid); !reflect.DeepEqual(on, []int{2}) {
			t.Fatalf("after failure %d: FileOn(%d) = %v, want [2]: dev1's copy deleted, dev2's kept", attempt, f.Fid, on)
		}
		if got := h.readFile(2, f.Fid); !bytes.Equal(got, data) {
			t.Fatalf("after failure %d: dev2 holds %q, want %q", attempt, got, data)
		}
		if n := deletes.Load(); n != attempt {
			t.Fatalf("after failure %d: dev2's node got %d DELETEs, want %d", attempt, n, attempt)
		}
		skew.Store(skew.Load() + int64(1800*attempt+1)*int64(time.Second))
	}
	if h.readFile(1, f.Fid) != nil {
		t.Fatalf("dev1's copy still on disk")
	}

	fail.Store(false)
	w.Kick(JobDelete)
	waitFor(t, "file forgotten", func() bool { return h.queueEmpty(store.QueueDelete) })
	if on := h.fileOn(f.Fid); len(on) != 0 {
		t.Fatalf("FileOn(%d) = %v, want none", f.Fid, on)
	}
	if got := h.readFile(2, f.Fid); got != nil {
		t.Fatalf("dev2 still holds %q", got)
	}
}

// The copy on a dead device is dropped without a request to its node; the file is then forgotten
// (docs/workers.md, Deletion).
func TestDeleteDropsDeadDeviceCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	data := []byte("one copy on a dead device")
	f := h.upload("dead", "c2", data, 1)
	h.addCopies(f.Fid, data, 2)
	ctx := context.Background()
	h.setDevice(2, "dead")
	cfg := testConfig()
	cfg.ReapDelay = conf.Duration(time.Hour) // the reaper must not drop the copy first
	w := h.run(cfg, nil)
	if _, err := h.st.DeleteFile(ctx, h.dmid, "dead"); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	w.Kick(JobDelete)
	waitFor(t, "delete row settled", func() bool { return h.rowSettled(store.QueueDelete, f.Fid) })
	if _, err := h.st.QueueJobs(ctx, store.QueueDelete, f.Fid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("QueueJobs(delete, %d) = %v, want the row done", f.Fid, err)
	}
	if on := h.fileOn(f.Fid); len(on) != 0 {
		t.Fatalf("FileOn(%d) = %v, want none", f.Fid, on)
	}
	if n := h.node(1).Stats().Deletes; n != 0 {
		t.Fatalf("the dead device's node got %d DELETEs, want 0", n)
	}
	if got := h.readFile(2, f.Fid); !bytes.Equal(got, data) {
		t.Fatalf("dead dev2 holds %q, want its bytes untouched (no request sent)", got)
	}
	if h.readFile(1, f.Fid) != nil {
		t.Fatalf("dev1's copy still on disk")
	}
	if s := w.Stats(); s.DeletedCopies != 1 || s.DeleteDone != 1 {
		t.Fatalf("Stats() deleted_copies %d, delete_done %d; want 1 (dev1) and 1", s.DeletedCopies, s.DeleteDone)
	}
}
