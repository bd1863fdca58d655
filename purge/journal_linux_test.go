//go:build linux

package purge

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// An append that fails part-way (a full disk) leaves part of a line in the journal file. The next
// append must start on a line of its own: glued to the fragment, the purge it records would be
// unreadable at the next start, although its reply said "queued".
//
// The short write comes from RLIMIT_FSIZE, which the kernel applies to the whole process, so this
// test does not run in parallel: top-level parallel tests wait until every sequential one is done.
// The Go runtime ignores the SIGXFSZ that comes with it.
func TestJournalAppendAfterShortWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, JournalFile)
	j := openTestJournal(t, dir, "a:1")
	if _, err := j.add("a:1", "/one", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
		}
	}
	t.Cleanup(restore)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(fi.Size()) + 10, Max: old.Max}); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
	}
	_, err = j.add("a:1", "/two", false, time.Now())
	restore()
	if err == nil {
		t.Fatal("add past RLIMIT_FSIZE succeeded, want an error")
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size()+10 {
		t.Fatalf("journal grew by %d bytes on the failed append, want the 10 allowed (a torn line)", fi2.Size()-fi.Size())
	}
	if added, err := j.add("a:1", "/three", false, time.Now()); err != nil || !added {
		t.Fatalf("add after the failure = %v, %v; want added", added, err)
	}
	j2 := openTestJournal(t, dir, "a:1")
	if got, want := keys(j2.forPeer("a:1")), []string{"/one", "/three"}; !slices.Equal(got, want) {
		t.Errorf("reloaded forPeer(a:1) = %q, want %q", got, want)
	}
}
