package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

func testTempfiles(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	in := store.Tempfile{DomainID: d.ID, ClassID: 0, Key: "k", DevIDs: []int{3, 1, 12}, CreateTime: 1000}
	fid, err := s.CreateTempfile(ctx, in)
	must(t, "CreateTempfile", err)
	if fid <= 0 {
		t.Fatalf("CreateTempfile() = %d, want a positive fid", fid)
	}
	got, err := s.Tempfile(ctx, fid)
	must(t, "Tempfile", err)
	in.Fid = fid
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("Tempfile(%d) = %+v, want %+v", fid, got, in)
	}
	fid2, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, CreateTime: 5000})
	must(t, "CreateTempfile(no key)", err)
	if fid2 <= fid {
		t.Fatalf("second fid %d, want > %d", fid2, fid)
	}
	now, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "now"})
	must(t, "CreateTempfile(now)", err)
	nt, err := s.Tempfile(ctx, now)
	must(t, "Tempfile", err)
	if nt.CreateTime < 1600000000 {
		t.Fatalf("CreateTime of a tempfile created with 0 = %d, want the current time", nt.CreateTime)
	}
	stale, err := s.StaleTempfiles(ctx, 5000, 10)
	must(t, "StaleTempfiles", err)
	if len(stale) != 1 || stale[0].Fid != fid {
		t.Fatalf("StaleTempfiles(5000) = %+v, want fid %d only", stale, fid)
	}
	stale, err = s.StaleTempfiles(ctx, 5001, 1)
	must(t, "StaleTempfiles", err)
	if len(stale) != 1 || stale[0].Fid != fid {
		t.Fatalf("StaleTempfiles(5001, limit 1) = %+v, want fid %d", stale, fid)
	}
	must(t, "DeleteTempfile", s.DeleteTempfile(ctx, fid))
	must(t, "DeleteTempfile(again)", s.DeleteTempfile(ctx, fid))
	_, err = s.Tempfile(ctx, fid)
	wantErr(t, "Tempfile(deleted)", err, store.ErrNotFound)
}

// testFidsNeverReused checks that fids keep growing across deletes, commits of explicit fids and
// re-opening the database.
func testFidsNeverReused(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := open(t)
	d := domain(t, ctx, s, "d")
	seen := map[int64]bool{}
	var last int64
	next := func(s store.Store) int64 {
		t.Helper()
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "k"})
		must(t, "CreateTempfile", err)
		if seen[fid] || fid <= last {
			t.Fatalf("CreateTempfile() = %d after %d: reused or not increasing", fid, last)
		}
		seen[fid], last = true, fid
		return fid
	}
	for i := 0; i < 5; i++ {
		fid := next(s)
		_, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: fmt.Sprint("k", i)}, DevIDs: []int{1}})
		must(t, "CommitFile", err)
	}
	// Abandoned and deleted uploads do not give their fids back.
	for i := 0; i < 3; i++ {
		fid := next(s)
		must(t, "DeleteTempfile", s.DeleteTempfile(ctx, fid))
		must(t, "ForgetFid", s.ForgetFid(ctx, fid))
	}
	_, err := s.DeleteFile(ctx, d.ID, "k4")
	must(t, "DeleteFile", err)
	must(t, "ForgetFid", s.ForgetFid(ctx, last-3))
	// A file committed with an explicit fid far ahead pushes allocation past it.
	const far = 100000
	_, err = s.CreateTempfile(ctx, store.Tempfile{Fid: far, DomainID: d.ID, Key: "far"})
	must(t, "CreateTempfile(explicit)", err)
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: far, DomainID: d.ID, Key: "far"}, DevIDs: []int{1}})
	must(t, "CommitFile(far)", err)
	seen[far], last = true, far
	next(s)
	must(t, "Close", s.Close())

	s2 := newStore(t, open)
	max, err := s2.MaxFid(ctx)
	must(t, "MaxFid", err)
	if max != far {
		t.Fatalf("MaxFid() after re-open = %d, want %d", max, far)
	}
	for i := 0; i < 3; i++ {
		next(s2)
	}
	// Fids at or below the highest committed fid at open are refused when asked for explicitly.
	_, err = s2.CreateTempfile(ctx, store.Tempfile{Fid: far - 1, DomainID: d.ID, Key: "low"})
	wantErr(t, "CreateTempfile(fid below MaxFid at open)", err, store.ErrFidInUse)
}

// testFidFloorQueued checks that a fid queued for deletion is never handed out again, though it is
// no longer a file: the delete worker would remove the paths it names, which are the new upload's.
// The floor read at open covers it (an explicit fid at or below it is refused), and so does the
// check of an explicit fid queued after open.
func testFidFloorQueued(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := open(t)
	d := domain(t, ctx, s, "d")
	queue := func(s store.Store, fid int64, key string) {
		t.Helper()
		_, err := s.CreateTempfile(ctx, store.Tempfile{Fid: fid, DomainID: d.ID, Key: key})
		must(t, "CreateTempfile(explicit)", err)
		_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: key}, DevIDs: []int{1}})
		must(t, "CommitFile", err)
		_, err = s.DeleteFile(ctx, d.ID, key)
		must(t, "DeleteFile", err)
	}
	queue(s, 500, "a")
	must(t, "Close", s.Close())

	s2 := newStore(t, open)
	for _, fid := range []int64{400, 500} {
		_, err := s2.CreateTempfile(ctx, store.Tempfile{Fid: fid, DomainID: d.ID, Key: "low"})
		wantErr(t, fmt.Sprintf("CreateTempfile(Fid %d) at or below fid 500 queued for deletion at open", fid), err, store.ErrFidInUse)
	}
	queue(s2, 600, "b")
	_, err := s2.CreateTempfile(ctx, store.Tempfile{Fid: 600, DomainID: d.ID, Key: "again"})
	wantErr(t, "CreateTempfile(Fid 600) queued for deletion", err, store.ErrFidInUse)
	fid, err := s2.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "auto"})
	must(t, "CreateTempfile", err)
	if fid <= 600 {
		t.Fatalf("CreateTempfile() after fid 600 was queued for deletion = %d, want > 600", fid)
	}
}

func testExplicitFid(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	fid, err := s.CreateTempfile(ctx, store.Tempfile{Fid: 500, DomainID: d.ID, Key: "a"})
	must(t, "CreateTempfile(500)", err)
	if fid != 500 {
		t.Fatalf("CreateTempfile(Fid 500) = %d, want 500", fid)
	}
	_, err = s.CreateTempfile(ctx, store.Tempfile{Fid: 500, DomainID: d.ID, Key: "b"})
	wantErr(t, "CreateTempfile(500) while open", err, store.ErrFidInUse)
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: 500, DomainID: d.ID, Key: "a"}, DevIDs: []int{1}})
	must(t, "CommitFile(500)", err)
	_, err = s.CreateTempfile(ctx, store.Tempfile{Fid: 500, DomainID: d.ID, Key: "c"})
	wantErr(t, "CreateTempfile(500) once committed", err, store.ErrFidInUse)
	auto, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "d"})
	must(t, "CreateTempfile(auto)", err)
	if auto <= 500 {
		t.Fatalf("CreateTempfile() after fid 500 = %d, want > 500", auto)
	}
}

func testCommitFile(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	cls, err := s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "c", MinDevCount: 2, HashType: 1})
	must(t, "CreateClass", err)
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, ClassID: cls.ID, Key: "a/b.jpg", DevIDs: []int{1, 2}})
	must(t, "CreateTempfile", err)
	sum := []byte{0x00, 0xff, 0x10, 0x20, 0x80, 0x7f, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
	replaced, err := s.CommitFile(ctx, store.Commit{
		File:      store.File{Fid: fid, DomainID: d.ID, ClassID: cls.ID, Key: "a/b.jpg", Length: 5 << 30, DevCount: 9},
		DevIDs:    []int{2, 1},
		Checksum:  &store.Checksum{Fid: fid, Type: 1, Sum: sum},
		Replicate: true,
	})
	must(t, "CommitFile", err)
	if replaced != 0 {
		t.Fatalf("CommitFile() of a new key replaced %d, want 0", replaced)
	}
	want := store.File{Fid: fid, DomainID: d.ID, ClassID: cls.ID, Key: "a/b.jpg", Length: 5 << 30, DevCount: 2}
	f, err := s.FileByKey(ctx, d.ID, "a/b.jpg")
	must(t, "FileByKey", err)
	if f != want {
		t.Fatalf("FileByKey() = %+v, want %+v", f, want)
	}
	f, err = s.FileByFid(ctx, fid)
	must(t, "FileByFid", err)
	if f != want {
		t.Fatalf("FileByFid(%d) = %+v, want %+v", fid, f, want)
	}
	on, err := s.FileOn(ctx, fid)
	must(t, "FileOn", err)
	if !reflect.DeepEqual(on, []int{1, 2}) {
		t.Fatalf("FileOn(%d) = %v, want [1 2]", fid, on)
	}
	c, err := s.Checksum(ctx, fid)
	must(t, "Checksum", err)
	if c.Fid != fid || c.Type != 1 || !bytes.Equal(c.Sum, sum) {
		t.Fatalf("Checksum(%d) = %+v, want type 1 sum %x", fid, c, sum)
	}
	_, err = s.Tempfile(ctx, fid)
	wantErr(t, "Tempfile after commit", err, store.ErrNotFound)
	j, err := s.QueueJobs(ctx, store.QueueReplicate, fid)
	must(t, "QueueJobs(replicate)", err)
	if j != (store.Job{Fid: fid}) {
		t.Fatalf("replication job = %+v, want fid %d due now", j, fid)
	}
	_, err = s.FileByKey(ctx, d.ID, "A/B.JPG")
	wantErr(t, "FileByKey(other case)", err, store.ErrNotFound)
	_, err = s.FileByKey(ctx, d.ID+1, "a/b.jpg")
	wantErr(t, "FileByKey(other domain)", err, store.ErrNotFound)
	_, err = s.FileByFid(ctx, fid+1000)
	wantErr(t, "FileByFid(missing)", err, store.ErrNotFound)

	// Committing the same fid again finds no tempfile row, is refused and changes nothing.
	for _, key := range []string{"a/b.jpg", "elsewhere"} {
		_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: key}, DevIDs: []int{3}})
		wantErr(t, "CommitFile(same fid again as "+key+")", err, store.ErrNotFound)
	}
	on, err = s.FileOn(ctx, fid)
	must(t, "FileOn", err)
	if !reflect.DeepEqual(on, []int{1, 2}) {
		t.Fatalf("FileOn(%d) after a refused commit = %v, want [1 2]", fid, on)
	}
	_, err = s.FileByKey(ctx, d.ID, "elsewhere")
	wantErr(t, "FileByKey(elsewhere) after a refused commit", err, store.ErrNotFound)
	f, err = s.FileByFid(ctx, fid)
	must(t, "FileByFid", err)
	if f != want {
		t.Fatalf("FileByFid(%d) after a refused commit = %+v, want %+v", fid, f, want)
	}

	// A fid that never had a tempfile row cannot be committed.
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid + 1000, DomainID: d.ID, Key: "never-opened"}, DevIDs: []int{1}})
	wantErr(t, "CommitFile(fid never opened)", err, store.ErrNotFound)
	_, err = s.FileByKey(ctx, d.ID, "never-opened")
	wantErr(t, "FileByKey(never-opened)", err, store.ErrNotFound)

	// Without Replicate and Checksum nothing is queued or stored.
	fid2, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "plain"})
	must(t, "CreateTempfile", err)
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid2, DomainID: d.ID, Key: "plain", Length: 0}, DevIDs: []int{4}})
	must(t, "CommitFile(plain)", err)
	_, err = s.QueueJobs(ctx, store.QueueReplicate, fid2)
	wantErr(t, "QueueJobs(replicate) without Replicate", err, store.ErrNotFound)
	_, err = s.Checksum(ctx, fid2)
	wantErr(t, "Checksum without one", err, store.ErrNotFound)
}

func testCommitReplacesKey(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	other := domain(t, ctx, s, "other")
	old := upload(t, ctx, s, d.ID, "key", 10, 1, 2)
	same := upload(t, ctx, s, other.ID, "key", 3, 1)
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "key", DevIDs: []int{3}})
	must(t, "CreateTempfile", err)
	replaced, err := s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: "key", Length: 20}, DevIDs: []int{3}})
	must(t, "CommitFile(overwrite)", err)
	if replaced != old {
		t.Fatalf("CommitFile() over fid %d replaced %d", old, replaced)
	}
	f, err := s.FileByKey(ctx, d.ID, "key")
	must(t, "FileByKey", err)
	if f.Fid != fid || f.Length != 20 || f.DevCount != 1 {
		t.Fatalf("FileByKey() after overwrite = %+v, want fid %d length 20 devcount 1", f, fid)
	}
	_, err = s.FileByFid(ctx, old)
	wantErr(t, "FileByFid(replaced)", err, store.ErrNotFound)
	j, err := s.QueueJobs(ctx, store.QueueDelete, old)
	must(t, "QueueJobs(delete, old fid)", err)
	if j.Fid != old || j.NextTry != 0 {
		t.Fatalf("delete job of the replaced fid = %+v, want fid %d due now", j, old)
	}
	// The replaced fid's copies stay listed until the delete worker forgets them.
	on, err := s.FileOn(ctx, old)
	must(t, "FileOn(old)", err)
	if !reflect.DeepEqual(on, []int{1, 2}) {
		t.Fatalf("FileOn(replaced) = %v, want [1 2]", on)
	}
	// The other domain's key is untouched.
	f, err = s.FileByKey(ctx, other.ID, "key")
	must(t, "FileByKey(other domain)", err)
	if f.Fid != same {
		t.Fatalf("FileByKey(other domain) = %+v, want fid %d", f, same)
	}
	n, err := s.QueueLen(ctx, store.QueueDelete)
	must(t, "QueueLen(delete)", err)
	if n != 1 {
		t.Fatalf("QueueLen(delete) = %d, want 1", n)
	}
}

// oddKeys are keys a byte-exact store must keep apart and return unchanged.
var oddKeys = []string{
	"foo", "Foo", "FOO", "foo ", " foo", "foo\t", "foö", "foo\u00a0", "f\u00f6o", "fo\u0308o",
	"日本語/ключ", "emoji-😀", "a%b", "a_b", "a\\b", "a'b", "a\"b", "a;b", "0", "a\nb", "\x01\x7f",
	"\xff\xfe", "\xc3\x28", "latin1-\xe9",
}

func testByteExactKeys(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	fids := map[string]int64{}
	for i, k := range oddKeys {
		fids[k] = upload(t, ctx, s, d.ID, k, int64(i), 1)
	}
	for i, k := range oddKeys {
		f, err := s.FileByKey(ctx, d.ID, k)
		must(t, fmt.Sprintf("FileByKey(%q)", k), err)
		if f.Key != k || f.Fid != fids[k] || f.Length != int64(i) {
			t.Errorf("FileByKey(%q) = %+v, want key %q fid %d", k, f, k, fids[k])
		}
		f, err = s.FileByFid(ctx, fids[k])
		must(t, "FileByFid", err)
		if f.Key != k {
			t.Errorf("FileByFid(%d).Key = %q, want %q", fids[k], f.Key, k)
		}
	}
	keys, err := s.ListKeys(ctx, d.ID, "", "", 1000)
	must(t, "ListKeys", err)
	if len(keys) != len(oddKeys) {
		t.Fatalf("ListKeys() = %q, want %d keys", keys, len(oddKeys))
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("ListKeys() not in byte order at %d: %q >= %q", i, keys[i-1], keys[i])
		}
	}
	// Tempfile keys round-trip too.
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: "\xff\xfe tmp"})
	must(t, "CreateTempfile", err)
	tf, err := s.Tempfile(ctx, fid)
	must(t, "Tempfile", err)
	if tf.Key != "\xff\xfe tmp" {
		t.Fatalf("Tempfile(%d).Key = %q, want %q", fid, tf.Key, "\xff\xfe tmp")
	}
}

func testLongKeys(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	max := strings.Repeat("k", store.MaxKeyLen)
	upload(t, ctx, s, d.ID, max, 1, 1)
	f, err := s.FileByKey(ctx, d.ID, max)
	must(t, "FileByKey(255 bytes)", err)
	if f.Key != max {
		t.Fatalf("FileByKey(255 bytes).Key has %d bytes", len(f.Key))
	}
	long := max + "x"
	if _, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: long}); err == nil {
		t.Fatalf("CreateTempfile(256-byte key) succeeded, want an error")
	}
	fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID})
	must(t, "CreateTempfile", err)
	_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: long}, DevIDs: []int{1}})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CommitFile(256-byte key) = %v, want a failure", err)
	}
	// Multi-byte characters count in bytes: 86 three-byte runes are 258 bytes.
	if _, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: strings.Repeat("語", 86)}); err == nil {
		t.Fatalf("CreateTempfile(258-byte UTF-8 key) succeeded, want an error")
	}
	_, err = s.FileByKey(ctx, d.ID, long)
	wantErr(t, "FileByKey(256 bytes)", err, store.ErrNotFound)
	if err := s.RenameFile(ctx, d.ID, max, long); err == nil {
		t.Fatalf("RenameFile to a 256-byte key succeeded, want an error")
	}
}

func testListKeys(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	other := domain(t, ctx, s, "other")
	keys := []string{"a", "a%b", "a\\b", "a\\c", "a_b", "a_c", "aXb", "ab", "abc", "abd", "b", "B", "ab\xff", "ab\xff\xff"}
	for _, k := range keys {
		upload(t, ctx, s, d.ID, k, 1, 1)
	}
	upload(t, ctx, s, other.ID, "a_z", 1, 1)
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 100, []string{"B", "a", "a%b", "aXb", "a\\b", "a\\c", "a_b", "a_c", "ab", "abc", "abd", "ab\xff", "ab\xff\xff", "b"}},
		{"a_", "", 100, []string{"a_b", "a_c"}},
		{"a%", "", 100, []string{"a%b"}},
		{"a\\", "", 100, []string{"a\\b", "a\\c"}},
		{"ab", "", 100, []string{"ab", "abc", "abd", "ab\xff", "ab\xff\xff"}},
		{"ab", "a", 100, []string{"ab", "abc", "abd", "ab\xff", "ab\xff\xff"}},
		{"ab", "", 2, []string{"ab", "abc"}},
		{"ab", "ab\xff", 2, []string{"ab\xff\xff"}},
		{"ab\xff", "", 100, []string{"ab\xff", "ab\xff\xff"}},
		{"ab", "abd", 100, []string{"ab\xff", "ab\xff\xff"}},
		{"ab", "ab\xff\xff", 100, nil},
		{"A", "", 100, nil},
		{"c", "", 100, nil},
		{"", "abc", 3, []string{"abd", "ab\xff", "ab\xff\xff"}},
		{"a", "a\\c", 3, []string{"a_b", "a_c", "ab"}},
		{"", "", 0, nil},
	} {
		got, err := s.ListKeys(ctx, d.ID, tc.prefix, tc.after, tc.limit)
		must(t, "ListKeys", err)
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListKeys(%q, %q, %d) = %q, want %q", tc.prefix, tc.after, tc.limit, got, tc.want)
		}
	}
}

func testFileOps(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	a := upload(t, ctx, s, d.ID, "a", 1, 1)
	b := upload(t, ctx, s, d.ID, "b", 2, 1)
	c := upload(t, ctx, s, d.ID, "0", 3, 1)

	wantErr(t, "RenameFile(to existing)", s.RenameFile(ctx, d.ID, "a", "b"), store.ErrExists)
	wantErr(t, "RenameFile(missing)", s.RenameFile(ctx, d.ID, "zzz", "y"), store.ErrNotFound)
	must(t, "RenameFile(to itself)", s.RenameFile(ctx, d.ID, "a", "a"))
	must(t, "RenameFile", s.RenameFile(ctx, d.ID, "a", "A"))
	f, err := s.FileByKey(ctx, d.ID, "A")
	must(t, "FileByKey(renamed)", err)
	if f.Fid != a {
		t.Fatalf("FileByKey(renamed) = %+v, want fid %d", f, a)
	}
	_, err = s.FileByKey(ctx, d.ID, "a")
	wantErr(t, "FileByKey(old name)", err, store.ErrNotFound)

	must(t, "SetFileClass", s.SetFileClass(ctx, b, 3))
	f, err = s.FileByFid(ctx, b)
	must(t, "FileByFid", err)
	if f.ClassID != 3 {
		t.Fatalf("ClassID after SetFileClass = %d, want 3", f.ClassID)
	}
	if _, err := s.QueueJobs(ctx, store.QueueReplicate, b); err != nil {
		t.Fatalf("QueueJobs(replicate) after SetFileClass: %v", err)
	}
	wantErr(t, "SetFileClass(missing)", s.SetFileClass(ctx, 999999, 1), store.ErrNotFound)

	got, err := s.DeleteFile(ctx, d.ID, "0")
	must(t, "DeleteFile", err)
	if got.Fid != c || got.Key != "0" || got.Length != 3 {
		t.Fatalf("DeleteFile() = %+v, want fid %d", got, c)
	}
	_, err = s.FileByKey(ctx, d.ID, "0")
	wantErr(t, "FileByKey(deleted)", err, store.ErrNotFound)
	j, err := s.QueueJobs(ctx, store.QueueDelete, c)
	must(t, "QueueJobs(delete)", err)
	if j.Fid != c {
		t.Fatalf("delete job = %+v", j)
	}
	_, err = s.DeleteFile(ctx, d.ID, "0")
	wantErr(t, "DeleteFile(deleted)", err, store.ErrNotFound)

	fs, err := s.ListFids(ctx, 0, 10)
	must(t, "ListFids", err)
	if len(fs) != 2 || fs[0].Fid != a || fs[1].Fid != b || fs[0].Key != "A" {
		t.Fatalf("ListFids(0, 10) = %+v, want fids %d (A), %d", fs, a, b)
	}
	fs, err = s.ListFids(ctx, a, 1)
	must(t, "ListFids", err)
	if len(fs) != 1 || fs[0].Fid != b {
		t.Fatalf("ListFids(%d, 1) = %+v, want fid %d", a, fs, b)
	}
	max, err := s.MaxFid(ctx)
	must(t, "MaxFid", err)
	if max != b {
		t.Fatalf("MaxFid() = %d, want %d", max, b)
	}
}

func testFileOn(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	fid := upload(t, ctx, s, d.ID, "k", 1, 5)
	devcount := func(want int) {
		t.Helper()
		f, err := s.FileByFid(ctx, fid)
		must(t, "FileByFid", err)
		if f.DevCount != want {
			t.Fatalf("DevCount = %d, want %d", f.DevCount, want)
		}
	}
	devcount(1)
	must(t, "AddFileOn", s.AddFileOn(ctx, fid, 7))
	must(t, "AddFileOn(again)", s.AddFileOn(ctx, fid, 7))
	must(t, "AddFileOn", s.AddFileOn(ctx, fid, 2))
	devcount(3)
	on, err := s.FileOn(ctx, fid)
	must(t, "FileOn", err)
	if !reflect.DeepEqual(on, []int{2, 5, 7}) {
		t.Fatalf("FileOn() = %v, want [2 5 7]", on)
	}
	must(t, "RemoveFileOn", s.RemoveFileOn(ctx, fid, 5))
	must(t, "RemoveFileOn(again)", s.RemoveFileOn(ctx, fid, 5))
	devcount(2)

	other := upload(t, ctx, s, d.ID, "k2", 1, 7)
	third := upload(t, ctx, s, d.ID, "k3", 1, 7)
	got, err := s.FidsOnDevice(ctx, 7, 0, 10)
	must(t, "FidsOnDevice", err)
	if !reflect.DeepEqual(got, []int64{fid, other, third}) {
		t.Fatalf("FidsOnDevice(7) = %v, want %v", got, []int64{fid, other, third})
	}
	got, err = s.FidsOnDevice(ctx, 7, fid, 1)
	must(t, "FidsOnDevice", err)
	if !reflect.DeepEqual(got, []int64{other}) {
		t.Fatalf("FidsOnDevice(7, after %d, 1) = %v, want [%d]", fid, got, other)
	}

	// ForgetFid drops file_on, checksum and tempfile rows of a deleted fid.
	must(t, "SetChecksum", s.SetChecksum(ctx, store.Checksum{Fid: fid, Type: 2, Sum: bytes.Repeat([]byte{9}, 20)}))
	_, err = s.DeleteFile(ctx, d.ID, "k")
	must(t, "DeleteFile", err)
	must(t, "ForgetFid", s.ForgetFid(ctx, fid))
	on, err = s.FileOn(ctx, fid)
	must(t, "FileOn", err)
	if len(on) != 0 {
		t.Fatalf("FileOn() after ForgetFid = %v", on)
	}
	_, err = s.Checksum(ctx, fid)
	wantErr(t, "Checksum after ForgetFid", err, store.ErrNotFound)
	// Removing copies of a fid with no file row (being deleted) is fine.
	must(t, "AddFileOn(no file row)", s.AddFileOn(ctx, fid, 1))
	must(t, "RemoveFileOn(no file row)", s.RemoveFileOn(ctx, fid, 1))
}

func testChecksums(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	_, err := s.Checksum(ctx, 42)
	wantErr(t, "Checksum(missing)", err, store.ErrNotFound)
	md5 := store.Checksum{Fid: 42, Type: 1, Sum: []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\xff")}
	must(t, "SetChecksum", s.SetChecksum(ctx, md5))
	got, err := s.Checksum(ctx, 42)
	must(t, "Checksum", err)
	if !reflect.DeepEqual(got, md5) {
		t.Fatalf("Checksum(42) = %+v, want %+v", got, md5)
	}
	sha := store.Checksum{Fid: 42, Type: 2, Sum: bytes.Repeat([]byte{0xab}, 20)}
	must(t, "SetChecksum(replace)", s.SetChecksum(ctx, sha))
	got, err = s.Checksum(ctx, 42)
	must(t, "Checksum", err)
	if !reflect.DeepEqual(got, sha) {
		t.Fatalf("Checksum(42) after replace = %+v, want %+v", got, sha)
	}
}
