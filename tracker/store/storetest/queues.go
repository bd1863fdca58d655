package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

var allQueues = []store.Queue{store.QueueReplicate, store.QueueDelete, store.QueueFsck, store.QueueRebalance}

func testQueues(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	for _, q := range allQueues {
		t.Run(fmt.Sprint("queue", int(q)), func(t *testing.T) {
			base := int64(q) * 1000
			in := []store.Job{
				{Fid: base + 1, NextTry: 0},
				{Fid: base + 2, NextTry: 50, FailCount: 2},
				{Fid: base + 3, NextTry: 200},
				{Fid: base + 4, NextTry: store.NeverRetry},
			}
			switch q {
			case store.QueueReplicate:
				in[1].FromDevID, in[1].Flags = 7, 1
			case store.QueueFsck, store.QueueRebalance:
				in[1].FromDevID, in[1].Flags, in[1].Arg = 7, 1, "3,4,5"
			}
			for _, j := range in {
				must(t, "Enqueue", s.Enqueue(ctx, q, j))
			}
			n, err := s.QueueLen(ctx, q)
			must(t, "QueueLen", err)
			if n != 4 {
				t.Fatalf("QueueLen(%d) = %d, want 4", q, n)
			}
			for _, j := range in {
				got, err := s.QueueJobs(ctx, q, j.Fid)
				must(t, "QueueJobs", err)
				if got != j {
					t.Fatalf("QueueJobs(%d, %d) = %+v, want %+v", q, j.Fid, got, j)
				}
			}
			_, err = s.QueueJobs(ctx, q, base+99)
			wantErr(t, "QueueJobs(missing)", err, store.ErrNotFound)

			got, err := s.Claim(ctx, q, 100, 30*time.Second, 10)
			must(t, "Claim", err)
			if len(got) != 2 || got[0].Fid != base+1 || got[1].Fid != base+2 {
				t.Fatalf("Claim(now 100) = %+v, want fids %d, %d", got, base+1, base+2)
			}
			want1 := in[1]
			want1.NextTry = 130
			if got[1] != want1 || got[0].NextTry != 130 {
				t.Fatalf("Claim(now 100) = %+v, want leased until 130 and %+v", got, want1)
			}
			got, err = s.Claim(ctx, q, 100, 30*time.Second, 10)
			must(t, "Claim", err)
			if len(got) != 0 {
				t.Fatalf("Claim() again within the lease = %+v, want none", got)
			}
			// Retry reschedules; Done removes.
			must(t, "Retry", s.Retry(ctx, q, store.Job{Fid: base + 1, NextTry: 150, FailCount: 1, FromDevID: 9}))
			j, err := s.QueueJobs(ctx, q, base+1)
			must(t, "QueueJobs", err)
			wantRetry := store.Job{Fid: base + 1, NextTry: 150, FailCount: 1, FromDevID: 9}
			if q == store.QueueDelete {
				wantRetry.FromDevID = 0
			}
			if j != wantRetry {
				t.Fatalf("job after Retry = %+v, want %+v", j, wantRetry)
			}
			wantErr(t, "Retry(missing)", s.Retry(ctx, q, store.Job{Fid: base + 99, NextTry: 1}), store.ErrNotFound)
			must(t, "Done", s.Done(ctx, q, base+2))
			must(t, "Done(again)", s.Done(ctx, q, base+2))
			got, err = s.Claim(ctx, q, 1<<30, time.Second, 10)
			must(t, "Claim", err)
			if len(got) != 2 || got[0].Fid != base+1 || got[1].Fid != base+3 {
				t.Fatalf("Claim(far future) = %+v, want fids %d, %d (parked row never due)", got, base+1, base+3)
			}
			// Enqueue replaces the row of the same fid.
			must(t, "Enqueue(replace)", s.Enqueue(ctx, q, store.Job{Fid: base + 4, NextTry: 5}))
			n, err = s.QueueLen(ctx, q)
			must(t, "QueueLen", err)
			if n != 3 {
				t.Fatalf("QueueLen(%d) after replacing a row = %d, want 3", q, n)
			}
			j, err = s.QueueJobs(ctx, q, base+4)
			must(t, "QueueJobs", err)
			if j != (store.Job{Fid: base + 4, NextTry: 5}) {
				t.Fatalf("replaced job = %+v", j)
			}
		})
	}
	// The fsck and rebalance queues share a table but not their rows.
	must(t, "Enqueue(fsck)", s.Enqueue(ctx, store.QueueFsck, store.Job{Fid: 77}))
	_, err := s.QueueJobs(ctx, store.QueueRebalance, 77)
	wantErr(t, "QueueJobs(rebalance, fsck fid)", err, store.ErrNotFound)
	must(t, "Enqueue(rebalance)", s.Enqueue(ctx, store.QueueRebalance, store.Job{Fid: 77, NextTry: 9, Arg: "1"}))
	must(t, "Done(fsck)", s.Done(ctx, store.QueueFsck, 77))
	j, err := s.QueueJobs(ctx, store.QueueRebalance, 77)
	must(t, "QueueJobs(rebalance)", err)
	if j.NextTry != 9 || j.Arg != "1" {
		t.Fatalf("rebalance job after the fsck row was done = %+v", j)
	}
}

func testReplicateNow(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	for _, j := range []store.Job{
		{Fid: 1, NextTry: 0},
		{Fid: 2, NextTry: 500},
		{Fid: 3, NextTry: 2000, FailCount: 3},
		{Fid: 4, NextTry: store.NeverRetry},
	} {
		must(t, "Enqueue", s.Enqueue(ctx, store.QueueReplicate, j))
	}
	must(t, "Enqueue(delete)", s.Enqueue(ctx, store.QueueDelete, store.Job{Fid: 9, NextTry: 5000}))
	n, err := s.ReplicateNow(ctx, 1000)
	must(t, "ReplicateNow", err)
	if n != 2 {
		t.Fatalf("ReplicateNow(1000) = %d, want 2 (fids 3 and 4)", n)
	}
	for fid, want := range map[int64]int64{1: 0, 2: 500, 3: 1000, 4: 1000} {
		j, err := s.QueueJobs(ctx, store.QueueReplicate, fid)
		must(t, "QueueJobs", err)
		if j.NextTry != want {
			t.Errorf("nexttry of fid %d after ReplicateNow(1000) = %d, want %d", fid, j.NextTry, want)
		}
	}
	j, err := s.QueueJobs(ctx, store.QueueDelete, 9)
	must(t, "QueueJobs(delete)", err)
	if j.NextTry != 5000 {
		t.Errorf("ReplicateNow changed the delete queue: nexttry %d, want 5000", j.NextTry)
	}
	n, err = s.ReplicateNow(ctx, 1000)
	must(t, "ReplicateNow", err)
	if n != 0 {
		t.Fatalf("ReplicateNow(1000) again = %d, want 0", n)
	}
}

func testClaimLease(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	must(t, "Enqueue", s.Enqueue(ctx, store.QueueReplicate, store.Job{Fid: 1}))
	got, err := s.Claim(ctx, store.QueueReplicate, 1000, 10*time.Second, 5)
	must(t, "Claim", err)
	if len(got) != 1 || got[0].NextTry != 1010 {
		t.Fatalf("Claim(1000, 10s) = %+v, want fid 1 leased until 1010", got)
	}
	// A tracker that claimed the row and died: the row comes due again when the lease ends.
	for _, now := range []int64{1000, 1005, 1009} {
		got, err := s.Claim(ctx, store.QueueReplicate, now, 10*time.Second, 5)
		must(t, "Claim", err)
		if len(got) != 0 {
			t.Fatalf("Claim(%d) within the lease = %+v, want none", now, got)
		}
	}
	got, err = s.Claim(ctx, store.QueueReplicate, 1010, 500*time.Millisecond, 5)
	must(t, "Claim", err)
	if len(got) != 1 || got[0].Fid != 1 || got[0].NextTry != 1011 {
		t.Fatalf("Claim(1010) after the lease = %+v, want fid 1 leased until 1011", got)
	}
	got, err = s.Claim(ctx, store.QueueReplicate, 1011, time.Second, 0)
	must(t, "Claim(limit 0)", err)
	if len(got) != 0 {
		t.Fatalf("Claim(limit 0) = %+v, want none", got)
	}
}

// testConcurrentClaims has two Stores on one database claim from one queue at the same time; no
// row may be handed out twice and every row must be handed out.
func testConcurrentClaims(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	const rows = 300
	for i := 1; i <= rows; i++ {
		must(t, "Enqueue", a.Enqueue(ctx, store.QueueDelete, store.Job{Fid: int64(i), NextTry: int64(i % 7)}))
	}
	var mu sync.Mutex // guards claimed and errs
	claimed := map[int64]int{}
	var errs []error
	inParallel(4, a, b, func(_ int, s store.Store) {
		// Bounded: each round either claims a row or finds the queue drained.
		for round := 0; round < rows; round++ {
			got, err := s.Claim(ctx, store.QueueDelete, 100, time.Hour, 7)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			for _, j := range got {
				claimed[j.Fid]++
			}
			done := len(claimed) == rows
			mu.Unlock()
			if done {
				return
			}
		}
	})
	checkEachOnce(t, "Claim", errs, claimed, "claimed", rows)
}

// testConcurrentFids allocates fids from two Stores on one database at the same time.
func testConcurrentFids(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	d := domain(t, ctx, a, "d")
	const perWorker = 40
	var mu sync.Mutex // guards seen and errs
	seen := map[int64]int{}
	var errs []error
	inParallel(4, a, b, func(w int, s store.Store) {
		for i := 0; i < perWorker; i++ {
			fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: fmt.Sprint("w", w, "-", i)})
			if err == nil && i%4 == 0 {
				// Committing some of them makes MAX(file.fid) move while others allocate.
				_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: fmt.Sprint("w", w, "-", i)}, DevIDs: []int{1}})
			}
			mu.Lock()
			if err != nil {
				errs = append(errs, err)
			} else {
				seen[fid]++
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	checkEachOnce(t, "CreateTempfile/CommitFile", errs, seen, "allocated", 4*perWorker)
}

// checkEachOnce checks the outcome of concurrent calls of op: no errors, each fid counted once in
// counts (what: "claimed", "allocated"), and want distinct fids.
func checkEachOnce(t *testing.T, op string, errs []error, counts map[int64]int, what string, want int) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %v", op, err)
	}
	for fid, n := range counts {
		if n != 1 {
			t.Errorf("fid %d %s %d times, want once", fid, what, n)
		}
	}
	if len(counts) != want {
		t.Fatalf("%d distinct fids %s, want %d", len(counts), what, want)
	}
}

// testConcurrentCommits commits many fids of one key from two Stores at once: every commit
// succeeds, one fid ends up as the key's file, and every other fid is queued for deletion.
func testConcurrentCommits(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	d := domain(t, ctx, a, "d")
	const writers = 8
	fids := make([]int64, writers)
	for i := range fids {
		fid, err := a.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "hot"})
		must(t, "CreateTempfile", err)
		fids[i] = fid
	}
	errs := make([]error, writers)
	replaced := make([]int64, writers)
	inParallel(len(fids), a, b, func(i int, s store.Store) {
		fid := fids[i]
		replaced[i], errs[i] = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: "hot", Length: int64(i)}, DevIDs: []int{1}})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("CommitFile(fid %d) racing on one key: %v", fids[i], err)
		}
	}
	f, err := a.FileByKey(ctx, d.ID, "hot")
	must(t, "FileByKey", err)
	queued := 0
	for i, fid := range fids {
		_, err := a.QueueJobs(ctx, store.QueueDelete, fid)
		switch {
		case fid == f.Fid && err == nil:
			t.Errorf("the winning fid %d is queued for deletion", fid)
		case fid != f.Fid && err != nil:
			t.Errorf("losing fid %d is not queued for deletion: %v", fid, err)
		case fid != f.Fid:
			queued++
		}
		if replaced[i] == fid {
			t.Errorf("CommitFile(fid %d) says it replaced itself", fid)
		}
	}
	if queued != writers-1 {
		t.Fatalf("%d fids queued for deletion, want %d", queued, writers-1)
	}
}

// testConcurrentFileOn adds and removes copies of one fid from two Stores at once; devcount must
// end up equal to the copies left.
func testConcurrentFileOn(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	d := domain(t, ctx, a, "d")
	fid := upload(t, ctx, a, d.ID, "k", 1, 100)
	const devs = 12
	errs := make([]error, devs)
	inParallel(devs, a, b, func(i int, s store.Store) {
		errs[i] = s.AddFileOn(ctx, fid, i+1)
		if errs[i] == nil && i%3 == 0 {
			errs[i] = s.RemoveFileOn(ctx, fid, i+1)
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("AddFileOn/RemoveFileOn(dev %d): %v", i+1, err)
		}
	}
	on, err := a.FileOn(ctx, fid)
	must(t, "FileOn", err)
	f, err := a.FileByFid(ctx, fid)
	must(t, "FileByFid", err)
	if want := 1 + devs - devs/3; len(on) != want || f.DevCount != want {
		t.Fatalf("after concurrent changes: FileOn has %d rows, devcount %d, want both %d", len(on), f.DevCount, want)
	}
}

func testLocks(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	const name = "mgfs:fid:42:replicate"
	unlock, err := a.Lock(ctx, name, time.Second)
	must(t, "Lock", err)
	_, err = b.Lock(ctx, name, 0)
	wantErr(t, "Lock held by another store", err, store.ErrLocked)
	_, err = a.Lock(ctx, name, 50*time.Millisecond)
	wantErr(t, "Lock held by the same store", err, store.ErrLocked)
	other, err := b.Lock(ctx, "mgfs:tempfiles", 0)
	must(t, "Lock(other name)", err)
	other()

	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		u, err := b.Lock(ctx, name, time.Minute)
		if err == nil {
			u()
		}
		got <- err
	}()
	<-started
	unlock()
	unlock() // a second unlock is harmless
	select {
	case err := <-got:
		must(t, "Lock after release", err)
	case <-ctx.Done():
		t.Fatalf("waiting Lock never returned after the release")
	}

	// Released again by the waiter: both stores can take it now.
	u, err := a.Lock(ctx, name, time.Second)
	must(t, "Lock after the waiter released", err)
	u()

	// Mutual exclusion under contention: each holder checks it is alone while it does some I/O.
	var inside, overlaps, total atomic.Int64
	inParallel(4, a, b, func(_ int, s store.Store) {
		for i := 0; i < 5; i++ {
			u, err := s.Lock(ctx, "mfsd:file_to_replicate", 30*time.Second)
			if err != nil {
				t.Errorf("Lock: %v", err)
				return
			}
			if inside.Add(1) != 1 {
				overlaps.Add(1)
			}
			if _, err := s.Settings(ctx); err != nil {
				t.Errorf("Settings: %v", err)
			}
			inside.Add(-1)
			total.Add(1)
			u()
		}
	})
	if overlaps.Load() != 0 || total.Load() != 20 {
		t.Fatalf("overlapping lock holders = %d (want 0), critical sections = %d (want 20)", overlaps.Load(), total.Load())
	}
}
