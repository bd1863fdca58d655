package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

// scripted answers each command with a fixed reply line (without CRLF) and records requests.
func scripted(t *testing.T, replies map[string]string) (*Pool, *fakeTracker) {
	t.Helper()
	ft := newFakeTracker(t, "127.0.0.2", func(line string) (string, action) {
		cmd := line
		if i := strings.IndexByte(line, ' '); i >= 0 {
			cmd = line[:i]
		}
		r, ok := replies[cmd]
		if !ok {
			r = "ERR unknown_command Unknown+server+command"
		}
		return r + "\r\n", keep
	})
	p, _ := newPool(t, Config{Trackers: []string{ft.Addr}})
	return p, ft
}

func TestGetPathsHelper(t *testing.T) {
	p, ft := scripted(t, map[string]string{"get_paths": "OK paths=2&path2=http://b/2.fid&path1=http://a/1.fid"})
	paths, err := p.GetPaths(t.Context(), "d", "k", GetPathsOptions{NoVerify: true, PathCount: 99})
	if want := []string{"http://a/1.fid", "http://b/2.fid"}; err != nil || !reflect.DeepEqual(paths, want) {
		t.Errorf("GetPaths = %q, %v, want %q", paths, err, want)
	}
	if got, want := ft.Lines()[0], "get_paths domain=d&key=k&noverify=1&pathcount=99"; got != want {
		t.Errorf("request = %q, want %q", got, want)
	}
}

func TestCreateOpenHelper(t *testing.T) {
	p, ft := scripted(t, map[string]string{"create_open": "OK fid=17&dev_count=2&devid_1=1&path_1=http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid&devid_2=3&path_2=http://10.0.0.2:7500/dev3/0/000/000/0000000017.fid"})
	o, err := p.CreateOpen(t.Context(), "photos", "a/b.jpg", "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Open{Fid: 17, Dests: []Dest{
		{1, "http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid"},
		{3, "http://10.0.0.2:7500/dev3/0/000/000/0000000017.fid"},
	}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("CreateOpen = %+v, want %+v", o, want)
	}
	if got, want := ft.Lines()[0], "create_open domain=photos&key=a/b.jpg&class=&fid=0&multi_dest=1"; got != want {
		t.Errorf("request = %q, want %q", got, want)
	}
	single, err := parseOpen(mogproto.Args{{Name: "fid", Value: "5"}, {Name: "devid", Value: "2"}, {Name: "path", Value: "http://x/5.fid"}})
	if err != nil || !reflect.DeepEqual(single, &Open{Fid: 5, Dests: []Dest{{2, "http://x/5.fid"}}}) {
		t.Errorf("parseOpen(single) = %+v, %v", single, err)
	}
	for _, bad := range []mogproto.Args{
		{{Name: "fid", Value: "0"}},
		{{Name: "fid", Value: "5"}},
		{{Name: "fid", Value: "5"}, {Name: "dev_count", Value: "1"}, {Name: "path_1", Value: "u"}},
	} {
		if _, err := parseOpen(bad); !errors.Is(err, mogproto.ErrProtocol) {
			t.Errorf("parseOpen(%q) = %v, want ErrProtocol", bad, err)
		}
	}
}

func TestFileInfoHelper(t *testing.T) {
	p, ft := scripted(t, map[string]string{"file_info": "OK fid=17&domain=photos&class=default&key=a+b&length=5&devcount=2&devids=1,3&checksum=MD5:5d41402abc4b2a76b9719d911017c592"})
	fi, err := p.FileInfo(t.Context(), "photos", "a b")
	if err != nil {
		t.Fatal(err)
	}
	want := &FileInfo{FidInfo: FidInfo{Fid: 17, Domain: "photos", Class: "default", Key: "a b", Length: 5, DevCount: 2},
		Checksum: "MD5:5d41402abc4b2a76b9719d911017c592", DevIDs: []int64{1, 3}}
	if !reflect.DeepEqual(fi, want) {
		t.Errorf("FileInfo = %+v, want %+v", fi, want)
	}
	if got, want := ft.Lines()[0], "file_info domain=photos&key=a+b&devices=1"; got != want {
		t.Errorf("request = %q, want %q", got, want)
	}
}

func TestListKeysHelper(t *testing.T) {
	p, ft := scripted(t, map[string]string{"list_keys": "OK key_count=2&key_1=foo/a&key_2=foo/b&next_after=foo/b"})
	keys, next, err := p.ListKeys(t.Context(), "d", "foo/", "", 2)
	if err != nil || !reflect.DeepEqual(keys, []string{"foo/a", "foo/b"}) || next != "foo/b" {
		t.Errorf("ListKeys = %q, %q, %v", keys, next, err)
	}
	if got, want := ft.Lines()[0], "list_keys domain=d&prefix=foo/&after=&limit=2"; got != want {
		t.Errorf("request = %q, want %q", got, want)
	}
	p2, _ := scripted(t, map[string]string{"list_keys": "ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29."})
	keys, next, err = p2.ListKeys(t.Context(), "d", "zzz", "", 0)
	if err != nil || len(keys) != 0 || next != "" {
		t.Errorf("ListKeys(none_match) = %q, %q, %v, want empty and nil", keys, next, err)
	}
}

func TestMutationHelpersSendWireArgs(t *testing.T) {
	p, ft := scripted(t, map[string]string{
		"create_close": "OK ", "delete": "OK ", "rename": "OK ", "updateclass": "OK ",
		"create_host": "OK hostid=3&hostname=h3", "update_host": "OK hostid=3&hostname=h3", "delete_host": "OK ",
		"create_device": "OK ", "set_state": "OK ", "set_weight": "OK ", "create_domain": "OK domain=d2",
		"delete_domain": "OK domain=d2", "create_class": "OK class=x&mindevcount=2&domain=d",
		"update_class": "OK class=x&mindevcount=3&domain=d", "delete_class": "OK domain=d&class=x",
		"set_server_setting": "OK ", "fsck_start": "OK ", "fsck_stop": "OK ", "fsck_reset": "OK ",
		"fsck_clearlog": "OK ",
	})
	ctx := t.Context()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(p.CreateClose(ctx, CloseRequest{Domain: "d", Key: "k", Fid: 17, DevID: 1, Path: "http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid", Size: 5, Checksum: "MD5:00", ChecksumVerify: true}))
	check(p.Delete(ctx, "d", "k"))
	check(p.Rename(ctx, "d", "k", "k2"))
	check(p.UpdateClass(ctx, "d", "k", "c2"))
	id, err := p.CreateHost(ctx, HostSpec{Name: "h3", IP: "10.0.0.3", Port: 7500, Status: "alive"})
	check(err)
	if id != 3 {
		t.Errorf("CreateHost id = %d, want 3", id)
	}
	check(p.UpdateHost(ctx, HostSpec{Name: "h3", GetPort: 7600}))
	check(p.DeleteHost(ctx, "h3"))
	check(p.CreateDevice(ctx, "h1", 4, ""))
	check(p.SetState(ctx, "h1", 4, "readonly"))
	check(p.SetWeight(ctx, "h1", 4, 50))
	check(p.CreateDomain(ctx, "d2"))
	check(p.DeleteDomain(ctx, "d2"))
	check(p.CreateClass(ctx, ClassSpec{Domain: "d", Class: "x", MinDevCount: 2, HashType: "MD5"}))
	check(p.ModifyClass(ctx, ClassSpec{Domain: "d", Class: "x", MinDevCount: 3, ReplPolicy: "MultipleHosts(3)"}))
	check(p.DeleteClass(ctx, "d", "x"))
	check(p.SetServerSetting(ctx, "skip_mkcol", "on"))
	check(p.FsckStart(ctx))
	check(p.FsckStop(ctx))
	check(p.FsckReset(ctx, true, 0))
	check(p.FsckClearLog(ctx))
	want := []string{
		"create_close domain=d&key=k&fid=17&devid=1&path=http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid&size=5&checksum=MD5:00&checksumverify=1",
		"delete domain=d&key=k",
		"rename domain=d&from_key=k&to_key=k2",
		"updateclass domain=d&key=k&class=c2",
		"create_host host=h3&ip=10.0.0.3&port=7500&status=alive",
		"update_host host=h3&getport=7600",
		"delete_host host=h3",
		"create_device hostname=h1&devid=4",
		"set_state host=h1&device=4&state=readonly",
		"set_weight host=h1&device=4&weight=50",
		"create_domain domain=d2",
		"delete_domain domain=d2",
		"create_class domain=d&class=x&mindevcount=2&hashtype=MD5",
		"update_class domain=d&class=x&mindevcount=3&replpolicy=MultipleHosts%283%29",
		"delete_class domain=d&class=x",
		"set_server_setting key=skip_mkcol&value=on",
		"fsck_start ",
		"fsck_stop ",
		"fsck_reset policy_only=1&startpos=0",
		"fsck_clearlog ",
	}
	got := ft.Lines()
	if len(got) != len(want) {
		t.Fatalf("tracker saw %d requests, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		// The fake trims CRLF only, so commands without arguments keep their space.
		if got[i] != want[i] {
			t.Errorf("request %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestAdminListHelpers(t *testing.T) {
	p, _ := scripted(t, map[string]string{
		"get_hosts":       "OK hosts=2&host1_hostid=1&host1_status=alive&host1_hostname=h1&host1_hostip=10.0.0.1&host1_http_port=7500&host1_http_get_port=&host1_altip=&host1_altmask=&host2_hostid=2&host2_status=down&host2_hostname=h2&host2_hostip=10.0.0.2&host2_http_port=7500&host2_http_get_port=7600&host2_altip=192.168.0.2&host2_altmask=192.168.0.0/24",
		"get_devices":     "OK devices=2&dev1_devid=1&dev1_hostid=1&dev1_status=alive&dev1_weight=100&dev1_mb_total=2048&dev1_mb_used=1024&dev1_mb_asof=1700000000&dev1_mb_free=1024&dev1_observed_state=writeable&dev1_utilization=3.5&dev1_reject_bad_md5=1&dev2_devid=2&dev2_hostid=1&dev2_status=dead&dev2_weight=100&dev2_mb_total=&dev2_mb_used=&dev2_mb_asof=&dev2_mb_free=&dev2_observed_state=&dev2_utilization=&dev2_reject_bad_md5=",
		"get_domains":     "OK domains=1&domain1=d&domain1classes=2&domain1class1name=default&domain1class1mindevcount=2&domain1class1replpolicy=MultipleHosts()&domain1class1hashtype=NONE&domain1class2name=c1&domain1class2mindevcount=1&domain1class2replpolicy=MultipleHosts()&domain1class2hashtype=MD5",
		"server_settings": "OK key_count=2&key_1=skip_mkcol&value_1=1&key_2=fsck_checksum&value_2=MD5",
		"server_setting":  "OK key=skip_mkcol&value=1",
		"fsck_getlog":     "OK row_count=2&row_1_logid=1&row_1_utime=1700000000&row_1_fid=17&row_1_evcode=NOPA&row_2_logid=2&row_2_utime=1700000001&row_2_fid=18&row_2_evcode=MISS&row_2_devid=3",
		"fsck_status":     "OK running=1&host=t1&max_fid_checked=10&end_fid=20",
	})
	ctx := t.Context()
	hosts, err := p.GetHosts(ctx)
	wantHosts := []Host{
		{ID: 1, Name: "h1", Status: "alive", IP: "10.0.0.1", HTTPPort: 7500},
		{ID: 2, Name: "h2", Status: "down", IP: "10.0.0.2", HTTPPort: 7500, HTTPGetPort: 7600, AltIP: "192.168.0.2", AltMask: "192.168.0.0/24"},
	}
	if err != nil || !reflect.DeepEqual(hosts, wantHosts) {
		t.Errorf("GetHosts = %+v, %v, want %+v", hosts, err, wantHosts)
	}
	devs, err := p.GetDevices(ctx)
	wantDevs := []Device{
		{ID: 1, HostID: 1, Status: "alive", Weight: 100, MBTotal: 2048, MBUsed: 1024, MBFree: 1024, MBAsOf: 1700000000, ObservedState: "writeable", Utilization: 3.5, RejectBadMD5: "1"},
		{ID: 2, HostID: 1, Status: "dead", Weight: 100, MBTotal: -1, MBUsed: -1, MBFree: -1},
	}
	if err != nil || !reflect.DeepEqual(devs, wantDevs) {
		t.Errorf("GetDevices = %+v, %v, want %+v", devs, err, wantDevs)
	}
	doms, err := p.GetDomains(ctx)
	wantDoms := []Domain{{Name: "d", Classes: []Class{
		{Name: "default", MinDevCount: 2, ReplPolicy: "MultipleHosts()", HashType: "NONE"},
		{Name: "c1", MinDevCount: 1, ReplPolicy: "MultipleHosts()", HashType: "MD5"},
	}}}
	if err != nil || !reflect.DeepEqual(doms, wantDoms) {
		t.Errorf("GetDomains = %+v, %v, want %+v", doms, err, wantDoms)
	}
	ss, err := p.ServerSettings(ctx)
	if want := []Setting{{"skip_mkcol", "1"}, {"fsck_checksum", "MD5"}}; err != nil || !reflect.DeepEqual(ss, want) {
		t.Errorf("ServerSettings = %+v, %v, want %+v", ss, err, want)
	}
	if v, err := p.ServerSetting(ctx, "skip_mkcol"); err != nil || v != "1" {
		t.Errorf("ServerSetting = %q, %v, want %q", v, err, "1")
	}
	rows, err := p.FsckLog(ctx, 0)
	wantRows := []FsckLogRow{{1, 1700000000, 17, "NOPA", 0}, {2, 1700000001, 18, "MISS", 3}}
	if err != nil || !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("FsckLog = %+v, %v, want %+v", rows, err, wantRows)
	}
	st, err := p.FsckStatus(ctx)
	if err != nil || st.Get("host") != "t1" {
		t.Errorf("FsckStatus = %q, %v", st, err)
	}
}

// storageNode is an httptest server that stores PUT bodies and serves them back.
type storageNode struct {
	*httptest.Server
	mu    sync.Mutex // guards files
	files map[string][]byte
}

func newStorageNode(t *testing.T, handler http.HandlerFunc) *storageNode {
	t.Helper()
	sn := &storageNode{files: map[string][]byte{}}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodPut:
				b, err := io.ReadAll(r.Body)
				if err != nil || int64(len(b)) != r.ContentLength {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				sn.mu.Lock()
				sn.files[r.URL.Path] = b
				sn.mu.Unlock()
				w.WriteHeader(http.StatusCreated)
			case http.MethodGet:
				sn.mu.Lock()
				defer sn.mu.Unlock()
				testutil.ServeBytes(w, r, sn.files)
			}
		}
	}
	sn.Server = httptest.NewServer(handler)
	t.Cleanup(sn.Close)
	return sn
}

// brokenFirstDest returns a pool whose tracker opens uploads of fid 9 on a storage node that
// answers every PUT with 500 and then on good, a working node.
func brokenFirstDest(t *testing.T) (p *Pool, ft *fakeTracker, good *storageNode) {
	t.Helper()
	broken := newStorageNode(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "disk full", http.StatusInternalServerError)
	})
	good = newStorageNode(t, nil)
	p, ft = scripted(t, map[string]string{
		"create_open":  "OK fid=9&dev_count=2&devid_1=1&path_1=" + broken.URL + "/dev1/0/000/000/0000000009.fid&devid_2=2&path_2=" + good.URL + "/dev2/0/000/000/0000000009.fid",
		"create_close": "OK ",
	})
	return p, ft, good
}

func TestUploadFailsOverToNextDest(t *testing.T) {
	p, ft, good := brokenFirstDest(t)
	body := []byte("hello world")
	fid, err := p.Upload(t.Context(), "d", "k", "c1", bytes.NewReader(body), int64(len(body)))
	if err != nil || fid != 9 {
		t.Fatalf("Upload = %d, %v, want fid 9", fid, err)
	}
	if got := good.files["/dev2/0/000/000/0000000009.fid"]; !bytes.Equal(got, body) {
		t.Errorf("stored %q, want %q", got, body)
	}
	lines := ft.Lines()
	want := "create_close domain=d&key=k&fid=9&devid=2&path=" + mogproto.Escape(good.URL+"/dev2/0/000/000/0000000009.fid") + "&size=11&class=c1"
	if got := lines[len(lines)-1]; got != want {
		t.Errorf("close = %q, want %q", got, want)
	}
}

func TestUploadWithoutRewindStopsAfterPartialBody(t *testing.T) {
	p, ft, good := brokenFirstDest(t)
	// A reader that is not a Seeker cannot be replayed to the second destination.
	r := io.MultiReader(strings.NewReader("hello"))
	if _, err := p.Upload(t.Context(), "d", "k", "", r, 5); err == nil {
		t.Fatal("Upload succeeded although the body could not be replayed")
	}
	for _, l := range ft.Lines() {
		if strings.HasPrefix(l, "create_close") {
			t.Errorf("create_close sent after a failed upload: %q", l)
		}
	}
	if len(good.files) != 0 {
		t.Errorf("second destination got a body: %v", good.files)
	}
}

// fetchFrom fetches d/k, a file of length bytes, from a tracker whose get_paths answers paths in
// order (on devices 1, 2, ...), and returns what Fetch wrote and its results.
func fetchFrom(t *testing.T, length int, paths ...string) (string, int64, error) {
	t.Helper()
	devids := make([]string, len(paths))
	getPaths := "OK paths=" + strconv.Itoa(len(paths))
	for i, u := range paths {
		devids[i] = strconv.Itoa(i + 1)
		getPaths += "&path" + devids[i] + "=" + u
	}
	p, _ := scripted(t, map[string]string{
		"file_info": "OK fid=1&domain=d&class=default&key=k&length=" + strconv.Itoa(length) +
			"&devcount=" + strconv.Itoa(len(paths)) + "&devids=" + strings.Join(devids, ","),
		"get_paths": getPaths,
	})
	var buf bytes.Buffer
	n, err := p.Fetch(t.Context(), "d", "k", &buf)
	return buf.String(), n, err
}

func TestFetchFailsOverBeforeFirstByte(t *testing.T) {
	good := newStorageNode(t, nil)
	good.files["/dev2/x.fid"] = []byte("content")
	missing := newStorageNode(t, nil)
	got, n, err := fetchFrom(t, 7, missing.URL+"/dev1/x.fid", good.URL+"/dev2/x.fid")
	if err != nil || n != 7 || got != "content" {
		t.Errorf("Fetch = %d, %v, %q, want 7 bytes of content", n, err, got)
	}
}

func TestFetchTruncatedBodyIsAnError(t *testing.T) {
	truncating := newStorageNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("12345"))
		// Returning now ends the response 5 bytes short; the server closes the connection.
	})
	good := newStorageNode(t, nil)
	good.files["/x.fid"] = []byte("1234567890")
	got, n, err := fetchFrom(t, 10, truncating.URL+"/x.fid", good.URL+"/x.fid")
	if err == nil {
		t.Fatalf("Fetch of a truncated copy = %d bytes, nil error", n)
	}
	if n != 5 || len(got) != 5 {
		t.Errorf("Fetch wrote %d bytes (returned %d), want 5 and no failover after the first byte", len(got), n)
	}
}

// A copy damaged on disk answers with its own shorter Content-Length; Fetch skips it for a copy of
// the length create_close recorded instead of writing the short body and succeeding.
func TestFetchSkipsCopyOfWrongLength(t *testing.T) {
	short := newStorageNode(t, nil)
	short.files["/dev1/x.fid"] = []byte("cont")
	good := newStorageNode(t, nil)
	good.files["/dev2/x.fid"] = []byte("content")
	got, n, err := fetchFrom(t, 7, short.URL+"/dev1/x.fid", good.URL+"/dev2/x.fid")
	if err != nil || n != 7 || got != "content" {
		t.Errorf("Fetch = %d, %v, %q, want the 7-byte copy", n, err, got)
	}
	if got, n, err := fetchFrom(t, 7, short.URL+"/dev1/x.fid"); err == nil || len(got) != 0 {
		t.Errorf("Fetch with only a short copy = %d, %v, wrote %d bytes; want an error and nothing written", n, err, len(got))
	}
}

func TestFetchNoPaths(t *testing.T) {
	p, _ := scripted(t, map[string]string{"file_info": "OK fid=1&domain=d&class=default&key=k&length=7&devcount=0", "get_paths": "OK paths=0"})
	if _, err := p.Fetch(t.Context(), "d", "k", io.Discard); !errors.Is(err, ErrNoPaths) {
		t.Errorf("Fetch = %v, want ErrNoPaths", err)
	}
	p2, _ := scripted(t, map[string]string{"file_info": "ERR unknown_key unknown_key", "get_paths": "ERR unknown_key unknown_key"})
	if _, err := p2.Fetch(t.Context(), "d", "k", io.Discard); !mogproto.IsCode(err, mogproto.ErrUnknownKey) {
		t.Errorf("Fetch = %v, want ERR unknown_key", err)
	}
}

func TestListFidsHelper(t *testing.T) {
	p, ft := scripted(t, map[string]string{"list_fids": "OK fid_count=2&fid_1_fid=3&fid_1_domain=d&fid_1_class=default&fid_1_key=a&fid_1_length=5&fid_1_devcount=2&fid_2_fid=4&fid_2_domain=d&fid_2_class=c1&fid_2_key=b&fid_2_length=0&fid_2_devcount=1"})
	fids, err := p.ListFids(t.Context(), 2, 2)
	want := []FidInfo{{3, "d", "default", "a", 5, 2}, {4, "d", "c1", "b", 0, 1}}
	if err != nil || !reflect.DeepEqual(fids, want) {
		t.Errorf("ListFids = %+v, %v, want %+v", fids, err, want)
	}
	if got, want := ft.Lines()[0], "list_fids from=2&to=2"; got != want {
		t.Errorf("request = %q, want %q", got, want)
	}
}

func BenchmarkPoolGetPaths(b *testing.B) {
	p := benchPool(b, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.GetPaths(ctx, "photos", "albums/2024/beach.jpg", GetPathsOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolGetPathsMaxConns runs lookups from more goroutines than MaxConnsPerTracker lets
// connect, so that most wait for a connection another hands back.
func BenchmarkPoolGetPathsMaxConns(b *testing.B) {
	p := benchPool(b, Config{MaxConnsPerTracker: 2})
	b.SetParallelism(4)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.GetPaths(context.Background(), "photos", "albums/2024/beach.jpg", GetPathsOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchPool returns a pool with cfg over a tracker on 127.0.0.2 that answers every line with the
// same two paths, both closed when the benchmark ends.
func benchPool(b *testing.B, cfg Config) *Pool {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	reply := []byte("OK paths=2&path1=http://10.0.0.1:7500/dev1/0/000/000/0000000017.fid&path2=http://10.0.0.2:7500/dev3/0/000/000/0000000017.fid\r\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := br.ReadSlice('\n'); err != nil {
						return
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	cfg.Trackers = []string{ln.Addr().String()}
	p, err := NewPool(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}
