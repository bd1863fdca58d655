package tracker

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/worker"
)

// cluster is a tracker with two real storage nodes: h1 on 127.0.0.2 (dev1, dev2) and h2 on
// 127.0.0.3 (dev3), sharing one side-channel port.
type cluster struct {
	tt     *testTracker
	lc     *lineConn
	n1, n2 *testNode
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	n1 := startNode(t, "127.0.0.2", "", 1, 2)
	_, side, _ := net.SplitHostPort(n1.mgmtAddr)
	n2 := startNode(t, "127.0.0.3", side, 3)
	sidePort, _ := strconv.Atoi(side)
	tt := startTracker(t, Config{SideChannelPort: sidePort})
	lc := tt.dial(t)
	fixture(t, lc, n1.ip, n1.httpPort, n2.ip, n2.httpPort)
	tt.observeAll(1, 2, 3)
	return &cluster{tt: tt, lc: lc, n1: n1, n2: n2}
}

// open runs create_open and returns fid, devid and path of the first destination.
func (c *cluster) open(t *testing.T, args string) (fid, devid, path string) {
	t.Helper()
	a := c.lc.ok("create_open " + args)
	if a.Get("dev_count") != "" {
		return a.Get("fid"), a.Get("devid_1"), a.Get("path_1")
	}
	return a.Get("fid"), a.Get("devid"), a.Get("path")
}

func closeArgs(fid, devid, path, key string, size int) string {
	return "create_close " + string(mogproto.AppendArgs(nil, mogproto.Args{
		{Name: "domain", Value: "d"}, {Name: "fid", Value: fid}, {Name: "devid", Value: devid},
		{Name: "path", Value: path}, {Name: "size", Value: strconv.Itoa(size)}, {Name: "key", Value: key},
	}))
}

// upload stores body under key in class and returns the fid and path.
func (c *cluster) upload(t *testing.T, key, class string, body []byte) (fid, path string) {
	t.Helper()
	fid, devid, path := c.open(t, string(mogproto.AppendArgs(nil, mogproto.Args{
		{Name: "domain", Value: "d"}, {Name: "key", Value: key}, {Name: "class", Value: class},
		{Name: "fid", Value: "0"}, {Name: "multi_dest", Value: "1"},
	})))
	if code, _ := testutil.Fetch(t, http.MethodPut, path, body, nil); code/100 != 2 {
		t.Fatalf("PUT %s = %d", path, code)
	}
	if got := c.lc.do(closeArgs(fid, devid, path, key, len(body))); got != "OK " {
		t.Fatalf("create_close %q = %q, want OK", key, got)
	}
	return fid, path
}

func escape(s string) string { return mogproto.Escape(s) }

func TestLifecycle(t *testing.T) {
	c := startCluster(t)
	lc := c.lc

	// 8.2 #18: create_open with multi_dest.
	a := lc.ok("create_open domain=d&key=k&class=c2&fid=0&multi_dest=1")
	fid := a.Get("fid")
	if n, _ := strconv.Atoi(a.Get("dev_count")); n < 1 || n > 2 {
		t.Fatalf("dev_count = %q, want 1 or 2 (two hosts)", a.Get("dev_count"))
	}
	pathRE := regexp.MustCompile(`^http://127\.0\.0\.[23]:\d+/dev(\d+)/\d/\d{3}/\d{3}/(\d{10})\.fid$`)
	m := pathRE.FindStringSubmatch(a.Get("path_1"))
	if m == nil {
		t.Fatalf("path_1 = %q, does not match the fid path formula", a.Get("path_1"))
	}
	if m[1] != a.Get("devid_1") {
		t.Errorf("path_1 %q is not on devid_1 %s", a.Get("path_1"), a.Get("devid_1"))
	}
	if n, _ := strconv.ParseInt(m[2], 10, 64); strconv.FormatInt(n, 10) != fid {
		t.Errorf("path_1 %q does not name fid %s", a.Get("path_1"), fid)
	}
	if a.Get("dev_count") == "2" && a.Get("path_1")[:17] == a.Get("path_2")[:17] {
		t.Errorf("multi_dest offered two devices of one host: %q, %q", a.Get("path_1"), a.Get("path_2"))
	}

	// #20: full upload.
	path, devid := a.Get("path_1"), a.Get("devid_1")
	if code, _ := testutil.Fetch(t, http.MethodPut, path, []byte("hello"), nil); code/100 != 2 {
		t.Fatalf("PUT = %d", code)
	}
	if got := lc.do(closeArgs(fid, devid, path, "k", 5)); got != "OK " {
		t.Fatalf("create_close = %q, want OK", got)
	}
	// #23: a second close.
	if got := lc.do(closeArgs(fid, devid, path, "k", 5)); got != "ERR no_temp_file No+tempfile+or+file+already+closed" {
		t.Errorf("second create_close = %q", got)
	}
	gp := lc.ok("get_paths domain=d&key=k")
	if gp.Get("paths") != "1" {
		t.Fatalf("get_paths = %v, want 1 path", gp)
	}
	if code, body := testutil.Fetch(t, http.MethodGet, gp.Get("path1"), nil, nil); code != 200 || string(body) != "hello" {
		t.Errorf("GET path1 = %d %q, want 200 hello", code, body)
	}
	want := "OK fid=" + fid + "&domain=d&class=c2&key=k&length=5&devcount=1&devids=" + devid
	if got := lc.do("file_info domain=d&key=k&devices=1"); got != want {
		t.Errorf("file_info = %q, want %q", got, want)
	}
	// c2 wants two copies: create_close queued replication.
	if _, err := c.tt.st.QueueJobs(context.Background(), store.QueueReplicate, mustInt(t, fid)); err != nil {
		t.Errorf("replication queue row for fid %s: %v", fid, err)
	}
	// replicate_now makes a deferred row due again.
	if err := c.tt.st.Retry(context.Background(), store.QueueReplicate, store.Job{Fid: mustInt(t, fid), NextTry: time.Now().Unix() + 3600, FailCount: 1}); err != nil {
		t.Fatal(err)
	}
	if got := lc.do("replicate_now"); got != "OK count=1" {
		t.Errorf("replicate_now = %q, want OK count=1", got)
	}
	if j, err := c.tt.st.QueueJobs(context.Background(), store.QueueReplicate, mustInt(t, fid)); err != nil || j.NextTry > time.Now().Unix() {
		t.Errorf("replication row after replicate_now = %+v, %v; want it due", j, err)
	}

	// #26: size mismatch.
	fid2, dev2, path2 := c.open(t, "domain=d&key=k2&class=c1")
	testutil.Fetch(t, http.MethodPut, path2, []byte("abc"), nil)
	want = "ERR size_mismatch Expected:+5%3B+actual:+3%3B+path:+" + escape(path2)
	if got := lc.do(closeArgs(fid2, dev2, path2, "k2", 5)); got != want {
		t.Errorf("size mismatch close = %q, want %q", got, want)
	}
	if got := lc.do("get_paths domain=d&key=k2"); got != "ERR unknown_key unknown_key" {
		t.Errorf("get_paths after size mismatch = %q", got)
	}
	if dbg := lc.ok("file_debug fid=" + fid2); dbg.Get("delqueue_fid") != fid2 || dbg.Get("devids") != dev2 {
		t.Errorf("file_debug of a discarded upload = %v, want it queued for deletion on dev%s", dbg, dev2)
	}

	// #27: no PUT at all.
	fid3, dev3, path3 := c.open(t, "domain=d&key=k3")
	got := lc.do(closeArgs(fid3, dev3, path3, "k3", 5))
	if want := "ERR size_verify_error Expected:+5%3B+actual:+0+%28missing%29%3B+path:+" + escape(path3) + "%3B+error:+"; !strings.HasPrefix(got, want) {
		t.Errorf("close without PUT = %q, want prefix %q", got, want)
	}

	// #28: empty file.
	fidE, _ := c.upload(t, "empty", "c1", nil)
	if got, want := lc.do("file_info domain=d&key=empty"), "OK fid="+fidE+"&domain=d&class=c1&key=empty&length=0&devcount=1"; got != want {
		t.Errorf("file_info empty = %q, want %q", got, want)
	}

	// #29: key= aborts.
	fidA, devA, pathA := c.open(t, "domain=d&key=aborted")
	testutil.Fetch(t, http.MethodPut, pathA, []byte("x"), nil)
	if got := lc.do(closeArgs(fidA, devA, pathA, "", 1)); got != "OK " {
		t.Errorf("abort close = %q, want OK", got)
	}
	if dbg := lc.ok("file_debug fid=" + fidA); dbg.Get("fid_fid") != "" || dbg.Get("delqueue_fid") != fidA {
		t.Errorf("file_debug of an aborted upload = %v", dbg)
	}

	// #24: a devid create_open did not offer.
	fidD, devD, _ := c.open(t, "domain=d&key=dd&class=c1")
	other := "3"
	if devD == "3" {
		other = "1"
	}
	otherDev, _ := c.tt.s.state.device(int(mustInt(t, other)))
	otherPath := writeURL(otherDev.host, otherDev.dev.ID, mustInt(t, fidD), client{})
	want = "ERR invalid_destdev File+uploaded+to+invalid+dest+" + other + ".+Valid+devices+were:+" + devD
	if got := lc.do(closeArgs(fidD, other, otherPath, "dd", 1)); got != want {
		t.Errorf("close on an unoffered device = %q, want %q", got, want)
	}

	// #25: a path one byte off.
	fidB, devB, pathB := c.open(t, "domain=d&key=bb")
	for _, bad := range []string{
		strings.Replace(pathB, "/0000", "/000", 1),
		strings.Replace(pathB, "http://127.0.0.", "http://127.000.0.", 1),
		pathB + "x",
	} {
		if got := lc.do(closeArgs(fidB, devB, bad, "bb", 0)); got != "ERR bogus_args bogus_args" {
			t.Errorf("close with path %q = %q, want bogus_args", bad, got)
		}
	}

	// #33, #34: delete twice, rename onto an existing key.
	c.upload(t, "r1", "c1", []byte("one"))
	c.upload(t, "r2", "c1", []byte("two"))
	if got := lc.do("rename domain=d&from_key=r1&to_key=r2"); got != "ERR key_exists Target+key+name+already+exists%3B+can%27t+overwrite." {
		t.Errorf("rename onto existing = %q", got)
	}
	if got := lc.do("rename domain=d&from_key=r1&to_key=r3"); got != "OK " {
		t.Errorf("rename = %q", got)
	}
	if got := lc.do("get_paths domain=d&key=r1"); got != "ERR unknown_key unknown_key" {
		t.Errorf("get_paths old name = %q", got)
	}
	if got := lc.do("delete domain=d&key=r3"); got != "OK " {
		t.Errorf("delete = %q", got)
	}
	if got := lc.do("delete domain=d&key=r3"); got != "ERR unknown_key unknown_key" {
		t.Errorf("second delete = %q", got)
	}

	// #30: key 0.
	c.upload(t, "0", "c1", []byte("zero"))
	for _, req := range []string{
		"get_paths domain=d&key=0",
		"rename domain=d&from_key=0&to_key=zero",
		"rename domain=d&from_key=zero&to_key=0",
		"updateclass domain=d&key=0&class=c2",
		"delete domain=d&key=0",
	} {
		lc.ok(req)
	}

	// #31: overwrite.
	old, _ := c.upload(t, "ow", "c1", []byte("first"))
	newer, _ := c.upload(t, "ow", "c1", []byte("second"))
	if mustInt(t, newer) <= mustInt(t, old) {
		t.Errorf("overwrite fid %s not above %s", newer, old)
	}
	gp = lc.ok("get_paths domain=d&key=ow")
	if _, body := testutil.Fetch(t, http.MethodGet, gp.Get("path1"), nil, nil); string(body) != "second" {
		t.Errorf("get_paths after overwrite serves %q", body)
	}
	if dbg := lc.ok("file_debug fid=" + old); dbg.Get("fid_fid") != "" || dbg.Get("delqueue_fid") != old {
		t.Errorf("file_debug of the replaced fid = %v", dbg)
	}

	// #38, #39, #21: classes and explicit fids.
	if got := lc.do("create_open domain=d&key=x&class=nope"); got != "ERR unreg_class unreg_class" {
		t.Errorf("create_open class=nope = %q", got)
	}
	if got := lc.do("create_open domain=d&key=x&fid=" + newer); got != "ERR fid_in_use fid_in_use" {
		t.Errorf("create_open with a used fid = %q", got)
	}
	_, devX, pathX := c.open(t, "domain=d&key=x&fid=2147483632")
	if !strings.HasSuffix(pathX, "/dev"+devX+"/2/147/483/2147483632.fid") {
		t.Errorf("explicit fid path = %q", pathX)
	}
	if got := lc.do("create_open domain=d&key=x&fid=2147483632"); got != "ERR fid_in_use fid_in_use" {
		t.Errorf("create_open with an open fid = %q", got)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// TestChecksumVerify covers spec 8.2 #40, through the side channel and through the HTTP fallback.
func TestChecksumVerify(t *testing.T) {
	c := startCluster(t)
	lc := c.lc
	lc.ok("create_class domain=d&class=h&mindevcount=1&hashtype=MD5")
	sum := md5.Sum([]byte("hello"))
	good := "MD5:" + hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		checksum, want string
	}{
		{"MD5:zz", "ERR invalid_checksum_format invalid_checksum_format"},
		{"MD5:" + strings.Repeat("0", 40), "ERR invalid_checksum_format invalid_checksum_format"},
		{"CRC:" + strings.Repeat("0", 32), "ERR invalid_checksum_format invalid_checksum_format"},
		{"MD5:" + strings.Repeat("0", 32), "~^ERR checksum_mismatch Expected:\\+MD5:0{32}%3B\\+actual:\\+MD5:" + hex.EncodeToString(sum[:]) + "%3B\\+path:\\+"},
		{strings.ToUpper(good[:4]) + strings.ToUpper(good[4:]), "OK "},
	} {
		fid, devid, path := c.open(t, "domain=d&key=sum&class=h")
		testutil.Fetch(t, http.MethodPut, path, []byte("hello"), nil)
		req := closeArgs(fid, devid, path, "sum", 5) + "&checksumverify=1&checksum=" + escape(tc.checksum)
		got := lc.do(req)
		if strings.HasPrefix(tc.want, "~") {
			if !regexp.MustCompile(tc.want[1:]).MatchString(got) {
				t.Errorf("close with checksum %q = %q, want match %s", tc.checksum, got, tc.want[1:])
			}
		} else if got != tc.want {
			t.Errorf("close with checksum %q = %q, want %q", tc.checksum, got, tc.want)
		}
	}
	if got := lc.ok("file_info domain=d&key=sum").Get("checksum"); got != good {
		t.Errorf("file_info checksum = %q, want %q", got, good)
	}
	// Without a side channel the tracker fetches and hashes the file itself.
	old := c.tt.s.node
	c.tt.s.node = node.New(node.Config{Timeout: c.tt.s.cfg.NodeTimeout.D(), SidePort: 1})
	old.Close()
	fid, devid, path := c.open(t, "domain=d&key=sum2&class=h")
	testutil.Fetch(t, http.MethodPut, path, []byte("hello"), nil)
	if got := lc.do(closeArgs(fid, devid, path, "sum2", 5) + "&checksumverify=1&checksum=" + good); got != "OK " {
		t.Errorf("checksum verified by GET = %q", got)
	}
	// A class without hashtype stores no checksum, but file_info says nothing of it either.
	fid, devid, path = c.open(t, "domain=d&key=plain&class=c1")
	testutil.Fetch(t, http.MethodPut, path, []byte("hello"), nil)
	lc.ok(closeArgs(fid, devid, path, "plain", 5) + "&checksum=" + good)
	if got := lc.ok("file_info domain=d&key=plain"); got.Get("checksum") != "" {
		t.Errorf("file_info of a class without hashtype shows checksum %q", got.Get("checksum"))
	}
	if got := lc.ok("file_debug domain=d&key=plain"); got.Get("checksum") != "NONE" {
		t.Errorf("file_debug checksum = %q, want NONE", got.Get("checksum"))
	}
}

// addCopy puts a copy of fid on a device of a node and records it, as replication would.
func (c *cluster) addCopy(t *testing.T, n *testNode, devid int, fid int64, body []byte) {
	t.Helper()
	p := filepath.Join(n.docroot, filepath.FromSlash(worker.FidPath(devid, fid)))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.tt.st.AddFileOn(context.Background(), fid, devid); err != nil {
		t.Fatal(err)
	}
}

// TestGetPathsStates covers spec 8.2 #37 and 8.3 #42, #43, #47, #49.
func TestGetPathsStates(t *testing.T) {
	c := startCluster(t)
	lc := c.lc
	// Put the file on dev1 (h1) and add a copy on dev3 (h2).
	c.tt.s.Observe(3, Observation{Reachable: true, At: time.Now()}) // readable, not writable
	fidS, _ := c.upload(t, "two", "c2", []byte("hello"))
	fid := mustInt(t, fidS)
	onDevs, _ := c.tt.st.FileOn(context.Background(), fid)
	if len(onDevs) != 1 || onDevs[0] == 3 {
		t.Fatalf("upload landed on %v, want one device of h1", onDevs)
	}
	first := onDevs[0]
	c.addCopy(t, c.n2, 3, fid, []byte("hello"))
	urlOn := func(devid int) string {
		di, _ := c.tt.s.state.device(devid)
		return readURL(di.host, devid, fid, client{})
	}

	// #37: pathcount has a floor of 2.
	if gp := lc.ok("get_paths domain=d&key=two&pathcount=1"); gp.Get("paths") != "2" {
		t.Errorf("get_paths pathcount=1 = %v, want paths=2", gp)
	}
	// #47: a drain device comes after the others.
	lc.ok("set_state host=h2&device=3&state=drain")
	for range 20 {
		gp := lc.ok("get_paths domain=d&key=two")
		if gp.Get("path1") != urlOn(first) || gp.Get("path2") != urlOn(3) {
			t.Fatalf("get_paths with dev3 draining = %v, want dev%d first", gp, first)
		}
	}
	// #42: a down device is not listed.
	lc.ok("set_state host=h2&device=3&state=down")
	if got, want := lc.do("get_paths domain=d&key=two"), "OK paths=1&path1="+escape(urlOn(first)); got != want {
		t.Errorf("get_paths with dev3 down = %q, want %q", got, want)
	}
	// #43: the only copy on a down device is still offered as the backup path.
	lc.ok("set_state host=h1&device=" + itoa(first) + "&state=down")
	if err := c.tt.st.RemoveFileOn(context.Background(), fid, 3); err != nil {
		t.Fatal(err)
	}
	if got, want := lc.do("get_paths domain=d&key=two"), "OK paths=1&path1="+escape(urlOn(first)); got != want {
		t.Errorf("get_paths with the only copy down = %q, want %q (backup path)", got, want)
	}
	lc.ok("set_state host=h1&device=" + itoa(first) + "&state=alive")
	lc.ok("set_state host=h2&device=3&state=alive")
	// #49: a truncated copy is never path1 unless noverify.
	c.addCopy(t, c.n2, 3, fid, []byte("hel"))
	for range 20 {
		gp := lc.ok("get_paths domain=d&key=two")
		if gp.Get("path1") != urlOn(first) {
			t.Fatalf("get_paths path1 = %q, the truncated copy", gp.Get("path1"))
		}
	}
	// An unreachable device is not readable.
	c.tt.s.Observe(first, Observation{At: time.Now()})
	if gp := lc.ok("get_paths domain=d&key=two&noverify=1"); gp.Get("path1") != urlOn(3) || gp.Get("paths") != "1" {
		t.Errorf("get_paths with dev%d unreachable = %v", first, gp)
	}
	// paths=0: the key exists but no copy is readable or even a backup.
	if err := c.tt.st.RemoveFileOn(context.Background(), fid, first); err != nil {
		t.Fatal(err)
	}
	if err := c.tt.st.RemoveFileOn(context.Background(), fid, 3); err != nil {
		t.Fatal(err)
	}
	if got := lc.do("get_paths domain=d&key=two"); got != "OK paths=0" {
		t.Errorf("get_paths without copies = %q, want OK paths=0", got)
	}
}

// TestCreateOpenSelection covers spec 8.3 #45, #46, #50: only writeable devices with known usage
// and free space get new files.
func TestCreateOpenSelection(t *testing.T) {
	c := startCluster(t)
	lc := c.lc
	devOf := func() string { _, d, _ := c.open(t, "domain=d&key=sel"); return d }
	// dev3 unreachable, dev2 readonly, dev1 full: nothing.
	c.tt.s.Observe(3, Observation{At: time.Now()})
	lc.ok("set_state host=h1&device=2&state=readonly")
	c.tt.s.Observe(1, Observation{Reachable: true, Writable: true, MBTotal: 1000, MBUsed: 999, At: time.Now()})
	if got := lc.do("create_open domain=d&key=sel"); got != "ERR no_devices No+devices+found+to+store+file" {
		t.Errorf("create_open with no usable device = %q", got)
	}
	// dev1 with unknown usage is still not chosen.
	c.tt.s.Observe(1, Observation{Reachable: true, Writable: true, At: time.Now()})
	if got := lc.do("create_open domain=d&key=sel"); got != "ERR no_devices No+devices+found+to+store+file" {
		t.Errorf("create_open with unknown usage = %q", got)
	}
	c.tt.observeAll(1)
	for range 20 {
		if d := devOf(); d != "1" {
			t.Fatalf("create_open chose dev%s, want dev1 (the only writeable one)", d)
		}
	}
	// A size larger than any free space leaves only devices of unknown usage: none.
	if got := lc.do("create_open domain=d&key=sel&size=" + strconv.FormatInt(1<<40, 10)); got != "ERR no_devices No+devices+found+to+store+file" {
		t.Errorf("create_open too large = %q", got)
	}
	// A host marked down takes no new files.
	lc.ok("update_host host=h1&status=down")
	if got := lc.do("create_open domain=d&key=sel"); got != "ERR no_devices No+devices+found+to+store+file" {
		t.Errorf("create_open with h1 down = %q", got)
	}
}

// TestListing covers spec 8.4 #51-#57 with rows committed through the store.
func TestListing(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	fixture(t, lc, "10.0.0.1", "7500", "10.0.0.2", "7500")
	ctx := context.Background()
	doms, _ := tt.st.Domains(ctx)
	for _, k := range []string{"foo/a", "foo/b", "foo/c", "under_score", "underXscore", "per%cent", "back\\slash", "a b+c", "\xc3\xa9t\xc3\xa9"} {
		fid, err := tt.st.CreateTempfile(ctx, store.Tempfile{DomainID: doms[0].ID, Key: k, DevIDs: []int{1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tt.st.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: doms[0].ID, Key: k, Length: 1}, DevIDs: []int{1}}); err != nil {
			t.Fatal(err)
		}
	}
	runExchanges(t, lc, []exchange{
		{"list_keys domain=d&prefix=foo/", "OK key_count=3&key_1=foo/a&key_2=foo/b&key_3=foo/c&next_after=foo/c"},
		{"list_keys domain=d&prefix=foo/&limit=2", "OK key_count=2&key_1=foo/a&key_2=foo/b&next_after=foo/b"},
		{"list_keys domain=d&prefix=foo/&limit=2&after=foo/b", "OK key_count=1&key_1=foo/c&next_after=foo/c"},
		{"list_keys domain=d&prefix=foo/&after=foo/c", "ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29."},
		{"list_keys domain=d&prefix=under_", "OK key_count=1&key_1=under_score&next_after=under_score"},
		{"list_keys domain=d&prefix=per%25", "OK key_count=1&key_1=per%25cent&next_after=per%25cent"},
		{"list_keys domain=d&prefix=back\\", "OK key_count=1&key_1=back\\slash&next_after=back\\slash"},
		{"list_keys domain=d&prefix=a", "OK key_count=1&key_1=a+b%2Bc&next_after=a+b%2Bc"},
		{"file_info domain=d&key=a+b%2Bc", "~^OK fid=\\d+&domain=d&class=default&key=a\\+b%2Bc&length=1&devcount=1$"},
		{"file_info domain=d&key=%c3%a9t%c3%a9", "~^OK fid=\\d+&domain=d&class=default&key=%C3%A9t%C3%A9&"},
		{"file_info domain=d&key=foo/a=junk", "~^OK fid=\\d+&domain=d&class=default&key=foo/a&"},
		{"list_keys domain=d&limit=5000", "~^OK key_count=9&"},
		{"list_fids from=0&to=2", "~^OK fid_1_fid=1&fid_1_domain=d&fid_1_class=default&fid_1_key=foo/a&fid_1_length=1&fid_1_devcount=1&fid_2_fid=2&.*&fid_count=2$"},
		{"list_fids from=0&to=0", "~&fid_count=9$"},
		{"list_fids from=1000", "OK fid_count=0"},
	})
}
