package sqlite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
)

// helperEnv names the database a re-run of this test binary writes to as another process (see
// TestMain); helperKey is the key whose copies it changes.
const (
	helperEnv = "MOGWAY_SQLITE_TEST_OTHER_PROCESS"
	helperKey = "k"
)

// TestMain lets a test run this binary again as a second tracker process on the same file: with
// helperEnv set, it adds a copy of helperKey on device 2 and exits.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		if err := otherProcessWrite(path); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func otherProcessWrite(path string) error {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	ds, err := s.Domains(ctx)
	if err != nil || len(ds) != 1 {
		return fmt.Errorf("domains: %v, %v", ds, err)
	}
	f, err := s.FileByKey(ctx, ds[0].ID, helperKey)
	if err != nil {
		return err
	}
	return s.AddFileOn(ctx, f.Fid, 2)
}

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWALIndexMark: the mark read from the -shm file stands while nothing is committed and moves
// with every commit, by this Store's writer or by another Store's.
func TestWALIndexMark(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	a, b := openTest(t, path), openTest(t, path)
	wi, err := openWALIndex(path)
	if err != nil {
		t.Fatalf("openWALIndex: %v", err)
	}
	defer wi.close()
	m0, ok := wi.mark()
	if !ok {
		t.Fatal("mark of an idle database: not ok")
	}
	if _, err := a.Locate(ctx, 1, "nothing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Locate = %v, want not found", err)
	}
	if m, ok := wi.mark(); !ok || m != m0 {
		t.Errorf("mark after a read = %v (ok %v), want %v", m, ok, m0)
	}
	prev := m0
	for _, write := range []struct {
		name string
		s    *Store
	}{{"this Store", a}, {"another Store", b}} {
		if _, err := write.s.CreateDomain(ctx, "d"+write.name); err != nil {
			t.Fatal(err)
		}
		m, ok := wi.mark()
		if !ok || m == prev {
			t.Errorf("mark after a commit by %s = %v (ok %v), want a new one", write.name, m, ok)
		}
		prev = m
	}
}

// TestWALIndexTorn: a header whose two copies differ (a commit writing them) or that is not
// initialised is reported as unknown, not as a mark.
func TestWALIndexTorn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	hdr := make([]byte, walIndexMapSize)
	binary.LittleEndian.PutUint32(hdr[8:], 7) // iChange
	hdr[12] = 1                               // isInit
	copy(hdr[walIndexHdrSize:], hdr[:walIndexHdrSize])
	for _, tc := range []struct {
		name   string
		change func(b []byte)
		ok     bool
	}{
		{"whole", func([]byte) {}, true},
		{"torn", func(b []byte) { b[walIndexHdrSize+8] = 8 }, false},
		{"not initialised", func(b []byte) { b[12], b[walIndexHdrSize+12] = 0, 0 }, false},
	} {
		b := append([]byte(nil), hdr...)
		tc.change(b)
		if err := os.WriteFile(path+"-shm", b, 0o600); err != nil {
			t.Fatal(err)
		}
		wi, err := openWALIndex(path)
		if err != nil {
			t.Fatalf("%s: openWALIndex: %v", tc.name, err)
		}
		if _, ok := wi.mark(); ok != tc.ok {
			t.Errorf("%s: mark ok = %v, want %v", tc.name, ok, tc.ok)
		}
		wi.close()
	}
}

// TestLocateOtherProcess: a tracker process that located a key sees a copy added by another
// process on the same file, or removed by a plain SQL statement, in its very next Locate.
func TestLocateOtherProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s := openTest(t, path)
	d, err := s.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: helperKey, DevIDs: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: helperKey, Length: 1}, DevIDs: []int{1}}); err != nil {
		t.Fatal(err)
	}
	locate := func(want []int) {
		t.Helper()
		for range 2 { // the second read comes from the cache
			loc, err := s.Locate(ctx, d.ID, helperKey)
			if err != nil || !reflect.DeepEqual(loc.DevIDs, want) {
				t.Fatalf("Locate(%q) = %+v, %v; want devices %v", helperKey, loc, err, want)
			}
		}
	}
	locate([]int{1})
	testutil.StartChild(t, helperEnv+"="+path).Wait(t) // the other process; its errors go to the test's output
	locate([]int{1, 2})

	// Any program's change counts, not only a tracker's: a plain statement on a connection of its own.
	db, err := openDB(path, DefaultBusyTimeout, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DELETE FROM file_on WHERE fid = ? AND devid = 1", fid); err != nil {
		t.Fatal(err)
	}
	locate([]int{2})
}

// TestOpenChangesMapsTheLiveIndex: the Locate cache watches the -shm file SQLite writes, also when
// the database path is a symbolic link to the file (SQLite names the -shm after the file it
// resolved): the mark moves with a commit.
func TestOpenChangesMapsTheLiveIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{real, link} {
		s := openTest(t, path)
		w, err := openDB(path, DefaultBusyTimeout, false)
		if err != nil {
			t.Fatal(err)
		}
		ch, closeChanges, err := openChanges(ctx, path, DefaultBusyTimeout, w, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("openChanges(%s): %v", path, err)
		}
		if ch.Mark == nil {
			t.Fatalf("openChanges(%s): no commit mark; the cache would read the database on every Locate", path)
		}
		m0, ok := ch.Mark()
		if _, err := s.CreateDomain(ctx, "d"+filepath.Base(path)); err != nil {
			t.Fatal(err)
		}
		if m, ok1 := ch.Mark(); !ok || !ok1 || m == m0 {
			t.Errorf("openChanges(%s): mark did not move with a commit", path)
		}
		closeChanges()
		w.Close()
	}
}
