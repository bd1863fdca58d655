package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// BenchmarkLocate compares what get_paths reads per query: the two statements it used before
// (FileByKey, then FileOn) against Locate's one prepared join, uncached and cached. A cached
// Locate reads the WAL-index header and nothing else.
func BenchmarkLocate(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		ttl  bool
		read func(s *Store, dmid int) error
	}{
		{"FileByKey+FileOn", false, func(s *Store, dmid int) error {
			f, err := s.FileByKey(ctx, dmid, "k")
			if err != nil {
				return err
			}
			_, err = s.FileOn(ctx, f.Fid)
			return err
		}},
		{"Locate/uncached", false, func(s *Store, dmid int) error { _, err := s.Locate(ctx, dmid, "k"); return err }},
		{"Locate/cached", true, func(s *Store, dmid int) error { _, err := s.Locate(ctx, dmid, "k"); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := []Option{WithLocateTTL(0)}
			if bc.ttl {
				opts = nil // the default TTL
			}
			s, err := Open(ctx, filepath.Join(b.TempDir(), "t.db"), opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			d, err := s.CreateDomain(ctx, "d")
			if err != nil {
				b.Fatal(err)
			}
			fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "k", DevIDs: []int{1, 2}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: "k", Length: 4096}, DevIDs: []int{1, 2}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.read(s, d.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
