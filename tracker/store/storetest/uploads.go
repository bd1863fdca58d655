package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// testDiscardUpload checks that an aborted upload leaves exactly what the delete worker needs (the
// copies and a delete row) and that an upload ends once: a discarded fid cannot be committed, and a
// committed one cannot be discarded.
func testDiscardUpload(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")

	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "k", DevIDs: []int{1, 2, 3}})
	must(t, "CreateTempfile", err)
	must(t, "DiscardUpload", s.DiscardUpload(ctx, fid, 3, 1))
	_, err = s.Tempfile(ctx, fid)
	wantErr(t, "Tempfile after DiscardUpload", err, store.ErrNotFound)
	on, err := s.FileOn(ctx, fid)
	must(t, "FileOn", err)
	if !reflect.DeepEqual(on, []int{1, 3}) {
		t.Fatalf("FileOn(%d) after DiscardUpload(3, 1) = %v, want [1 3]", fid, on)
	}
	j, err := s.QueueJobs(ctx, store.QueueDelete, fid)
	must(t, "QueueJobs(delete)", err)
	if j != (store.Job{Fid: fid}) {
		t.Fatalf("delete job after DiscardUpload = %+v, want fid %d due now", j, fid)
	}
	_, err = s.FileByFid(ctx, fid)
	wantErr(t, "FileByFid after DiscardUpload", err, store.ErrNotFound)

	// The upload is over: neither a second discard nor a commit gets through, and neither adds copies.
	err = s.DiscardUpload(ctx, fid, 2)
	wantErr(t, "DiscardUpload(again)", err, store.ErrNotFound)
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: "k"}, DevIDs: []int{2}})
	wantErr(t, "CommitFile after DiscardUpload", err, store.ErrNotFound)
	_, err = s.FileByKey(ctx, d.ID, "k")
	wantErr(t, "FileByKey after a refused commit", err, store.ErrNotFound)
	on, err = s.FileOn(ctx, fid)
	must(t, "FileOn", err)
	if !reflect.DeepEqual(on, []int{1, 3}) {
		t.Fatalf("FileOn(%d) after refused calls = %v, want [1 3]", fid, on)
	}

	// Without devices only the delete row is written.
	bare, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "bare"})
	must(t, "CreateTempfile", err)
	must(t, "DiscardUpload(no devices)", s.DiscardUpload(ctx, bare))
	on, err = s.FileOn(ctx, bare)
	must(t, "FileOn", err)
	if len(on) != 0 {
		t.Fatalf("FileOn(%d) after DiscardUpload() = %v, want none", bare, on)
	}
	_, err = s.QueueJobs(ctx, store.QueueDelete, bare)
	must(t, "QueueJobs(delete) after DiscardUpload()", err)

	// A committed upload is not discarded: its copies and file row stay, and nothing is queued.
	kept := upload(t, ctx, s, d.ID, "kept", 7, 4)
	err = s.DiscardUpload(ctx, kept, 5)
	wantErr(t, "DiscardUpload(committed fid)", err, store.ErrNotFound)
	f, err := s.FileByFid(ctx, kept)
	must(t, "FileByFid(committed)", err)
	if f.DevCount != 1 || f.Key != "kept" {
		t.Fatalf("FileByFid(%d) after a refused discard = %+v, want key kept devcount 1", kept, f)
	}
	_, err = s.QueueJobs(ctx, store.QueueDelete, kept)
	wantErr(t, "QueueJobs(delete) of a committed fid", err, store.ErrNotFound)

	// A fid that was never opened.
	err = s.DiscardUpload(ctx, kept+1000, 1)
	wantErr(t, "DiscardUpload(fid never opened)", err, store.ErrNotFound)
	_, err = s.QueueJobs(ctx, store.QueueDelete, kept+1000)
	wantErr(t, "QueueJobs(delete) of a fid never opened", err, store.ErrNotFound)
}

// testConcurrentClose ends one upload from many goroutines on two Stores at once (two trackers
// answering a client that retried create_close, mixed with aborts): exactly one call succeeds, the
// others are ErrNotFound, and the rows left are those of the winner alone.
func testConcurrentClose(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	d := domain(t, ctx, a, "d")
	const (
		rounds  = 4
		closers = 8
	)
	for round := 0; round < rounds; round++ {
		fid, err := a.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "k", DevIDs: []int{1}})
		must(t, "CreateTempfile", err)
		// Closer i uses device i+1 and, when it commits, key r<round>-<i>, so the rows it wrote
		// name it. Even closers commit, odd ones discard; which kind wins varies by round.
		errs := make([]error, closers)
		inParallel(closers, a, b, func(i int, s store.Store) {
			if (i+round)%2 == 0 {
				_, errs[i] = s.CommitFile(ctx, store.Commit{
					File:   store.File{Fid: fid, DomainID: d.ID, Key: fmt.Sprintf("r%d-%d", round, i), Length: int64(i)},
					DevIDs: []int{i + 1},
				})
			} else {
				errs[i] = s.DiscardUpload(ctx, fid, i+1)
			}
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: closers %d and %d both ended fid %d", round, winner, i, fid)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("round %d: closer %d: %v, want nil or ErrNotFound", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no closer ended fid %d: %v", round, fid, errs)
		}
		on, err := a.FileOn(ctx, fid)
		must(t, "FileOn", err)
		if !reflect.DeepEqual(on, []int{winner + 1}) {
			t.Errorf("round %d: FileOn(%d) = %v, want only the winner's device %d", round, fid, on, winner+1)
		}
		keys, err := a.ListKeys(ctx, d.ID, fmt.Sprintf("r%d-", round), "", 100)
		must(t, "ListKeys", err)
		_, delErr := a.QueueJobs(ctx, store.QueueDelete, fid)
		if (winner+round)%2 == 0 {
			want := []string{fmt.Sprintf("r%d-%d", round, winner)}
			if !reflect.DeepEqual(keys, want) {
				t.Errorf("round %d: keys after a commit won = %q, want %q", round, keys, want)
			}
			if delErr == nil {
				t.Errorf("round %d: committed fid %d is queued for deletion", round, fid)
			}
		} else {
			if len(keys) != 0 {
				t.Errorf("round %d: keys after a discard won = %q, want none", round, keys)
			}
			if delErr != nil {
				t.Errorf("round %d: discarded fid %d is not queued for deletion: %v", round, fid, delErr)
			}
		}
	}
}
