package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// TestE2EFileEdgeCases runs the client tools against a real tracker and storage nodes with the
// inputs people get wrong or find surprising: empty files, keys with odd bytes, overwrites, paging,
// missing files and missing trackers.
func TestE2EFileEdgeCases(t *testing.T) {
	t.Parallel()
	c := startSQLiteCluster(t, [2]string{"127.0.0.55", "127.0.0.56"})
	tr := "--trackers=" + c.trackerAddr
	dir := t.TempDir()

	t.Run("empty file", func(t *testing.T) {
		empty := filepath.Join(dir, "empty")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		mustMog(t, "upload", tr, "--domain=photos", "--key=empty", "--file="+empty)
		if r := mustMog(t, "info", tr, "--domain=photos", "--key=empty"); infoField(r.stdout, "length") != "0" {
			t.Errorf("%v\nwant length 0", r)
		}
		dst := filepath.Join(dir, "empty.fetched")
		mustMog(t, "fetch", tr, "--domain=photos", "--key=empty", "--file="+dst)
		if st, err := os.Stat(dst); err != nil || st.Size() != 0 {
			t.Errorf("fetch of an empty file: stat %v, %v; want an empty file", st, err)
		}
		if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=empty"); r.stdout != "" {
			t.Errorf("fetch of an empty file to stdout = %q, want nothing", r.stdout)
		}
	})

	t.Run("odd keys", func(t *testing.T) {
		keys := []string{"odd/a b", "odd/a&b=c", "odd/100%", "odd/+plus+", "odd/été ü", "odd/x?y#z", "odd/%2F", "odd/back\\slash"}
		for _, k := range keys {
			if r := mog(t, "body of "+k, "upload", tr, "--domain=photos", "--key="+k); r.code != 0 {
				t.Errorf("%v\nwant exit 0", r)
			}
		}
		for _, k := range keys {
			if r := mog(t, "", "fetch", tr, "--domain=photos", "--key="+k); r.code != 0 || r.stdout != "body of "+k {
				t.Errorf("fetch %q = exit %d, %q, stderr %q; want %q", k, r.code, r.stdout, r.stderr, "body of "+k)
			}
			if r := mog(t, "", "info", tr, "--domain=photos", "--key="+k); r.code != 0 || infoField(r.stdout, "key") != k {
				t.Errorf("info %q = exit %d, key %q; want %q\n%v", k, r.code, infoField(r.stdout, "key"), k, r)
			}
		}
		// Keys compare byte for byte, so the list is in byte order.
		want := "odd/%2F\nodd/+plus+\nodd/100%\nodd/a b\nodd/a&b=c\nodd/back\\slash\nodd/x?y#z\nodd/été ü\n"
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=odd/"); r.stdout != want {
			t.Errorf("ls --key_prefix=odd/ = %q, want %q", r.stdout, want)
		}
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=odd/", "--limit=2"); r.stdout != "odd/%2F\nodd/+plus+\n" {
			t.Errorf("ls --limit=2 = %q, want the first two keys", r.stdout)
		}
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=odd/", "--after=odd/back\\slash"); r.stdout != "odd/x?y#z\nodd/été ü\n" {
			t.Errorf("ls --after = %q, want the last two keys", r.stdout)
		}
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=odd/%"); r.stdout != "odd/%2F\n" {
			t.Errorf("ls --key_prefix=odd/%% = %q, want only the key starting with %%", r.stdout)
		}
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=nothing/"); r.stdout != "" {
			t.Errorf("ls of a prefix with no keys = %q, want nothing", r.stdout)
		}
	})

	// Issue 9 item 5: a key may hold any bytes (docs/tracker.md); output for people keeps each key
	// on one line, --print0 and --json give scripts the exact bytes.
	t.Run("control bytes in keys", func(t *testing.T) {
		keys := []string{"ctl/bad\xff", "ctl/cr\r", "ctl/line\nfeed", "ctl/nul\x00byte", "ctl/plain"} // byte order
		for _, k := range keys {
			mustMog(t, "upload", tr, "--domain=photos", "--key="+k, "--file="+writeFile(t, dir, "ctl", "body of "+k))
		}
		want := `"ctl/bad\xff"` + "\n" + `"ctl/cr\r"` + "\n" + `"ctl/line\nfeed"` + "\n" + `"ctl/nul\x00byte"` + "\nctl/plain\n"
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=ctl/"); r.stdout != want {
			t.Errorf("ls = %q, want %q", r.stdout, want)
		}
		if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=ctl/", "--print0"); r.stdout != strings.Join(keys, "\x00")+"\x00" {
			t.Errorf("ls --print0 = %q, want each key followed by NUL", r.stdout)
		}
		r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=ctl/", "--json")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != len(keys) {
			t.Fatalf("ls --json = %q, want %d lines", r.stdout, len(keys))
		}
		for i, line := range lines {
			var v struct {
				Key    *string `json:"key"`
				Base64 []byte  `json:"key_base64"`
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("ls --json line %q: %v", line, err)
			}
			got := string(v.Base64)
			if v.Key != nil {
				got = *v.Key
			}
			if got != keys[i] || (v.Key == nil) != (i == 0) {
				t.Errorf("ls --json line %q = key %q, want %q (key_base64 only for the invalid UTF-8 one)", line, got, keys[i])
			}
		}
		if r := mog(t, "", "ls", tr, "--domain=photos", "--print0", "--json"); r.code != 2 {
			t.Errorf("%v\nwant exit 2 (usage)", r)
		}
		r = mustMog(t, "info", tr, "--domain=photos", "--key=ctl/line\nfeed")
		if !strings.HasPrefix(r.stdout, `- file: "ctl/line\nfeed"`+"\n") || strings.Contains(r.stdout, "line\nfeed") {
			t.Errorf("info = %q, want the key quoted on one line", r.stdout)
		}
		if r := mog(t, "", "fetch", tr, "--domain=photos", "--key=ctl/nul\x00byte"); r.stdout != "body of ctl/nul\x00byte" {
			t.Errorf("%v\nwant the body", r)
		}
		r = mog(t, "", "debug", tr, "--domain=photos", "--key=ctl/line\nfeed")
		if !strings.Contains(r.stdout, `"ctl/line\nfeed"`) || strings.Contains(r.stdout, "line\nfeed") {
			t.Errorf("%v\nwant the key quoted on one line", r)
		}
		r = mog(t, "", "rm", tr, "--domain=photos", "--key=ctl/gone\nkey")
		if r.code != 1 || !strings.Contains(r.stderr, `rm "ctl/gone\nkey": `) || strings.Contains(r.stderr, "gone\nkey") {
			t.Errorf("%v\nwant exit 1 and the key quoted in the error", r)
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		mustMog(t, "upload", tr, "--domain=photos", "--key=over", "--file="+writeFile(t, dir, "v1", "first version"))
		first := infoField(mustMog(t, "info", tr, "--domain=photos", "--key=over").stdout, "fid")
		mustMog(t, "upload", tr, "--domain=photos", "--key=over", "--file="+writeFile(t, dir, "v2", "second"))
		r := mustMog(t, "info", tr, "--domain=photos", "--key=over")
		if infoField(r.stdout, "fid") == first || infoField(r.stdout, "length") != "6" {
			t.Errorf("%v\nwant a new fid (not %s) and length 6", r, first)
		}
		if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=over"); r.stdout != "second" {
			t.Errorf("fetch after overwrite = %q, want %q", r.stdout, "second")
		}
	})

	t.Run("fetch replaces a file only when it succeeds", func(t *testing.T) {
		dst := writeFile(t, t.TempDir(), "existing", "old contents")
		mustMog(t, "upload", tr, "--domain=photos", "--key=replacement", "--file="+writeFile(t, dir, "replacement", "new contents"))
		if r := mog(t, "", "fetch", tr, "--domain=photos", "--key=never-stored", "--file="+dst); r.code != 1 {
			t.Errorf("%v\nwant exit 1", r)
		}
		if b, err := os.ReadFile(dst); err != nil || string(b) != "old contents" {
			t.Errorf("after a failed fetch the file holds %q (%v), want it untouched", b, err)
		}
		mustMog(t, "fetch", tr, "--domain=photos", "--key=replacement", "--file="+dst)
		if b, err := os.ReadFile(dst); err != nil || string(b) != "new contents" {
			t.Errorf("after fetch the file holds %q (%v), want %q", b, err, "new contents")
		}
		if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
			t.Errorf("fetch left %d files next to %s, want only it", len(entries), dst)
		}
	})

	t.Run("ls pages past 1000 keys", func(t *testing.T) {
		if testing.Short() {
			t.Skip("uploads 1003 keys")
		}
		mustMog(t, "adm", tr, "domain", "add", "paged")
		mustMog(t, "adm", tr, "class", "add", "paged", "one", "--mindevcount=1")
		const n = 1003
		var want strings.Builder
		sem := make(chan struct{}, 4)
		var wg sync.WaitGroup
		for i := range n {
			k := fmt.Sprintf("k%04d", i)
			fmt.Fprintln(&want, k)
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if r := mog(t, "x", "upload", tr, "--domain=paged", "--class=one", "--key="+k); r.code != 0 {
					t.Errorf("%v\nwant exit 0", r)
				}
			})
		}
		wg.Wait()
		if r := mustMog(t, "ls", tr, "--domain=paged"); r.stdout != want.String() {
			t.Errorf("ls of %d keys printed %d lines, want every key in order", n, strings.Count(r.stdout, "\n"))
		}
		if r := mustMog(t, "ls", tr, "--domain=paged", "--after=k0998", "--limit=3"); r.stdout != "k0999\nk1000\nk1001\n" {
			t.Errorf("ls --after=k0998 --limit=3 = %q", r.stdout)
		}
		if r := mustMog(t, "ls", tr, "--domain=paged", "--limit=1001"); strings.Count(r.stdout, "\n") != 1001 {
			t.Errorf("ls --limit=1001 printed %d keys", strings.Count(r.stdout, "\n"))
		}
	})

	t.Run("errors", func(t *testing.T) {
		closed := func() string {
			ln := testutil.Listen(t, "127.0.0.1:0")
			addr := ln.Addr().String()
			ln.Close()
			return addr
		}()
		missing := filepath.Join(dir, "no-such-file")
		tests := []struct {
			args     []string
			inStderr []string
		}{
			{[]string{"upload", tr, "--domain=photos", "--key=k", "--file=" + missing}, []string{missing, "no such file"}},
			{[]string{"upload", tr, "--domain=photos", "--key=k", "--file=" + dir}, []string{dir, "not a regular file"}},
			{[]string{"upload", tr, "--domain=photos", "--key=k", "--class=nope", "--file=" + writeFile(t, dir, "k", "k")}, []string{"unreg_class"}},
			{[]string{"upload", tr, "--domain=nope", "--key=k", "--file=" + writeFile(t, dir, "k", "k")}, []string{"unreg_domain"}},
			{[]string{"fetch", tr, "--domain=photos", "--key=empty", "--file=" + filepath.Join(dir, "no-dir", "x")}, []string{filepath.Join(dir, "no-dir")}},
			{[]string{"upload", tr, "--domain=photos", "--key=" + strings.Repeat("k", 256), "--file=" + writeFile(t, dir, "k", "k")}, []string{"longer than 255 bytes"}},
			{[]string{"fetch", tr, "--domain=nope", "--key=k"}, []string{"unreg_domain"}},
			{[]string{"fetch", tr, "--domain=photos", "--key=never-stored"}, []string{"unknown_key"}},
			{[]string{"rm", tr, "--domain=photos", "--key=never-stored"}, []string{"unknown_key"}},
			{[]string{"ls", tr, "--domain=nope"}, []string{"unreg_domain"}},
			{[]string{"info", "--trackers=" + closed, "--domain=photos", "--key=k"}, []string{closed, "--trackers"}},
			{[]string{"adm", "--trackers=" + closed, "domain", "list"}, []string{closed}},
		}
		for _, tt := range tests {
			r := mog(t, "", tt.args...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("%v\nwant exit 1 and nothing on stdout", r)
				continue
			}
			for _, s := range tt.inStderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("%v\nwant %q on stderr", r, s)
				}
			}
		}
		if r := mog(t, "", "rm", tr, "--domain=photos", "--key=never-stored", "-f"); r.code != 0 {
			t.Errorf("%v\nwant exit 0 with -f", r)
		}
	})

	t.Run("every node down", func(t *testing.T) {
		mustMog(t, "upload", tr, "--domain=photos", "--key=stranded", "--file="+writeFile(t, dir, "stranded", "stranded bytes"))
		for _, n := range c.nodes {
			if code := n.d.stop(t); code != 0 {
				t.Fatalf("storaged %s stopped with exit %d", n.name, code)
			}
		}
		out := t.TempDir()
		dst := filepath.Join(out, "stranded")
		r := mog(t, "", "fetch", tr, "--domain=photos", "--key=stranded", "--file="+dst)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "mogway fetch: fetch stranded: ") {
			t.Errorf("%v\nwant exit 1 and the reason on stderr", r)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("a failed fetch left %d files in %s, want none", len(entries), out)
		}
		if r := mog(t, "", "fetch", tr, "--domain=photos", "--key=stranded"); r.code != 1 || r.stdout != "" {
			t.Errorf("%v\nwant exit 1 and nothing on stdout", r)
		}
		r = mog(t, "", "upload", tr, "--domain=photos", "--key=nowhere", "--file="+writeFile(t, dir, "nowhere", "x"))
		if r.code != 1 || !strings.Contains(r.stderr, "mogway upload: upload nowhere: ") {
			t.Errorf("%v\nwant exit 1 and the reason on stderr", r)
		}
		if r := mog(t, "", "fetch", tr, "--domain=photos", "--key=nowhere"); r.code != 1 || !strings.Contains(r.stderr, "unknown_key") {
			t.Errorf("%v\nwant the failed upload to leave no key", r)
		}
	})
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestE2EConcurrent(t *testing.T) {
	t.Parallel()
	onEachStore(t, [4]string{"127.0.0.58", "127.0.0.59", "127.0.0.60", "127.0.0.62"}, runConcurrentScenario)
}

// runConcurrentScenario uploads distinct keys at once, and one key many times at once, then checks
// that every key has its bytes on both hosts and that the replaced uploads' bytes are deleted, so
// exactly two copies per key remain on disk.
func runConcurrentScenario(t *testing.T, db string, ips [2]string) {
	c := startE2ECluster(t, db, ips)
	tr := "--trackers=" + c.trackerAddr
	const distinct, versions = 12, 6
	want := map[string]string{}
	for i := range distinct {
		want[fmt.Sprintf("many/%02d", i)] = strings.Repeat(fmt.Sprintf("file %d ", i), 1000+i)
	}
	var wg sync.WaitGroup
	results := make(chan cliResult, distinct+versions)
	for k, body := range want {
		wg.Go(func() { results <- mog(t, body, "upload", tr, "--domain=photos", "--class=originals", "--key="+k) })
	}
	same := map[string]bool{}
	for i := range versions {
		body := strings.Repeat(fmt.Sprintf("version %d ", i), 500+i)
		same[body] = true
		wg.Go(func() { results <- mog(t, body, "upload", tr, "--domain=photos", "--class=originals", "--key=same") })
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.code != 0 {
			t.Errorf("%v\nwant exit 0", r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// A key deleted and stored again, over and over: the deletions of the old fids never touch
	// the new one.
	for i := range 10 {
		body := strings.Repeat(fmt.Sprintf("cycle %d ", i), 300)
		if r := mog(t, body, "upload", tr, "--domain=photos", "--class=originals", "--key=cycle"); r.code != 0 {
			t.Fatalf("%v\nwant exit 0", r)
		}
		want["cycle"] = body
		if i < 9 {
			mustMog(t, "rm", tr, "--domain=photos", "--key=cycle")
		}
	}

	got := mustMog(t, "fetch", tr, "--domain=photos", "--key=same").stdout
	if !same[got] {
		t.Fatalf("fetch of a key uploaded %d times at once = %d bytes that match no upload", versions, len(got))
	}
	want["same"] = got
	wantHosts := []string{c.nodes[0].http, c.nodes[1].http}
	slices.Sort(wantHosts)
	for k, body := range want {
		info := pollMog(t, k+" to have two copies", func(r cliResult) bool {
			return r.code == 0 && slices.Equal(urlHosts(t, copyURLs(r.stdout)), wantHosts) && infoField(r.stdout, "devcount") == "2"
		}, "info", tr, "--domain=photos", "--key="+k)
		if l := infoField(info.stdout, "length"); l != fmt.Sprint(len(body)) {
			t.Errorf("info %s: length %s, want %d", k, l, len(body))
		}
		if r := mustMog(t, "fetch", tr, "--domain=photos", "--key="+k); r.stdout != body {
			t.Errorf("fetch %s: %d bytes differ from the %d uploaded", k, len(r.stdout), len(body))
		}
	}

	// The replaced uploads of "same" are deleted from the disks: two copies per key remain.
	wantFiles := 2 * len(want)
	deadline := time.Now().Add(waitTimeout)
	for {
		n := 0
		for _, node := range c.nodes {
			n += len(fidFiles(t, node.docroot))
		}
		if n == wantFiles {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d .fid files on the nodes after %v, want %d (two per key): %q %q", n, waitTimeout, wantFiles,
				fidFiles(t, c.nodes[0].docroot), fidFiles(t, c.nodes[1].docroot))
		}
		time.Sleep(pollInterval * 5) // polling interval, not synchronisation
	}
}

// fidFiles lists the stored files under a docroot, leaving out the monitor's test writes.
func fidFiles(t *testing.T, docroot string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(docroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".fid") && !strings.Contains(p, "/test-write/") {
			files = append(files, strings.TrimPrefix(p, docroot))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestE2EUploadFromStdinLeavesNoSpool checks that stdin, spooled to a temporary file so that a
// failed PUT can be replayed, leaves nothing in $TMPDIR whether the upload works or fails.
func TestE2EUploadFromStdinLeavesNoSpool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	c := startSQLiteCluster(t, [2]string{"127.0.0.71", "127.0.0.72"})
	tr := "--trackers=" + c.trackerAddr
	body := strings.Repeat("spooled ", 100000)
	if r := mog(t, body, "upload", tr, "--domain=photos", "--key=spooled"); r.code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=spooled"); r.stdout != body {
		t.Errorf("fetch of the stdin upload: %d bytes, want the %d sent", len(r.stdout), len(body))
	}
	if r := mog(t, body, "upload", tr, "--domain=nope", "--key=spooled"); r.code != 1 {
		t.Errorf("%v\nwant exit 1", r)
	}
	if r := mog(t, body, "upload", "--trackers="+freeAddr(t, "127.0.0.1"), "--domain=photos", "--key=spooled"); r.code != 1 {
		t.Errorf("%v\nwant exit 1", r)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("uploads from stdin left %q in $TMPDIR", names)
	}
}
