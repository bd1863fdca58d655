package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

// lineTracker is a scripted tracker: handlers answer commands with OK args or an *mogproto.Error.
type lineTracker struct {
	addr string
	ft   *testutil.Tracker
}

type handler func(a mogproto.Args) (mogproto.Args, error)

func startLineTracker(t *testing.T, handlers map[string]handler) *lineTracker {
	t.Helper()
	ft := testutil.NewTracker(t, "127.0.0.2", func(line string) (string, testutil.Action) {
		req, err := mogproto.ParseRequest([]byte(line))
		if err != nil {
			return "", testutil.Hangup
		}
		var out []byte
		h, ok := handlers[req.Cmd]
		if !ok {
			out = mogproto.AppendErr(nil, mogproto.NewError(mogproto.ErrUnknownCommand), "")
		} else if reply, err := h(req.Args); err != nil {
			var perr *mogproto.Error
			errors.As(err, &perr)
			out = mogproto.AppendErr(nil, perr, "")
		} else {
			out = mogproto.AppendOK(nil, reply)
		}
		return string(out), testutil.Keep
	})
	return &lineTracker{addr: ft.Addr, ft: ft}
}

// seen returns the requests received so far.
func (lt *lineTracker) seen() []mogproto.Request {
	var reqs []mogproto.Request
	for _, line := range lt.ft.Lines() {
		if req, err := mogproto.ParseRequest([]byte(line)); err == nil {
			reqs = append(reqs, req)
		}
	}
	return reqs
}

func fixed(reply string) handler {
	return func(mogproto.Args) (mogproto.Args, error) {
		if code, ok := strings.CutPrefix(reply, "ERR "); ok {
			return nil, mogproto.NewError(code)
		}
		a, _ := mogproto.ParseArgs([]byte(reply))
		return a, nil
	}
}

// runCLI runs the binary's entry point in-process.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	code = run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestParseCLIInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantIP  string
	}{
		{[]string{"h1", "--ip=10.0.0.1"}, []string{"h1"}, "10.0.0.1"},
		{[]string{"--ip", "10.0.0.1", "h1", "x"}, []string{"h1", "x"}, "10.0.0.1"},
		{[]string{"h1", "--", "--ip=1"}, []string{"h1", "--ip=1"}, ""},
		{[]string{"--", "-x"}, []string{"-x"}, ""},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		h := cliHelp{name: "test"}
		fs := newCLIFlags(h)
		ip := fs.String("ip", "", "")
		var e env
		e.stdout, e.stderr = io.Discard, io.Discard
		pos, err := parseCLI(&e, fs, h, tt.args)
		if err != nil || !reflect.DeepEqual(pos, tt.wantPos) || *ip != tt.wantIP {
			t.Errorf("parseCLI(%q) = %q, ip %q, %v; want %q, ip %q", tt.args, pos, *ip, err, tt.wantPos, tt.wantIP)
		}
	}
}

func TestHelpAndUsageExitCodes(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"upload", "--help"}, 0, "--domain=VALUE", ""},
		{[]string{"fetch", "-h"}, 0, "Examples:", ""},
		{[]string{"info", "--help"}, 0, "mogway info --domain=photos", ""},
		{[]string{"ls", "--help"}, 0, "--key_prefix=VALUE", ""},
		{[]string{"rm", "--help"}, 0, "-f ", ""},
		{[]string{"adm", "--help"}, 0, "fsck reset [flags]", ""},
		{[]string{"adm", "host", "--help"}, 0, "mark <hostname> <status>", ""},
		{[]string{"adm", "class", "add", "--help"}, 0, "--mindevcount=N", ""},
		{[]string{"adm"}, 2, "", "Topics and verbs:"},
		{[]string{"adm", "host"}, 2, "", "Verbs:"},
		{[]string{"adm", "nope"}, 2, "", `unknown topic "nope"`},
		{[]string{"adm", "host", "nope"}, 2, "", `unknown verb "nope"`},
		{[]string{"adm", "host", "mark", "h1"}, 2, "", "missing argument <status>"},
		{[]string{"adm", "domain", "add", "a", "b"}, 2, "", `unexpected argument "b"`},
		{[]string{"upload", "--key=k"}, 2, "", "--domain is required"},
		{[]string{"upload", "--domain=d", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"ls", "--domain=d", "--limit=-1"}, 2, "", "--limit must be 0 or more"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(out, tt.inStdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("mogway %q = exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				tt.args, code, out, errs, tt.code, tt.inStdout, tt.inStderr)
		}
	}
}

func TestTrackerList(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	mogconf := map[string]string{}
	var c clientFlags
	if got, want := c.trackerList(getenv, mogconf), []string{"127.0.0.1:7001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trackerList() = %q, want %q", got, want)
	}
	mogconf["trackers"] = "10.0.0.1:7001, 10.0.0.2"
	if got, want := c.trackerList(getenv, mogconf), []string{"10.0.0.1:7001", "10.0.0.2:7001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trackerList(mogilefs.conf) = %q, want %q", got, want)
	}
	env[trackersEnv] = "t1, t2:7002"
	if got, want := c.trackerList(getenv, mogconf), []string{"t1:7001", "t2:7002"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trackerList($%s) = %q, want %q", trackersEnv, got, want)
	}
	c.trackers = "a"
	if got, want := c.trackerList(getenv, mogconf), []string{"a:7001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trackerList(--trackers) = %q, want %q", got, want)
	}
}

func TestReadMogConf(t *testing.T) {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc.conf")
	home := filepath.Join(dir, "home.conf")
	os.WriteFile(etc, []byte("trackers = 10.0.0.1:7001\ndomain = etc\nlib = /x # comment\n"), 0o644)
	os.WriteFile(home, []byte("# mine\n  domain=photos  \nbad key = x\nempty =\n"), 0o644)
	got := readMogConf(etc, home, filepath.Join(dir, "missing"))
	want := map[string]string{"trackers": "10.0.0.1:7001", "domain": "photos", "lib": "/x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readMogConf = %q, want %q", got, want)
	}
}

func TestDomainFromMogConf(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	lt := startLineTracker(t, map[string]handler{"delete": fixed("")})
	os.WriteFile(filepath.Join(home, ".mogilefs.conf"), []byte("trackers = "+lt.addr+"\ndomain = fromconf\n"), 0o644)
	if code, _, errs := runCLI(t, "", "rm", "--key=k"); code != 0 {
		t.Fatalf("rm with trackers and domain from ~/.mogilefs.conf = %d, %q", code, errs)
	}
	if got := lt.seen(); len(got) != 1 || got[0].Args.Get("domain") != "fromconf" {
		t.Errorf("tracker saw %q, want domain fromconf", got)
	}
}

// TestClassFromMogConf: docs/cli.md, the "class" line of the MogileFS-Utils configuration is the
// default --class of upload, and --class wins over it.
func TestClassFromMogConf(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	storage, _, _ := startStorage(t)
	path := storage.URL + "/dev1/0/000/000/0000000007.fid"
	lt := startLineTracker(t, map[string]handler{
		"create_open":  fixed("fid=7&dev_count=1&devid_1=1&path_1=" + mogproto.Escape(path)),
		"create_close": fixed(""),
	})
	conf := "trackers = " + lt.addr + "\ndomain = fromconf\nclass = confclass\n"
	if err := os.WriteFile(filepath.Join(home, ".mogilefs.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args      []string
		wantClass string
	}{
		{[]string{"upload", "--key=k", "--file=" + src}, "confclass"},
		{[]string{"upload", "--key=k", "--file=" + src, "--class=flagclass"}, "flagclass"},
	} {
		before := len(lt.seen())
		if code, _, errs := runCLI(t, "", tt.args...); code != 0 {
			t.Fatalf("mogway %q with ~/.mogilefs.conf %q = exit %d, %q; want 0", tt.args, conf, code, errs)
		}
		var opens []mogproto.Request
		for _, r := range lt.seen()[before:] {
			if r.Cmd == "create_open" {
				opens = append(opens, r)
			}
		}
		if len(opens) != 1 || opens[0].Args.Get("class") != tt.wantClass || opens[0].Args.Get("domain") != "fromconf" {
			t.Errorf("mogway %q with ~/.mogilefs.conf %q: tracker saw create_open %q, want one with domain fromconf and class %s",
				tt.args, conf, opens, tt.wantClass)
		}
	}
}

// TestLsPrefixSynonym: docs/cli.md, ls accepts --prefix as a synonym of --key_prefix; both send
// the prefix to the tracker's list_keys and print the same keys.
func TestLsPrefixSynonym(t *testing.T) {
	keys := []string{"a/1", "p/1", "p/2", "q/1"}
	lt := startLineTracker(t, map[string]handler{
		"list_keys": func(a mogproto.Args) (mogproto.Args, error) {
			var out mogproto.Args
			last := ""
			for _, k := range keys {
				if strings.HasPrefix(k, a.Get("prefix")) && k > a.Get("after") {
					last = k
					out.Add("key_"+strconv.Itoa(len(out)+1), k)
				}
			}
			if last == "" {
				return nil, mogproto.NewError(mogproto.ErrNoneMatch)
			}
			out.Add("key_count", strconv.Itoa(len(out)))
			out.Add("next_after", last)
			return out, nil
		},
	})
	tr := "--trackers=" + lt.addr
	for _, flag := range []string{"--key_prefix=p/", "--prefix=p/"} {
		before := len(lt.seen())
		code, out, errs := runCLI(t, "", "ls", tr, "--domain=d", flag)
		if code != 0 || out != "p/1\np/2\n" {
			t.Errorf("mogway ls --domain=d %s = exit %d, %q, stderr %q; want exit 0, %q", flag, code, out, errs, "p/1\np/2\n")
		}
		for _, r := range lt.seen()[before:] {
			if r.Cmd == "list_keys" && r.Args.Get("prefix") != "p/" {
				t.Errorf("mogway ls --domain=d %s sent list_keys %q, want prefix=p/", flag, r.Args)
			}
		}
	}
}

func TestParseDevID(t *testing.T) {
	for in, want := range map[string]int64{"5": 5, "dev17": 17} {
		if got, err := parseDevID(in); err != nil || got != want {
			t.Errorf("parseDevID(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "dev", "0", "x5", "-1"} {
		if _, err := parseDevID(bad); err == nil {
			t.Errorf("parseDevID(%q) succeeded", bad)
		}
	}
}

// TestOutputFormats pins the mogadm/mogtool layouts the print functions write.
func TestOutputFormats(t *testing.T) {
	for _, tc := range []struct {
		name  string
		print func(w io.Writer)
		want  string
	}{
		{"printHostList", func(w io.Writer) {
			printHostList(w, []client.Host{
				{ID: 2, Name: "h2", Status: "down", IP: "10.0.0.2", HTTPPort: 7500, HTTPGetPort: 7600, AltIP: "192.168.0.2", AltMask: "192.168.0.0/24"},
				{ID: 1, Name: "h1", Status: "alive", IP: "10.0.0.1", HTTPPort: 7500},
			})
		}, "h1 [1]: alive\n  IP:       10.0.0.1:7500\n\nh2 [2]: down\n  IP:       10.0.0.2:7500\n  Alt IP:   192.168.0.2\n  Alt Mask: 192.168.0.0/24\n  GET Port: 7600\n\n"},
		{"printDeviceList", func(w io.Writer) {
			printDeviceList(w, []client.Host{{ID: 1, Name: "h1", Status: "alive"}}, []client.Device{
				{ID: 2, HostID: 1, Status: "dead", Weight: 100, MBTotal: -1, MBUsed: -1},
				{ID: 1, HostID: 1, Status: "alive", Weight: 100, MBTotal: 2048, MBUsed: 512},
			}, false)
		}, "h1 [1]: alive\n" +
			"                      used(G)    free(G)   total(G)  weight(%)\n" +
			"  dev1: alive           0.500      1.500      2.000        100\n\n"},
		{"printDomainList", func(w io.Writer) {
			printDomainList(w, []client.Domain{{Name: "d", Classes: []client.Class{
				{Name: "default", MinDevCount: 2, ReplPolicy: "MultipleHosts()", HashType: "NONE"},
				{Name: "c1", MinDevCount: 1, ReplPolicy: "MultipleHosts()", HashType: "MD5"},
			}}})
		}, " domain               class                mindevcount   replpolicy           hashtype\n" +
			"--------------------- -------------------- ------------- -------------------- --------\n" +
			" d                    c1                   1             MultipleHosts()      MD5     \n" +
			" d                    default              2             MultipleHosts()      NONE    \n\n"},
		{"printSettings", func(w io.Writer) {
			printSettings(w, []client.Setting{{Key: "skip_mkcol", Value: "1"}, {Key: "fsck_checksum", Value: "MD5"}})
		}, "            fsck_checksum = MD5\n               skip_mkcol = 1\n"},
		{"printFileInfo", func(w io.Writer) {
			printFileInfo(w, &client.FileInfo{
				FidInfo: client.FidInfo{Fid: 17, Domain: "photos", Class: "default", Key: "a/b.jpg", Length: 5, DevCount: 2},
				DevIDs:  []int64{1, 3}},
				[]string{"http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid"})
		}, "- file: a/b.jpg\n" +
			"    class:              default\n" +
			" devcount:                    2\n" +
			"   devids:                  1,3\n" +
			"   domain:               photos\n" +
			"      fid:                   17\n" +
			"      key:              a/b.jpg\n" +
			"   length:                    5\n" +
			" - http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid\n"},
		{"printFsckStatus", func(w io.Writer) {
			printFsckStatus(w, mogproto.Args{{Name: "running", Value: "1"}, {Name: "host", Value: "t1"},
				{Name: "max_fid_checked", Value: "50"}, {Name: "end_fid", Value: "200"}, {Name: "start_time", Value: "1000"},
				{Name: "stop_time", Value: ""}, {Name: "current_time", Value: "1010"}, {Name: "policy_only", Value: "0"},
				{Name: "max_logid", Value: "3"}, {Name: "num_MISS", Value: "2"}})
		}, "\n    Running: Yes (on t1)\n     Status: 50 / 200 (25.00%)\n       Time: 10s (5.0 fids/s; 30s remain)\n" +
			" Check Type: Normal (check policy + files)\n\n [num_MISS]: 2\n\n"},
	} {
		var b bytes.Buffer
		tc.print(&b)
		if b.String() != tc.want {
			t.Errorf("%s =\n%q\nwant\n%q", tc.name, b.String(), tc.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		n, total int64
		want     string
	}{
		{0, 10 << 20, "upload [                              ] 0 B / 10.0 MiB   0%"},
		{5 << 20, 10 << 20, "upload [===============               ] 5.0 MiB / 10.0 MiB  50%"},
		{10 << 20, 10 << 20, "upload [==============================] 10.0 MiB / 10.0 MiB 100%"},
	}
	for _, tt := range tests {
		if got := progressLine("upload", tt.n, tt.total); got != tt.want {
			t.Errorf("progressLine(%d, %d) = %q, want %q", tt.n, tt.total, got, tt.want)
		}
	}
	if p := newProgress(&bytes.Buffer{}, 1<<30, "x"); p != nil {
		t.Errorf("newProgress on a buffer = %v, want nil (not a terminal)", p)
	}
}

func TestParseUsage(t *testing.T) {
	u, err := parseUsage([]byte("available: 100\ndevice: dev1\ndisk: /var/mogdata/dev1\ntime: 1700000000\ntotal: 300\nuse: 67%\nused: 200\n"))
	if err != nil || u.total != 300 || u.used != 200 {
		t.Errorf("parseUsage = %+v, %v, want total 300 used 200", u, err)
	}
	if _, err := parseUsage([]byte("garbage")); err == nil {
		t.Error("parseUsage(garbage) succeeded")
	}
}

func TestShortSynopsis(t *testing.T) {
	if got, want := shortSynopsis("<domain> <class> [--mindevcount=2] [--hashtype=H]"), "<domain> <class> [flags]"; got != want {
		t.Errorf("shortSynopsis = %q, want %q", got, want)
	}
}

// storage is a minimal storage node: PUT stores, GET serves, in memory.
func startStorage(t *testing.T) (*httptest.Server, map[string][]byte, *sync.Mutex) {
	t.Helper()
	files := map[string][]byte{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			files[r.URL.Path] = b
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			if r.URL.Path == "/" {
				return
			}
			if strings.HasSuffix(r.URL.Path, "/usage") {
				io.WriteString(w, "available: 1048576\ndevice: dev1\ntotal: 2097152\nused: 1048576\n")
				return
			}
			testutil.ServeBytes(w, r, files)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, files, &mu
}

func TestFileToolsEndToEnd(t *testing.T) {
	storage, files, mu := startStorage(t)
	path := storage.URL + "/dev1/0/000/000/0000000007.fid"
	var closedMu sync.Mutex // guards closedArgs
	var closedArgs mogproto.Args
	closed := func() mogproto.Args { closedMu.Lock(); defer closedMu.Unlock(); return closedArgs }
	lt := startLineTracker(t, map[string]handler{
		"create_open": fixed("fid=7&dev_count=1&devid_1=1&path_1=" + mogproto.Escape(path)),
		"create_close": func(a mogproto.Args) (mogproto.Args, error) {
			closedMu.Lock()
			closedArgs = a
			closedMu.Unlock()
			return nil, nil
		},
		"get_paths": func(a mogproto.Args) (mogproto.Args, error) {
			if a.Get("key") != "a b+c" {
				return nil, mogproto.NewError(mogproto.ErrUnknownKey)
			}
			return mogproto.Args{{Name: "paths", Value: "1"}, {Name: "path1", Value: path}}, nil
		},
		// Like a real tracker, file_info reports the length the last create_close recorded.
		"file_info": func(a mogproto.Args) (mogproto.Args, error) {
			size := closed().Get("size")
			if size == "" {
				size = "11"
			}
			return mogproto.Args{{Name: "fid", Value: "7"}, {Name: "domain", Value: "d"}, {Name: "class", Value: "default"},
				{Name: "key", Value: "a b+c"}, {Name: "length", Value: size}, {Name: "devcount", Value: "1"}, {Name: "devids", Value: "1"}}, nil
		},
		"list_keys": func(a mogproto.Args) (mogproto.Args, error) {
			if a.Get("after") != "" {
				return nil, mogproto.NewError(mogproto.ErrNoneMatch)
			}
			return mogproto.Args{{Name: "key_count", Value: "2"}, {Name: "key_1", Value: "p/1"}, {Name: "key_2", Value: "p/2"}, {Name: "next_after", Value: "p/2"}}, nil
		},
		"delete": func(a mogproto.Args) (mogproto.Args, error) {
			if a.Get("key") != "a b+c" {
				return nil, mogproto.NewError(mogproto.ErrUnknownKey)
			}
			return nil, nil
		},
	})
	tr := "--trackers=" + lt.addr
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}

	if code, _, errs := runCLI(t, "", "upload", tr, "--domain=d", "--key=a b+c", "--file="+src); code != 0 {
		t.Fatalf("upload exit %d: %s", code, errs)
	}
	mu.Lock()
	got := string(files["/dev1/0/000/000/0000000007.fid"])
	mu.Unlock()
	if got != "hello world" {
		t.Errorf("stored %q, want %q", got, "hello world")
	}
	if c := closed(); c.Get("size") != "11" || c.Get("fid") != "7" || c.Get("devid") != "1" || c.Get("key") != "a b+c" {
		t.Errorf("create_close args = %q", c)
	}

	// stdin upload
	if code, _, errs := runCLI(t, "from stdin", "upload", tr, "--domain=d", "--key=a b+c"); code != 0 {
		t.Fatalf("upload from stdin exit %d: %s", code, errs)
	}
	if got := closed().Get("size"); got != "10" {
		t.Errorf("stdin upload size = %q, want 10", got)
	}

	dst := filepath.Join(dir, "out")
	if code, _, errs := runCLI(t, "", "fetch", tr, "--domain=d", "--key=a b+c", "--file="+dst); code != 0 {
		t.Fatalf("fetch exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(dst); string(b) != "from stdin" {
		t.Errorf("fetched %q, want %q", b, "from stdin")
	}
	if code, out, _ := runCLI(t, "", "fetch", tr, "--domain=d", "--key=a b+c"); code != 0 || out != "from stdin" {
		t.Errorf("fetch to stdout = %d, %q", code, out)
	}
	code, _, errs := runCLI(t, "", "fetch", tr, "--domain=d", "--key=missing", "--file="+filepath.Join(dir, "missing"))
	if code != 1 || !strings.Contains(errs, "unknown_key") {
		t.Errorf("fetch missing = %d, %q; want exit 1 naming unknown_key", code, errs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("fetch of a missing key left files behind: %v", entries)
	}

	code, out, _ := runCLI(t, "", "info", tr, "--domain=d", "--key=a b+c")
	if code != 0 || !strings.HasPrefix(out, "- file: a b+c\n") || !strings.Contains(out, " - "+path+"\n") {
		t.Errorf("info = %d, %q", code, out)
	}

	if code, out, _ := runCLI(t, "", "ls", tr, "--domain=d", "--key_prefix=p/"); code != 0 || out != "p/1\np/2\n" {
		t.Errorf("ls = %d, %q, want the two keys", code, out)
	}
	if code, out, _ := runCLI(t, "", "ls", tr, "--domain=d", "--limit=1"); code != 0 || out != "p/1\n" {
		t.Errorf("ls --limit=1 = %d, %q", code, out)
	}

	if code, _, errs := runCLI(t, "", "rm", tr, "--domain=d", "--key=a b+c"); code != 0 {
		t.Errorf("rm exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI(t, "", "rm", tr, "--domain=d", "--key=nope"); code != 1 || !strings.Contains(errs, "unknown_key") {
		t.Errorf("rm missing = %d, %q; want 1", code, errs)
	}
	if code, _, errs := runCLI(t, "", "rm", "-f", tr, "--domain=d", "--key=nope"); code != 0 {
		t.Errorf("rm -f missing = %d, %q; want 0", code, errs)
	}

	// Keys are always fully encoded on the wire.
	for _, r := range lt.seen() {
		if r.Cmd == "create_open" && r.Args.Get("key") != "a b+c" {
			t.Errorf("create_open key = %q, want %q", r.Args.Get("key"), "a b+c")
		}
	}
}

func TestAdmEndToEnd(t *testing.T) {
	storage, _, _ := startStorage(t)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(storage.URL, "http://"))
	lt := startLineTracker(t, map[string]handler{
		"get_hosts":     fixed("hosts=1&host1_hostid=1&host1_status=alive&host1_hostname=h1&host1_hostip=" + host + "&host1_http_port=" + port),
		"get_devices":   fixed("devices=1&dev1_devid=1&dev1_hostid=1&dev1_status=alive&dev1_weight=100&dev1_mb_total=2048&dev1_mb_used=1024&dev1_observed_state=writeable&dev1_utilization=1.5"),
		"get_domains":   fixed("domains=1&domain1=d&domain1classes=1&domain1class1name=default&domain1class1mindevcount=2&domain1class1replpolicy=MultipleHosts()&domain1class1hashtype=NONE"),
		"create_domain": fixed("domain=d2"),
		"create_host":   fixed("hostid=2&hostname=h2"),
		"create_class":  fixed("ERR domain_not_found"),
		"create_device": fixed(""),
		"set_state":     fixed(""),
		"set_weight":    fixed(""),
		"fsck_reset":    fixed(""),
	})
	tr := "--trackers=" + lt.addr

	if code, out, errs := runCLI(t, "", "adm", tr, "domain", "add", "d2"); code != 0 || out != "" {
		t.Errorf("domain add = %d, %q, %q; want silent success", code, out, errs)
	}
	if code, out, _ := runCLI(t, "", "adm", "domain", "add", "d2", tr, "--verbose"); code != 0 || out != "Domain created.\n" {
		t.Errorf("domain add --verbose = %d, %q", code, out)
	}
	code, _, errs := runCLI(t, "", "adm", tr, "class", "add", "nope", "c")
	if code != 1 || !strings.Contains(errs, "Domain not found (domain_not_found)") {
		t.Errorf("class add on a missing domain = %d, %q", code, errs)
	}
	if code, out, _ := runCLI(t, "", "adm", tr, "class", "list"); code != 0 || !strings.Contains(out, " d                    default              2") {
		t.Errorf("class list = %d, %q", code, out)
	}
	if code, _, errs := runCLI(t, "", "adm", tr, "host", "add", "h1", "--ip=10.0.0.1"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("host add of an existing host = %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, "", "adm", tr, "host", "add", "h2", "--ip=10.0.0.2"); code != 0 {
		t.Errorf("host add = %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, "", "adm", tr, "device", "add", "h2", "dev5"); code != 0 {
		t.Errorf("device add = %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, "", "adm", tr, "device", "modify", "h2", "5", "--status=drain", "--weight=0"); code != 0 {
		t.Errorf("device modify = %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, "", "adm", tr, "fsck", "reset", "--policy-only"); code != 0 {
		t.Errorf("fsck reset = %d, %q", code, errs)
	}
	var sent []string
	for _, r := range lt.seen() {
		switch r.Cmd {
		case "create_host", "create_device", "set_state", "set_weight", "fsck_reset":
			sent = append(sent, string(mogproto.AppendRequest(nil, r.Cmd, r.Args)))
		}
	}
	want := []string{
		"create_host host=h2&ip=10.0.0.2&port=7500&status=down\r\n",
		"create_device hostname=h2&devid=5&state=alive\r\n",
		"set_state host=h2&device=5&state=drain\r\n",
		"set_weight host=h2&device=5&weight=0\r\n",
		"fsck_reset policy_only=1&startpos=0\r\n",
	}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("tracker saw %q, want %q", sent, want)
	}

	code, out, errs := runCLI(t, "", "adm", tr, "check")
	if code != 0 || !strings.Contains(out, lt.addr+" ... OK") || !strings.Contains(out, "[ 1] h1 ... OK") ||
		!strings.Contains(out, "[ 1] dev1              2.000      1.000      1.000  50.00%  writeable    1.5") {
		t.Errorf("check = %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "adm", "--trackers="+lt.addr+",127.0.0.9:1", "check")
	if code != 1 || !strings.Contains(out, "127.0.0.9:1 ... REQUEST FAILURE") {
		t.Errorf("check with a dead tracker = %d\n%s", code, out)
	}
}

// cancelOnWrite cancels a context once the output contains want.
type cancelOnWrite struct {
	mu     sync.Mutex // guards buf
	buf    bytes.Buffer
	want   string
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(b)
	if strings.Contains(c.buf.String(), c.want) {
		c.cancel()
	}
	return len(b), nil
}

func TestFsckTailLog(t *testing.T) {
	var mu sync.Mutex // guards calls
	calls := 0
	lt := startLineTracker(t, map[string]handler{
		"fsck_status": fixed("running=1&max_logid=30"),
		"fsck_getlog": func(a mogproto.Args) (mogproto.Args, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			switch a.Get("after_logid") {
			case "10":
				return mogproto.ParseArgs([]byte("row_count=1&row_1_logid=30&row_1_utime=100&row_1_fid=7&row_1_evcode=NOPA"))
			case "30":
				if calls < 4 {
					return mogproto.ParseArgs([]byte("row_count=0"))
				}
				return mogproto.ParseArgs([]byte("row_count=1&row_1_logid=31&row_1_utime=101&row_1_fid=8&row_1_evcode=MISS&row_1_devid=2"))
			}
			return nil, mogproto.NewError(mogproto.ErrBadParams)
		},
	})
	p, err := client.NewPool(client.Config{Trackers: []string{lt.addr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancelOnWrite{want: "MISS", cancel: cancel}
	if err := tailFsckLog(ctx, p, w, time.Millisecond); err != nil {
		t.Fatalf("tailFsckLog = %v", err)
	}
	want := "unixtime             event           fid      devid\n" +
		"100                   NOPA             7          -\n" +
		"101                   MISS             8          2\n"
	if got := w.buf.String(); got != want {
		t.Errorf("taillog output =\n%q\nwant\n%q", got, want)
	}
}

// TestFetchAsksVerifiedPaths: docs/cli.md says fetch sends get_paths verified by the tracker, where
// mogfetch sends noverify=1. The tracker sees file_info, then get_paths with the domain and key only.
func TestFetchAsksVerifiedPaths(t *testing.T) {
	storage, files, mu := startStorage(t)
	mu.Lock()
	files["/dev1/0/000/000/0000000007.fid"] = []byte("verified")
	mu.Unlock()
	lt := startLineTracker(t, map[string]handler{
		"file_info": fixed("fid=7&domain=d&class=default&key=k&length=8&devcount=1&devids=1"),
		"get_paths": fixed("paths=1&path1=" + mogproto.Escape(storage.URL+"/dev1/0/000/000/0000000007.fid")),
	})
	if r := mog(t, "", "fetch", "--trackers="+lt.addr, "--domain=d", "--key=k"); r.code != 0 || r.stdout != "verified" {
		t.Fatalf("%v\nwant exit 0 and %q", r, "verified")
	}
	var sent []string
	for _, r := range lt.seen() {
		sent = append(sent, string(mogproto.AppendRequest(nil, r.Cmd, r.Args)))
	}
	want := []string{"file_info domain=d&key=k&devices=1\r\n", "get_paths domain=d&key=k\r\n"}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("tracker saw %q, want %q", sent, want)
	}
}

// TestTimeoutFlag: --timeout bounds the wait for a tracker that accepts the connection and never
// answers; the command fails with exit 1 after the given 200ms, long before its default timeout
// (3s for the file tools, 15s for adm) would have ended the wait.
func TestTimeoutFlag(t *testing.T) {
	silent := testutil.Silent(t, "127.0.0.1:0").Addr().String()
	for _, args := range [][]string{
		{"ls", "--domain=d"},
		{"adm", "host", "list"},
	} {
		start := time.Now()
		r := mog(t, "", append(args, "--trackers="+silent, "--timeout=200ms")...)
		took := time.Since(start)
		if r.code != 1 || !strings.Contains(r.stderr, "i/o timeout") {
			t.Errorf("%v\nwant exit 1 and an i/o timeout", r)
		}
		// Not a performance bound: a wait of DefaultTimeout or more means --timeout was ignored.
		if took >= client.DefaultTimeout {
			t.Errorf("mogway %s took %v against a silent tracker, want about 200ms (--timeout)", strings.Join(args, " "), took)
		}
	}
}

// TestTimeoutDefaults pins the documented defaults of --timeout (docs/cli.md): 3s for the file
// tools and 15s for adm, whose changes make the tracker refresh its caches before answering.
func TestTimeoutDefaults(t *testing.T) {
	if client.DefaultTimeout != 3*time.Second || admTimeout != 15*time.Second {
		t.Errorf("client.DefaultTimeout, admTimeout = %v, %v; want 3s, 15s", client.DefaultTimeout, admTimeout)
	}
	// What each command registers is what it uses when --timeout is not given; --help shows it.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"upload"}, "3s"},
		{[]string{"fetch"}, "3s"},
		{[]string{"info"}, "3s"},
		{[]string{"ls"}, "3s"},
		{[]string{"rm"}, "3s"},
		{[]string{"debug"}, "3s"},
		{[]string{"adm"}, "15s"},
		{[]string{"adm", "host", "list"}, "15s"},
		{[]string{"adm", "class", "modify"}, "15s"},
	} {
		r := mog(t, "", append(tt.args, "--help")...)
		line := regexp.MustCompile(`(?m)^  --timeout=DURATION .*$`).FindString(r.stdout)
		if r.code != 0 || !strings.HasSuffix(line, "(default "+tt.want+")") {
			t.Errorf("mogway %s --help: --timeout line %q, want default %s\n%v", strings.Join(tt.args, " "), line, tt.want, r)
		}
	}
}
