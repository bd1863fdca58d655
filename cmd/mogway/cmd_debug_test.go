package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/worker"
)

func TestDebugAgainstCluster(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2, Domains: map[string]map[string]int{"d": {"two": 2}}})
	tr := "--trackers=" + strings.Join(c.TrackerAddrs(), ",")
	body := []byte("hello, debug")
	fid := c.Upload(t, "d", "dir/a b+c", "two", body)
	clustertest.Eventually(t, "two copies of the file", func() bool { return len(c.GetPaths(t, "d", "dir/a b+c")) == 2 })
	paths := c.GetPaths(t, "d", "dir/a b+c")
	wantLen := " - Length: " + strconv.Itoa(len(body)) + " (file row: " + strconv.Itoa(len(body)) + ")\n"

	byKey := mog(t, "", "debug", tr, "--domain=d", "--key=dir/a b+c")
	byFid := mog(t, "", "debug", tr, "--fid="+strconv.FormatInt(fid, 10))
	for _, r := range []cliResult{byKey, byFid} {
		if r.code != 0 {
			t.Fatalf("%v\nwant exit 0", r)
		}
		for _, p := range paths {
			if !strings.Contains(r.stdout, "\nResults for path: "+p+"\n") {
				t.Errorf("%v\nwant the copy %s", r, p)
			}
		}
		if n := strings.Count(r.stdout, wantLen); n != 2 {
			t.Errorf("%v\nwant %q twice, got %d", r, wantLen, n)
		}
		if n := strings.Count(r.stdout, " - HTTP result: 200 OK\n"); n != 2 {
			t.Errorf("%v\nwant two 200 OK results, got %d", r, n)
		}
		for _, want := range []string{
			"\n- File Row:\n",
			fileRowLine("class", "two"),
			fileRowLine("dkey", "dir/a b+c"),
			fileRowLine("fid", strconv.FormatInt(fid, 10)),
			fileRowLine("length", strconv.Itoa(len(body))),
			"\n- Raw devids: 1,2\n",
			"\n- Stored checksum: NONE\n",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v\nwant the line %q", r, strings.Trim(want, "\n"))
			}
		}
		if strings.Contains(r.stdout, "ERROR") {
			t.Errorf("%v\nwant no ERROR for a healthy file", r)
		}
	}

	noCheck := mustMog(t, "debug", tr, "--fid="+strconv.FormatInt(fid, 10), "--check=false")
	if !strings.HasPrefix(noCheck.stdout, "Copies (not checked):\n") || strings.Contains(noCheck.stdout, "HTTP result") ||
		!strings.Contains(noCheck.stdout, "\nResults for path: "+paths[0]+"\n") {
		t.Errorf("%v\nwant the copies listed without HEAD results", noCheck)
	}

	// A copy cut short on disk is reported and makes debug exit 1; a copy gone is reported missing.
	_, root0 := c.Node(0)
	dev := c.DevIDs(0)[0]
	onDisk := filepath.Join(root0, filepath.FromSlash(worker.FidPath(dev, fid)))
	if err := os.WriteFile(onDisk, body[:4], 0o644); err != nil {
		t.Fatal(err)
	}
	r := mog(t, "", "debug", tr, "--domain=d", "--key=dir/a b+c")
	if r.code != 1 || !strings.Contains(r.stdout, " - ERROR: Length does not match file row!\n - Length: 4 (file row: 12)\n") ||
		!strings.Contains(r.stderr, "problems found") {
		t.Errorf("%v\nwant exit 1 and the short copy reported", r)
	}
	if err := os.Remove(onDisk); err != nil {
		t.Fatal(err)
	}
	r = mog(t, "", "debug", tr, "--domain=d", "--key=dir/a b+c")
	if r.code != 1 || !strings.Contains(r.stdout, " - ERROR: File copy is missing: 404 Not Found\n") {
		t.Errorf("%v\nwant exit 1 and the missing copy reported", r)
	}

	r = mog(t, "", "debug", tr, "--fid=987654")
	if r.code != 1 || !strings.Contains(r.stdout, "No copies found\n") || !strings.Contains(r.stdout, "- ERROR: No file row was found!\n") {
		t.Errorf("%v\nwant exit 1 and no file row for an unknown fid", r)
	}
	r = mog(t, "", "debug", tr, "--domain=d", "--key=nope")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown_key") {
		t.Errorf("%v\nwant exit 1 with unknown_key", r)
	}
}

// fileRowLine is a line of debug's file row, as mogfiledebug aligns it.
func fileRowLine(k, v string) string { return fmt.Sprintf("\n  %8s: %20s\n", k, v) }

func TestDebugUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stderr, or stdout for --help
	}{
		{[]string{"debug"}, 2, "--domain is required"},
		{[]string{"debug", "--domain=d"}, 2, "--key is required"},
		{[]string{"debug", "--fid=3", "--key=k"}, 2, "not both"},
		{[]string{"debug", "--fid=-1"}, 2, "positive"},
		{[]string{"debug", "extra", "--fid=1"}, 2, ""},
		{[]string{"debug", "--help"}, 0, "mogway debug --fid=1234"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != tt.code {
			t.Errorf("mogway %q = exit %d, want %d; stderr %q", tt.args, code, tt.code, errs)
		}
		if !strings.Contains(out+errs, tt.want) {
			t.Errorf("mogway %q output = %q, want %q", tt.args, out+errs, tt.want)
		}
	}
}

func TestParseFileDebug(t *testing.T) {
	tests := []struct {
		reply string
		want  fileDebug
	}{
		{"checksum=NONE", fileDebug{groups: map[string]map[string]string{}, checksum: "NONE"}},
		{
			"fid_fid=7&fid_length=3&fid_dkey=a_b&devpath_12=http://h/dev12/x&devpath_3=http://h/dev3/x&devids=3,12&checksum=MD5:00" +
				"&replqueue_fid=7&replqueue_failcount=1&tempfile_dmid=1&weird=1",
			fileDebug{
				file: map[string]string{"fid": "7", "length": "3", "dkey": "a_b"},
				groups: map[string]map[string]string{
					"replqueue": {"fid": "7", "failcount": "1"},
					"tempfile":  {"dmid": "1"},
					"other":     {"weird": "1"},
				},
				copies:   []debugCopy{{3, "http://h/dev3/x"}, {12, "http://h/dev12/x"}},
				devids:   "3,12",
				checksum: "MD5:00",
			},
		},
	}
	for _, tt := range tests {
		args, err := mogproto.ParseArgs([]byte(tt.reply))
		if err != nil {
			t.Fatalf("ParseArgs(%q): %v", tt.reply, err)
		}
		if got := parseFileDebug(args); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseFileDebug(%q) = %+v, want %+v", tt.reply, got, tt.want)
		}
	}
}

func TestPrintFileDebugQueues(t *testing.T) {
	args, err := mogproto.ParseArgs([]byte("tempfile_dkey=k&fsckqueue_fid=9&replqueue_fid=9&replqueue_nexttry=5"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	problems := printFileDebug(context.Background(), &b, nil, parseFileDebug(args))
	want := "No copies found\n\nTempfile and/or queue rows...\n" +
		"-     tempfile\n                  dkey:                    k\n" +
		"-    replqueue\n                   fid:                    9\n               nexttry:                    5\n" +
		"-    fsckqueue\n                   fid:                    9\n" +
		"\n- ERROR: No file row was found!\nFile may have been deleted or never closed.\nSee above for any matching rows from tempfile or delqueue.\n"
	if b.String() != want {
		t.Errorf("printFileDebug =\n%s\nwant\n%s", b.String(), want)
	}
	if problems != 1 {
		t.Errorf("printFileDebug problems = %d, want 1", problems)
	}
}

// TestDebugCopyCheckTimeout: docs/cli.md gives each HEAD of `debug --check` a 10 s timeout, so a
// copy on a node that accepts the connection and never answers is reported as a failed request and
// counted as a problem instead of holding debug forever. The client debug uses must carry the 10 s;
// the hung node is then checked with the same client cut to 200 ms, so that the test does not wait
// 10 s.
func TestDebugCopyCheckTimeout(t *testing.T) {
	hc := newCopyChecker()
	if hc.Timeout != 10*time.Second {
		t.Errorf("newCopyChecker().Timeout = %v, want 10s (docs/cli.md, debug)", hc.Timeout)
	}
	hung := testutil.Silent(t, "127.0.0.2:0")
	url := "http://" + hung.Addr().String() + "/dev1/0/000/000/0000000007.fid"
	d := fileDebug{
		file:   map[string]string{"fid": "7", "length": "5"},
		groups: map[string]map[string]string{},
		copies: []debugCopy{{devid: 1, url: url}},
	}
	hc.Timeout = 200 * time.Millisecond
	type report struct {
		problems int
		out      string
	}
	done := make(chan report, 1)
	go func() {
		var b bytes.Buffer
		n := printFileDebug(context.Background(), &b, hc, d)
		done <- report{n, b.String()}
	}()
	select {
	case r := <-done:
		if r.problems != 1 || !strings.Contains(r.out, "\nResults for path: "+url+"\n - Device: 1\n - ERROR: Request failed: ") ||
			!strings.Contains(r.out, "Client.Timeout exceeded") {
			t.Errorf("printFileDebug with a copy on a node that never answers = %d problems,\n%s\nwant 1 problem, the request reported failed on its timeout", r.problems, r.out)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("printFileDebug still waits for a node that never answers after %v; its client timeout is %v", waitTimeout, hc.Timeout)
	}
}

func FuzzParseFileDebug(f *testing.F) {
	f.Add("fid_fid=7&devpath_1=http://h/x&devids=1&checksum=NONE&replqueue_fid=7")
	f.Add("devpath_=x&_=y&fid_=z")
	f.Fuzz(func(t *testing.T, s string) {
		args, err := mogproto.ParseArgs([]byte(s))
		if err != nil {
			return
		}
		d := parseFileDebug(args)
		n := 0
		for _, a := range args {
			if strings.HasPrefix(a.Name, "devpath_") {
				n++
			}
		}
		if len(d.copies) != n {
			t.Fatalf("parseFileDebug(%q) kept %d copies, want %d", s, len(d.copies), n)
		}
		var b bytes.Buffer
		printFileDebug(context.Background(), &b, nil, d)
	})
}
