package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// CheckInvariants fails t unless the namespace in s is consistent: every file belongs to a known
// domain, is found again by its key under the same fid, and has a devcount equal to the number of
// devices that hold it. Tests that build a database some other way than through a Store (a
// restored backup, a replica) run it on the result.
func CheckInvariants(t *testing.T, s store.Store) {
	t.Helper()
	if err := Invariants(context.Background(), s); err != nil {
		t.Error(err)
	}
}

// Invariants returns the first broken invariant of CheckInvariants, or nil.
func Invariants(ctx context.Context, s store.Store) error {
	domains, err := s.Domains(ctx)
	if err != nil {
		return fmt.Errorf("Domains: %w", err)
	}
	known := map[int]bool{}
	for _, d := range domains {
		known[d.ID] = true
	}
	var after int64
	for {
		files, err := s.ListFids(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("ListFids(%d): %w", after, err)
		}
		if len(files) == 0 {
			return nil
		}
		for _, f := range files {
			if f.Fid <= after {
				return fmt.Errorf("ListFids(%d) returned fid %d out of order", after, f.Fid)
			}
			after = f.Fid
			if !known[f.DomainID] {
				return fmt.Errorf("fid %d is in domain %d, which does not exist", f.Fid, f.DomainID)
			}
			byKey, err := s.FileByKey(ctx, f.DomainID, f.Key)
			if err != nil {
				return fmt.Errorf("FileByKey(%d, %q) of fid %d: %w", f.DomainID, f.Key, f.Fid, err)
			}
			if byKey.Fid != f.Fid {
				return fmt.Errorf("FileByKey(%d, %q) = fid %d, want %d", f.DomainID, f.Key, byKey.Fid, f.Fid)
			}
			on, err := s.FileOn(ctx, f.Fid)
			if err != nil {
				return fmt.Errorf("FileOn(%d): %w", f.Fid, err)
			}
			if len(on) != f.DevCount {
				return fmt.Errorf("fid %d has devcount %d but is on %d devices %v", f.Fid, f.DevCount, len(on), on)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(on)))) != len(on) {
				return fmt.Errorf("fid %d is listed twice on a device: %v", f.Fid, on)
			}
		}
	}
}
