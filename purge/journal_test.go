package purge

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func openTestJournal(t *testing.T, dir string, peers ...string) *journal {
	t.Helper()
	return openLimitedJournal(t, dir, 0, peers...)
}

func openLimitedJournal(t *testing.T, dir string, limit int, peers ...string) *journal {
	t.Helper()
	known := func(p string) bool {
		for _, k := range peers {
			if k == p {
				return true
			}
		}
		return false
	}
	j, err := openJournal(dir, limit, known, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("openJournal(%s): %v", dir, err)
	}
	return j
}

func keys(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

func fileLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	return bytes.Count(data, []byte("\n"))
}

func TestJournalReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "purge")
	j := openTestJournal(t, dir, "a:1", "b:1")
	at := time.Unix(1_800_000_000, 0)
	for _, e := range []struct{ peer, key string }{{"a:1", "/x"}, {"b:1", "/y"}, {"a:1", "/z*"}, {"a:1", "/x"}} {
		if _, err := j.add(e.peer, e.key, false, at); err != nil {
			t.Fatalf("add(%s, %s): %v", e.peer, e.key, err)
		}
	}
	if added, _ := j.add("a:1", "/s", true, at); !added {
		t.Errorf("add(a:1, /s, soft) was not added, want added")
	}
	if added, _ := j.add("a:1", "/x", true, at); added {
		t.Errorf("add of a soft purge covered by a pending hard one was added, want it skipped")
	}
	if n := j.len(); n != 4 {
		t.Fatalf("len() after covered adds = %d, want 4", n)
	}
	first := j.forPeer("a:1")[0]
	if err := j.delivered(first.ID); err != nil {
		t.Fatalf("delivered: %v", err)
	}

	j2 := openTestJournal(t, dir, "a:1", "b:1")
	if got, want := keys(j2.forPeer("a:1")), []string{"/z*", "/s"}; !slices.Equal(got, want) {
		t.Errorf("reloaded forPeer(a:1) = %q, want %q", got, want)
	}
	if got := j2.forPeer("a:1"); !got[1].Soft || !got[0].At.Equal(at) {
		t.Errorf("reloaded entries = %+v, want the soft flag and time kept", got)
	}
	if got, want := keys(j2.forPeer("b:1")), []string{"/y"}; !slices.Equal(got, want) {
		t.Errorf("reloaded forPeer(b:1) = %q, want %q", got, want)
	}
	j2.add("b:1", "/new", false, at)
	if es := j2.forPeer("b:1"); es[1].ID <= 4 {
		t.Errorf("new entry after reload has ID %d, want IDs never reused (> 4)", es[1].ID)
	}

	// A peer removed from the configuration loses its entries.
	j3 := openTestJournal(t, dir, "a:1")
	if n := j3.len(); n != 2 {
		t.Errorf("len() after dropping peer b:1 = %d, want 2", n)
	}
}

func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, "a:1")
	j.add("a:1", "/one", false, time.Now())
	j.add("a:1", "/two", false, time.Now())
	path := filepath.Join(dir, JournalFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"add":{"id":3,"peer":"a:1","ke`) // a crash mid-append
	f.Close()

	j2 := openTestJournal(t, dir, "a:1")
	if got, want := keys(j2.forPeer("a:1")), []string{"/one", "/two"}; !slices.Equal(got, want) {
		t.Errorf("forPeer after torn tail = %q, want %q", got, want)
	}
	j2.add("a:1", "/three", false, time.Now())
	j3 := openTestJournal(t, dir, "a:1")
	if got, want := keys(j3.forPeer("a:1")), []string{"/one", "/two", "/three"}; !slices.Equal(got, want) {
		t.Errorf("forPeer after append past a torn tail = %q, want %q", got, want)
	}
}

func TestJournalCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, JournalFile)
	j := openTestJournal(t, dir, "a:1")
	j.add("a:1", "/keep", false, time.Now())
	for i := range 3 * compactAfter {
		key := "/k" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		if _, err := j.add("a:1", key, false, time.Now()); err != nil {
			t.Fatal(err)
		}
		es := j.forPeer("a:1")
		if err := j.delivered(es[len(es)-1].ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := fileLines(t, path); n > 2*compactAfter+2 {
		t.Errorf("journal has %d lines with 1 entry pending, want it compacted to at most %d", n, 2*compactAfter+2)
	}
	if err := j.delivered(j.forPeer("a:1")[0].ID); err != nil {
		t.Fatal(err)
	}
	if n := fileLines(t, path); n != 0 {
		t.Errorf("journal has %d lines with nothing pending, want 0", n)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("journal dir holds %d files, want only %s (no temp files left)", len(entries), JournalFile)
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"add":{"id":1,"peer":"a:1","key":"/x","at":"2026-01-01T00:00:00Z"}}` + "\n" + `{"done":1}` + "\n"))
	f.Add([]byte(`{"add":{"id":2,"peer":"a:1","key":"/y"}}` + "\n" + `{"add":{"id":2,"peer":"b:1","key":"/z"}}`))
	f.Add([]byte("{}\n{\"done\":0}\nnot json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pending, maxID, _ := parseJournal(data)
		seen := map[uint64]bool{}
		for _, e := range pending {
			if e.ID == 0 || e.ID > maxID || seen[e.ID] || e.Peer == "" || e.Key == "" {
				t.Fatalf("parseJournal(%q) pending %+v (maxID %d)", data, pending, maxID)
			}
			seen[e.ID] = true
		}
	})
}

func TestCovers(t *testing.T) {
	tests := []struct {
		a     string
		aSoft bool
		b     string
		bSoft bool
		want  bool
	}{
		{"/x", false, "/x", false, true},
		{"/x", false, "/x", true, true},
		{"/x", true, "/x", false, false},
		{"/x", true, "/x", true, true},
		{"/x", false, "/y", false, false},
		{"/x", false, "/x*", false, false},
		{"/img/*", false, "/img/a.jpg", false, true},
		{"/img/*", false, "/img/sub/*", false, true},
		{"/img/*", false, "/im*", false, false},
		{"/img/*", false, "/*", false, false},
		{"/img/*", true, "/img/a.jpg", false, false},
		{"/*", false, "/anything", false, true},
		{"/*", false, "/*", true, true},
		{"/*", true, "/*", false, false},
		{"/*", true, "/a", true, true},
		// Tags: a tag covers only the same tag, and only "/*" covers a tag.
		{"tag:x", false, "tag:x", false, true},
		{"tag:x", false, "tag:x", true, true},
		{"tag:x", true, "tag:x", false, false},
		{"tag:x", false, "tag:y", false, false},
		{"/*", false, "tag:x", false, true},
		{"/img/*", false, "tag:x", false, false},
		{"tag:x", false, "/img/a.jpg", false, false},
		{"tag:/img/a.jpg", false, "/img/a.jpg", false, false},
	}
	for _, tt := range tests {
		if got := covers(tt.a, tt.aSoft, tt.b, tt.bSoft); got != tt.want {
			t.Errorf("covers(%q soft=%v, %q soft=%v) = %v, want %v", tt.a, tt.aSoft, tt.b, tt.bSoft, got, tt.want)
		}
	}
}

type pend struct {
	Key  string
	Soft bool
}

func pendingOf(j *journal, peer string) []pend {
	var out []pend
	for _, e := range j.forPeer(peer) {
		out = append(out, pend{e.Key, e.Soft})
	}
	return out
}

func TestJournalSupersede(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, "a:1", "b:1")
	now := time.Now()
	steps := []struct {
		peer, key string
		soft      bool
		added     bool
		want      []pend // pending for a:1 afterwards
	}{
		{"a:1", "/img/a", false, true, []pend{{"/img/a", false}}},
		{"a:1", "/img/b", true, true, []pend{{"/img/a", false}, {"/img/b", true}}},
		{"b:1", "/img/*", false, true, []pend{{"/img/a", false}, {"/img/b", true}}},
		{"a:1", "/css/x", false, true, []pend{{"/img/a", false}, {"/img/b", true}, {"/css/x", false}}},
		{"a:1", "/img/*", false, true, []pend{{"/css/x", false}, {"/img/*", false}}},
		{"a:1", "/img/c", true, false, []pend{{"/css/x", false}, {"/img/*", false}}},
		{"a:1", "/*", true, true, []pend{{"/css/x", false}, {"/img/*", false}, {"/*", true}}},
		{"a:1", "/css/y", true, false, []pend{{"/css/x", false}, {"/img/*", false}, {"/*", true}}},
		{"a:1", "/*", false, true, []pend{{"/*", false}}},
	}
	for i, st := range steps {
		added, err := j.add(st.peer, st.key, st.soft, now)
		if err != nil || added != st.added {
			t.Fatalf("step %d: add(%s, %s, soft=%v) = %v, %v; want %v", i, st.peer, st.key, st.soft, added, err, st.added)
		}
		if got := pendingOf(j, "a:1"); !reflect.DeepEqual(got, st.want) {
			t.Fatalf("step %d: pending for a:1 = %+v, want %+v", i, got, st.want)
		}
	}
	j2 := openTestJournal(t, dir, "a:1", "b:1")
	if got, want := pendingOf(j2, "a:1"), []pend{{"/*", false}}; !reflect.DeepEqual(got, want) {
		t.Errorf("reloaded pending for a:1 = %+v, want %+v", got, want)
	}
	if got, want := pendingOf(j2, "b:1"), []pend{{"/img/*", false}}; !reflect.DeepEqual(got, want) {
		t.Errorf("reloaded pending for b:1 = %+v, want %+v", got, want)
	}
}

func TestJournalLimit(t *testing.T) {
	j := openLimitedJournal(t, t.TempDir(), 3, "a:1", "b:1")
	now := time.Now()
	for _, k := range []string{"/a", "/b", "/c"} {
		j.add("a:1", k, true, now)
	}
	j.add("b:1", "/a", true, now)
	j.add("b:1", "/b", true, now)
	j.add("b:1", "/hard", false, now)
	j.add("a:1", "/d", true, now)
	if got, want := pendingOf(j, "a:1"), []pend{{"/*", true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending for a:1 over the limit = %+v, want %+v", got, want)
	}
	if got := pendingOf(j, "b:1"); len(got) != 3 {
		t.Fatalf("pending for b:1 at the limit = %+v, want 3 entries", got)
	}
	j.add("b:1", "/e", true, now)
	if got, want := pendingOf(j, "b:1"), []pend{{"/*", false}}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending for b:1 over the limit = %+v, want %+v (a hard purge among them)", got, want)
	}
}
