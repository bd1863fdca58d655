package worker

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
)

func TestMonitorObservesNodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	var obs observations
	w := h.run(testConfig(), &obs)
	for _, dev := range []int{1, 2} {
		o, ok := obs.get(dev)
		if !ok || !o.Reachable || !o.Writable || o.MBTotal <= 0 || o.At.IsZero() {
			t.Fatalf("Observe(dev%d) = %+v (seen %v), want reachable and writable with usage", dev, o, ok)
		}
	}
	ctx := context.Background()
	waitFor(t, "usage written to the store", func() bool {
		devs, err := h.st.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if d.MBTotal <= 0 || d.MBAsOf == 0 {
				return false
			}
		}
		return true
	})

	h.stopNode(1, true)
	waitFor(t, "dev2 observed unreachable", func() bool {
		o, _ := obs.get(2)
		return !o.Reachable && !o.Writable && o.Err != ""
	})
	if o, _ := obs.get(1); !o.Writable {
		t.Fatalf("Observe(dev1) = %+v after node 2 died, want writable", o)
	}
	if o, ok := w.Observed(2); !ok || o.Reachable {
		t.Fatalf("Observed(2) = %+v, %v; want unreachable", o, ok)
	}

	h.startNode(1)
	if err := w.MonitorRound(ctx); err != nil {
		t.Fatalf("MonitorRound: %v", err)
	}
	if o, _ := obs.get(2); !o.Writable {
		t.Fatalf("Observe(dev2) = %+v after restart and a forced round, want writable", o)
	}
	if w.Stats().MonitorRounds < 2 {
		t.Fatalf("Stats().MonitorRounds = %d, want >= 2", w.Stats().MonitorRounds)
	}
	jobs := w.Jobs()
	if jobs[JobMonitor].Count != 1 || jobs[JobReplicate].Desired != DefaultReplicateWorkers || jobs[JobReplicate].Count != DefaultReplicateWorkers {
		t.Fatalf("Jobs() = %+v, want one running monitor and %d desired replicators", jobs, DefaultReplicateWorkers)
	}
}

func TestMonitorReadonlyDeviceNotWritable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, 2)
	h.setDevice(2, "readonly")
	var obs observations
	h.run(testConfig(), &obs)
	if o, _ := obs.get(2); !o.Reachable || o.Writable {
		t.Fatalf("Observe(readonly dev2) = %+v, want reachable, not writable", o)
	}
	if o, _ := obs.get(1); !o.Writable {
		t.Fatalf("Observe(dev1) = %+v, want writable", o)
	}
}

func TestReplicateToDistinctHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, 1)
	w := h.run(testConfig(), nil)
	data := bytes.Repeat([]byte("mogway replication "), 5000)
	f := h.replicated(w, "k", "c2", data, 1)
	on := h.fileOn(f.Fid)
	if on[0] != 1 || h.hostOf(on[0]) == h.hostOf(on[1]) {
		t.Fatalf("FileOn(%d) = %v, want dev1 and a device on another host", f.Fid, on)
	}
	if got := h.readFile(on[1], f.Fid); !bytes.Equal(got, data) {
		t.Fatalf("replica on dev%d holds %d bytes, want the %d uploaded bytes", on[1], len(got), len(data))
	}
	ctx := context.Background()
	waitFor(t, "replication row done", func() bool { return h.queueEmpty(store.QueueReplicate) })
	got, err := h.st.FileByFid(ctx, f.Fid)
	if err != nil || got.DevCount != 2 {
		t.Fatalf("FileByFid(%d) = %+v, %v; want devcount 2", f.Fid, got, err)
	}
	if s := w.Stats(); s.Replicated != 1 || s.ReplicateDone != 1 {
		t.Fatalf("Stats() = %+v, want one copy and one fid done", s)
	}
}

func TestReplicateStoresChecksum(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	w := h.run(testConfig(), nil)
	data := []byte("checksummed content")
	f := h.replicated(w, "sum", "c2md5", data, 2)
	c, err := h.st.Checksum(context.Background(), f.Fid)
	want := md5.Sum(data)
	if err != nil || c.Type != 1 || !bytes.Equal(c.Sum, want[:]) {
		t.Fatalf("Checksum(%d) = %+v, %v; want MD5 %x", f.Fid, c, err, want)
	}
	if got := h.readFile(1, f.Fid); !bytes.Equal(got, data) {
		t.Fatalf("replica = %q, want %q", got, data)
	}
}

func TestReplicateBadSourceChecksum(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	data := []byte("the right bytes")
	f := h.upload("bad", "c2md5", data, 1)
	wrong := md5.Sum([]byte("other bytes"))
	ctx := context.Background()
	if err := h.st.SetChecksum(ctx, store.Checksum{Fid: f.Fid, Type: 1, Sum: wrong[:]}); err != nil {
		t.Fatal(err)
	}
	w := h.run(testConfig(), nil)
	w.Kick(JobReplicate)
	waitFor(t, "replication retried", func() bool {
		j, err := h.st.QueueJobs(ctx, store.QueueReplicate, f.Fid)
		return err == nil && j.FailCount > 0
	})
	if on := h.fileOn(f.Fid); !reflect.DeepEqual(on, []int{1}) {
		t.Fatalf("FileOn(%d) = %v, want [1]: a copy whose digest mismatches must not be recorded", f.Fid, on)
	}
	if got := h.readFile(2, f.Fid); got != nil {
		t.Fatalf("dev2 holds %q, want no copy", got)
	}
}

func TestReplicateDeletedFidIsDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	ctx := context.Background()
	if err := h.st.Enqueue(ctx, store.QueueReplicate, store.Job{Fid: 4242}); err != nil {
		t.Fatal(err)
	}
	h.run(testConfig(), nil)
	waitFor(t, "row of a missing fid dropped", func() bool {
		_, err := h.st.QueueJobs(ctx, store.QueueReplicate, 4242)
		return errors.Is(err, store.ErrNotFound)
	})
}

func TestReplicateNoSourceParks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	f := h.upload("lost", "c2", []byte("lost bytes"), 1)
	ctx := context.Background()
	if err := h.st.RemoveFileOn(ctx, f.Fid, 1); err != nil {
		t.Fatal(err)
	}
	h.run(testConfig(), nil)
	waitFor(t, "row parked", func() bool {
		j, err := h.st.QueueJobs(ctx, store.QueueReplicate, f.Fid)
		return err == nil && j.NextTry == store.NeverRetry
	})
}

func TestReplicateRemovesSurplusCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, 1)
	data := []byte("three copies, two wanted")
	f := h.upload("happy", "c2", data, 1)
	h.addCopies(f.Fid, data, 2, 3)
	w := h.run(testConfig(), nil)
	w.Kick(JobReplicate)
	waitFor(t, "surplus copy removed", func() bool { return len(h.fileOn(f.Fid)) == 2 })
	left := 0
	for _, dev := range []int{1, 2, 3} {
		if h.readFile(dev, f.Fid) != nil {
			left++
		}
	}
	if left != 2 {
		t.Fatalf("%d copies on disk, want 2", left)
	}
}

func TestDeadNodeThenReaper(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, 1)
	w := h.run(testConfig(), nil)
	data := []byte("survives a dead device")
	f := h.replicated(w, "k", "c2", data, 1)
	on := h.fileOn(f.Fid)
	victim := on[1]
	h.stopNode(h.hostOf(victim), true)
	h.setDevice(victim, "dead")
	waitFor(t, "copy re-created away from the dead device", func() bool {
		on := h.fileOn(f.Fid)
		return len(on) == 2 && on[0] != victim && on[1] != victim
	})
	on = h.fileOn(f.Fid)
	if h.hostOf(on[0]) == h.hostOf(on[1]) {
		t.Fatalf("FileOn(%d) = %v after reaping, want two hosts", f.Fid, on)
	}
	for _, dev := range on {
		if got := h.readFile(dev, f.Fid); !bytes.Equal(got, data) {
			t.Fatalf("dev%d holds %q, want %q", dev, got, data)
		}
	}
	if w.Stats().Reaped != 1 {
		t.Fatalf("Stats().Reaped = %d, want 1", w.Stats().Reaped)
	}
}

func TestDeleteRemovesEveryCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	w := h.run(testConfig(), nil)
	f := h.replicated(w, "gone", "c2", []byte("delete me"), 1)
	ctx := context.Background()
	if _, err := h.st.DeleteFile(ctx, h.dmid, "gone"); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	w.Kick(JobDelete)
	waitFor(t, "copies deleted", func() bool { return len(h.fileOn(f.Fid)) == 0 })
	for _, dev := range []int{1, 2} {
		if _, err := os.Stat(h.filePath(dev, f.Fid)); !os.IsNotExist(err) {
			t.Fatalf("copy on dev%d: Stat = %v, want not exist", dev, err)
		}
	}
	waitFor(t, "delete row done", func() bool { return h.queueEmpty(store.QueueDelete) })
}

// The delete worker's deferrals (docs/workers.md, Deletion), checked to the second on a pinned
// clock over two attempts: a copy on a device not observed writeable (its node is down, or it is
// readonly or on a readonly host, which the monitor does not test-write) waits 10 min plus 1 min
// per earlier attempt; a copy on a device observed writeable that can no longer be deleted from
// (it went down or readonly, or its host went down, since the monitor's last round) waits 1 h per
// attempt. No copy is deleted meanwhile.
func TestDeleteDeferralTimes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 6, 1) // dev1..dev6, one per node
	ctx := context.Background()
	notWriteable := func(a int64) int64 { return 600 + 60*(a-1) }
	cannotDelete := func(a int64) int64 { return 3600 * a }
	cases := []struct {
		dev  int
		why  string
		wait func(attempt int64) int64 // seconds, for attempt 1, 2, ...
	}{
		{1, "node down", notWriteable},
		{2, "device down after it was seen writeable", cannotDelete},
		{3, "host down after it was seen writeable", cannotDelete},
		{4, "readonly device", notWriteable},
		{5, "device on a readonly host", notWriteable},
		{6, "device readonly since the monitor's last round", cannotDelete},
	}
	fids := make(map[int]int64)
	for _, c := range cases {
		key := "later" + strconv.Itoa(c.dev)
		fids[c.dev] = h.upload(key, "c1", []byte("cannot delete "+key+" yet"), c.dev).Fid
	}
	h.stopNode(0, true)
	h.setDevice(4, "readonly")
	h.setHost(4, "readonly") // dev5's host
	cfg := testConfig()
	cfg.MonitorInterval = conf.Duration(time.Hour) // one round, so dev6 keeps its observation
	base := time.Now()
	var skew atomic.Int64 // seconds added to base: the workers' clock
	w := h.runPinned(h.st, cfg, nil, func(w *Workers) {
		w.now = func() time.Time { return base.Add(time.Duration(skew.Load()) * time.Second) }
	})
	for _, c := range cases {
		o, ok := w.Observed(c.dev)
		if writeable := c.dev == 2 || c.dev == 3 || c.dev == 6; !ok || o.Writable != writeable {
			t.Fatalf("Observed(%d) = %+v, %v; want writable %v after the first round", c.dev, o, ok, writeable)
		}
	}
	h.setDevice(2, "down")
	h.setHost(2, "down") // dev3's host
	h.setDevice(6, "readonly")
	for _, c := range cases {
		if _, err := h.st.DeleteFile(ctx, h.dmid, "later"+strconv.Itoa(c.dev)); err != nil {
			t.Fatalf("DeleteFile: %v", err)
		}
	}

	for attempt := int64(1); attempt <= 2; attempt++ {
		now := base.Unix() + skew.Load()
		w.Kick(JobDelete)
		waitFor(t, "delete attempt "+strconv.FormatInt(attempt, 10), func() bool {
			for _, fid := range fids {
				j, err := h.st.QueueJobs(ctx, store.QueueDelete, fid)
				if err != nil || int64(j.FailCount) != attempt {
					return false
				}
			}
			return true
		})
		for _, c := range cases {
			j, err := h.st.QueueJobs(ctx, store.QueueDelete, fids[c.dev])
			if want := now + c.wait(attempt); err != nil || j.NextTry != want {
				t.Errorf("attempt %d, %s (dev%d): delete row = %+v, %v; want nexttry now+%d", attempt, c.why, c.dev, j, err, c.wait(attempt))
			}
			if on := h.fileOn(fids[c.dev]); !reflect.DeepEqual(on, []int{c.dev}) {
				t.Errorf("attempt %d, %s: FileOn(%d) = %v, want [%d] kept", attempt, c.why, fids[c.dev], on, c.dev)
			}
		}
		skew.Add(7200 + 1) // every row is due again
	}
	for _, c := range cases[1:] {
		if h.readFile(c.dev, fids[c.dev]) == nil {
			t.Errorf("dev%d lost its copy", c.dev)
		}
	}
	if s := w.Stats(); s.DeletedCopies != 0 {
		t.Errorf("Stats().DeletedCopies = %d, want 0", s.DeletedCopies)
	}
}

func TestStaleTempfileReaped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	ctx := context.Background()
	cid := h.classID("c1")
	old := time.Now().Add(-2 * time.Hour).Unix()
	fid, err := h.st.CreateTempfile(ctx, store.Tempfile{DomainID: h.dmid, ClassID: cid, Key: "abandoned", DevIDs: []int{1, 2}, CreateTime: old})
	if err != nil {
		t.Fatal(err)
	}
	h.put(h.devURL(1, fid), []byte("half an upload"))
	fresh, err := h.st.CreateTempfile(ctx, store.Tempfile{DomainID: h.dmid, ClassID: cid, Key: "running", DevIDs: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	w := h.run(testConfig(), nil)
	waitFor(t, "stale upload reaped", func() bool {
		_, err := h.st.Tempfile(ctx, fid)
		return errors.Is(err, store.ErrNotFound) && h.readFile(1, fid) == nil && len(h.fileOn(fid)) == 0
	})
	if _, err := h.st.Tempfile(ctx, fresh); err != nil {
		t.Fatalf("Tempfile(%d) of a running upload = %v, want it kept", fresh, err)
	}
	if w.Stats().TempfilesReaped != 1 {
		t.Fatalf("Stats().TempfilesReaped = %d, want 1", w.Stats().TempfilesReaped)
	}
}

func TestFsckRepairsTruncatedCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	w := h.run(testConfig(), nil)
	data := bytes.Repeat([]byte("0123456789"), 100)
	f := h.replicated(w, "fsck", "c2", data, 1)
	// Truncate the copy on dev2 behind the tracker's back.
	if err := os.WriteFile(h.filePath(2, f.Fid), data[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	maxFid, _ := h.st.MaxFid(ctx)
	for k, v := range map[string]string{
		"fsck_host": "test", "fsck_highest_fid_checked": "0", "fsck_fid_at_end": strconv.FormatInt(maxFid, 10),
	} {
		if err := h.st.SetSetting(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	w.Kick(JobFsck)
	h.waitFsck()
	evs, codes := h.fsckEvents()
	if !reflect.DeepEqual(codes, []string{"BLEN/2", "REPL/0"}) {
		t.Fatalf("fsck events = %v, want [BLEN/2 REPL/0]", codes)
	}
	waitFor(t, "copy restored", func() bool {
		return len(h.fileOn(f.Fid)) == 2 && bytes.Equal(h.readFile(2, f.Fid), data)
	})
	s, _ := h.st.Settings(ctx)
	if s["fsck_highest_fid_checked"] != strconv.FormatInt(f.Fid, 10) || s["fsck_stop_time"] == "" {
		t.Fatalf("fsck settings = %v, want highest checked %d and a stop time", s, f.Fid)
	}
	if s["fsck_sum_evcount_BLEN"] != "1" || s["fsck_sum_evcount_REPL"] != "1" || s["fsck_logid_processed"] != strconv.FormatInt(evs[1].LogID, 10) {
		t.Fatalf("fsck totals = BLEN %q REPL %q processed %q, want 1, 1, %d",
			s["fsck_sum_evcount_BLEN"], s["fsck_sum_evcount_REPL"], s["fsck_logid_processed"], evs[1].LogID)
	}
}

func TestFsckMissingFileGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	data := []byte("vanishes")
	f := h.upload("vanish", "c1", data, 1)
	if err := os.Remove(h.filePath(1, f.Fid)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.startFsck()
	h.run(testConfig(), nil)
	h.waitFsck()
	evs, _ := h.st.FsckEvents(ctx, 0, 100)
	var codes []string
	for _, e := range evs {
		codes = append(codes, e.EvCode)
	}
	if !reflect.DeepEqual(codes, []string{"MISS", "SRCH", "GONE"}) {
		t.Fatalf("fsck events = %v, want [MISS SRCH GONE]", codes)
	}
}

// Two Workers on one store (two trackers) must copy each fid exactly once.
func TestTwoTrackersCopyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	const files = 20
	var fids []int64
	for i := range files {
		f := h.upload("k"+strconv.Itoa(i), "c2", []byte("payload "+strconv.Itoa(i)), 1)
		fids = append(fids, f.Fid)
	}
	putsBefore := h.node(1).Stats().Puts
	cfg := testConfig()
	cfg.ReplicateWorkers = 4
	w1 := h.runOwn(cfg, nil)
	w2 := h.runOwn(cfg, nil)
	w1.Kick(JobReplicate)
	w2.Kick(JobReplicate)
	// An empty queue means every row was settled with Done, which each worker does after counting
	// its copy, so the counters are final.
	waitFor(t, "every fid replicated and its row done", func() bool {
		return h.everyFidHas(fids, 2) && h.queueEmpty(store.QueueReplicate)
	})
	copies := w1.Stats().Replicated + w2.Stats().Replicated
	if copies != files {
		t.Fatalf("copies made = %d (%d + %d), want %d", copies, w1.Stats().Replicated, w2.Stats().Replicated, files)
	}
	for i, fid := range fids {
		if got := h.readFile(2, fid); string(got) != "payload "+strconv.Itoa(i) {
			t.Fatalf("replica of fid %d = %q", fid, got)
		}
	}
	// Node 2 also sees the monitors' test writes, so its PUT count only bounds the copies from below.
	if puts := h.node(1).Stats().Puts - putsBefore; puts < files {
		t.Fatalf("node 2 saw %d PUTs, want at least %d", puts, files)
	}
}

// A tracker that dies after claiming rows loses nothing: the rows come due again when its lease ends.
func TestLeaseExpiryAfterTrackerDeath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	f := h.upload("orphan", "c2", []byte("claimed by a dead tracker"), 1)
	ctx := context.Background()
	jobs, err := h.st.Claim(ctx, store.QueueReplicate, time.Now().Unix(), time.Second, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %v, %v; want the one row", jobs, err)
	}
	h.run(testConfig(), nil)
	waitFor(t, "row picked up after the lease", func() bool { return len(h.fileOn(f.Fid)) == 2 })
}

func TestFsckDropsCopyWithBadChecksum(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	w := h.run(testConfig(), nil)
	data := []byte("checksummed and then corrupted")
	f := h.upload("bsum", "c2md5", data, 1)
	w.Kick(JobReplicate)
	ctx := context.Background()
	waitFor(t, "two copies and a stored checksum", func() bool {
		_, err := h.st.Checksum(ctx, f.Fid)
		return len(h.fileOn(f.Fid)) == 2 && err == nil
	})
	bad := bytes.ToUpper(data) // same length, other bytes
	if err := os.WriteFile(h.filePath(2, f.Fid), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	h.startFsck()
	w.Kick(JobFsck)
	h.waitFsck()
	if _, codes := h.fsckEvents(); !reflect.DeepEqual(codes, []string{"BSUM/2", "REPL/0"}) {
		t.Fatalf("fsck events = %v, want [BSUM/2 REPL/0]", codes)
	}
	waitFor(t, "good copy restored on dev2", func() bool {
		return len(h.fileOn(f.Fid)) == 2 && bytes.Equal(h.readFile(2, f.Fid), data)
	})
}

// Stopping the workers gives back claimed rows they did not start, instead of leaving them leased.
func TestStopReleasesClaims(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	ctx := context.Background()
	w, err := New(testConfig(), h.st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := store.Job{Fid: 77, NextTry: time.Now().Unix() + 1000}
	w.release(ctx, store.QueueReplicate, j) // no row: Retry reports not found, which is logged
	if err := h.st.Enqueue(ctx, store.QueueReplicate, store.Job{Fid: 77}); err != nil {
		t.Fatal(err)
	}
	jobs, err := h.st.Claim(ctx, store.QueueReplicate, time.Now().Unix(), time.Hour, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %v, %v", jobs, err)
	}
	w.release(ctx, store.QueueReplicate, jobs[0])
	got, err := h.st.QueueJobs(ctx, store.QueueReplicate, 77)
	if err != nil || got.NextTry > time.Now().Unix() {
		t.Fatalf("QueueJobs(77) = %+v, %v after release; want due now", got, err)
	}
}

// With the side channel on, replication checks and fsck take digests from the storage node instead
// of downloading the copies.
func TestSideChannelDigests(t *testing.T) {
	t.Parallel()
	h := newHarnessMgmt(t, 2, 1, true)
	cfg := testConfig()
	cfg.SideChannelPort = h.mgmtPort
	w := h.run(cfg, nil)
	data := []byte("digested by the storage node")
	f := h.replicated(w, "side", "c2md5", data, 1)
	if n := h.node(1).Stats().MgmtCommands; n == 0 {
		t.Fatalf("node 2 answered %d side-channel commands, want the replica's digest check", n)
	}
	ctx := context.Background()
	if err := os.WriteFile(h.filePath(1, f.Fid), bytes.ToUpper(data), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.node(0).Stats().MgmtCommands
	h.startFsck()
	w.Kick(JobFsck)
	h.waitFsck()
	if h.node(0).Stats().MgmtCommands == before {
		t.Fatalf("fsck sent no side-channel command to node 1")
	}
	evs, _ := h.st.FsckEvents(ctx, 0, 10)
	if len(evs) == 0 || evs[0].EvCode != EvBadChecksum || evs[0].DevID != 1 {
		t.Fatalf("fsck events = %+v, want BSUM on dev1 first", evs)
	}
	waitFor(t, "good copy restored on dev1", func() bool { return bytes.Equal(h.readFile(1, f.Fid), data) })
}

// A host whose node accepts connections but never answers times out once per round: its other
// devices are marked unreachable without being probed.
func TestMonitorHungHostSkipsItsDevices(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, 1)
	ln := testutil.Silent(t, "127.0.0.9:0")
	ctx := context.Background()
	host, err := h.st.CreateHost(ctx, store.Host{Name: "hung", Status: "alive", IP: "127.0.0.9", HTTPPort: ln.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{21, 22} {
		if err := h.st.CreateDevice(ctx, store.Device{ID: id, HostID: host.ID, Status: "alive", Weight: 100}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	// node_timeout bounds the probes of the live node too (its writable check writes a file): 200ms
	// was one scheduling delay of the race build under load. The hung host waits it out once.
	cfg.NodeTimeout = conf.Duration(2 * time.Second)
	var obs observations
	h.run(cfg, &obs)
	o21, _ := obs.get(21)
	o22, _ := obs.get(22)
	if o21.Reachable || o22.Reachable || !strings.HasPrefix(o22.Err, "host unreachable") {
		t.Fatalf("Observe(21) = %+v, Observe(22) = %+v; want both unreachable, 22 skipped as host unreachable", o21, o22)
	}
	if o, _ := obs.get(1); !o.Writable {
		t.Fatalf("Observe(dev1) = %+v, want writable: a hung host must not hold up the others", o)
	}
}

// A rebalance row moves the copy off its source device onto one of the listed destinations.
func TestRebalanceMovesCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 2) // dev1, dev2 on node 0; dev3, dev4 on node 1
	data := []byte("moving house")
	f := h.upload("mv", "c1", data, 1)
	ctx := context.Background()
	w := h.run(testConfig(), nil)
	if err := h.st.Enqueue(ctx, store.QueueRebalance, store.Job{Fid: f.Fid, FromDevID: 1, Arg: "3,4"}); err != nil {
		t.Fatal(err)
	}
	w.Kick(JobRebalance)
	waitFor(t, "copy moved", func() bool {
		on := h.fileOn(f.Fid)
		return len(on) == 1 && (on[0] == 3 || on[0] == 4)
	})
	dst := h.fileOn(f.Fid)[0]
	if got := h.readFile(dst, f.Fid); !bytes.Equal(got, data) {
		t.Fatalf("moved copy on dev%d = %q, want %q", dst, got, data)
	}
	if h.readFile(1, f.Fid) != nil {
		t.Fatalf("source copy on dev1 still on disk")
	}
	waitFor(t, "rebalance row done", func() bool { return h.queueEmpty(store.QueueRebalance) })
	if w.Stats().Rebalanced != 1 {
		t.Fatalf("Stats().Rebalanced = %d, want 1", w.Stats().Rebalanced)
	}
}

// The reaper works through a dead device in batches of queue_rate_for_reaper.
func TestReaperBatches(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, 1)
	w := h.run(testConfig(), nil)
	var fids []int64
	for i := range 3 {
		fids = append(fids, h.upload("b"+strconv.Itoa(i), "c2", []byte("batch "+strconv.Itoa(i)), 1).Fid)
	}
	w.Kick(JobReplicate)
	waitFor(t, "two copies each", func() bool { return h.everyFidHas(fids, 2) })
	if err := h.st.SetSetting(context.Background(), "queue_rate_for_reaper", "1"); err != nil {
		t.Fatal(err)
	}
	h.setDevice(1, "dead")
	waitFor(t, "every file off dev1 with two copies again", func() bool {
		for _, fid := range fids {
			on := h.fileOn(fid)
			if len(on) != 2 || on[0] == 1 {
				return false
			}
		}
		return true
	})
	if got := w.Stats().Reaped; got != 3 {
		t.Fatalf("Stats().Reaped = %d, want 3", got)
	}
}

func TestReplicateBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, 1)
	w, err := New(testConfig(), h.st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	w.now = func() time.Time { return now }
	w.randFloat = func() float64 { return 0.5 } // jitter factor exactly 1
	ctx := context.Background()
	tests := []struct {
		failCount int
		delay     int64
	}{
		{0, 15}, {1, 60}, {2, 300}, {3, 1800}, {4, 3600}, {8, 86400}, {20, 86400},
	}
	for _, tt := range tests {
		if err := h.st.Enqueue(ctx, store.QueueReplicate, store.Job{Fid: 9}); err != nil {
			t.Fatal(err)
		}
		w.retryReplicate(ctx, store.Job{Fid: 9, FailCount: tt.failCount}, errors.New("test"))
		j, err := h.st.QueueJobs(ctx, store.QueueReplicate, 9)
		if err != nil || j.NextTry != now.Unix()+tt.delay || j.FailCount != tt.failCount+1 {
			t.Errorf("after failure %d: row = %+v, %v; want nexttry now+%d, failcount %d", tt.failCount, j, err, tt.delay, tt.failCount+1)
		}
	}
}

// Only the monitor starts with the workers; the others start after its first full round
// (docs/workers.md). Here that round is held open by a host whose usage read does not answer until
// the test lets it: meanwhile the live node is observed writeable, but no other worker runs, a
// due delete row is left alone and no DELETE is sent. Once the round ends, the file is deleted.
func TestWorkersStartAfterFirstMonitorRound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1, 1)
	ctx := context.Background()
	f := h.upload("early", "c1", []byte("deleted once the monitor has looked"), 1)
	if _, err := h.st.DeleteFile(ctx, h.dmid, "early"); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	before, err := h.st.QueueJobs(ctx, store.QueueDelete, f.Fid)
	if err != nil {
		t.Fatalf("QueueJobs(delete, %d): %v", f.Fid, err)
	}

	release, stop := make(chan struct{}), make(chan struct{})
	slow := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/usage") {
			select {
			case <-release:
			case <-stop:
			}
		}
		http.NotFound(rw, r)
	}))
	slow.Listener = testutil.Listen(t, "127.0.0.9:0")
	slow.Start()
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stop) }) // runs first: a failed test must not leave a handler blocked
	host, err := h.st.CreateHost(ctx, store.Host{Name: "slow", Status: "alive", IP: "127.0.0.9", HTTPPort: slow.Listener.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.CreateDevice(ctx, store.Device{ID: 21, HostID: host.ID, Status: "alive", Weight: 100}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.NodeTimeout = conf.Duration(time.Minute) // the held usage read must not time out
	seen := make(chan struct{})
	var once sync.Once
	w := h.start(h.st, cfg, ObserverFunc(func(dev int, o Observation) {
		if dev == 1 && o.Writable {
			once.Do(func() { close(seen) })
		}
	}), nil)
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("dev1 was not observed writeable")
	}

	select {
	case <-w.MonitorDone():
		t.Fatal("MonitorDone is closed while the first round waits for a host")
	default:
	}
	for name, ji := range w.Jobs() {
		if name != JobMonitor && (ji.Count != 0 || ji.Runs != 0) {
			t.Errorf("Jobs()[%s] = %+v before the first monitor round ended, want not started", name, ji)
		}
	}
	if j, err := h.st.QueueJobs(ctx, store.QueueDelete, f.Fid); err != nil || j != before {
		t.Errorf("delete row = %+v, %v before the first monitor round ended, want it untouched (%+v)", j, err, before)
	}
	if n := h.node(0).Stats().Deletes; n != 0 {
		t.Errorf("the node got %d DELETEs before the first monitor round ended, want 0", n)
	}

	close(release)
	select {
	case <-w.MonitorDone():
	case <-time.After(30 * time.Second):
		t.Fatal("the first monitor round did not end once the host answered")
	}
	waitFor(t, "the file deleted", func() bool { return h.queueEmpty(store.QueueDelete) })
	if got := h.readFile(1, f.Fid); got != nil {
		t.Errorf("dev1 still holds %q", got)
	}
	if n := h.node(0).Stats().Deletes; n != 1 {
		t.Errorf("the node got %d DELETEs, want 1", n)
	}
}
