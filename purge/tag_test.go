package purge

import (
	"context"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	testSelectorParser(t, "ParseKey", ParseKey, map[string]Selector{
		"tag:product-1":          {KindTag, "product-1"},
		"tag:ünïcode":            {KindTag, "ünïcode"},
		"tag:/looks/like/a/path": {KindTag, "/looks/like/a/path"},
		"/a.jpg":                 {KindURI, "/a.jpg"},
		"/img/*":                 {KindPrefix, "/img/"},
		"/*":                     {KindAll, ""},
	}, map[string]error{
		"tag:":      ErrEmptyTag,
		"tag:a b":   ErrBadTag,
		"tag:a,b":   ErrBadTag,
		"tag:a\tb":  ErrBadTag,
		"tag:a\x7f": ErrBadTag,
		"tag:\xff":  ErrBadTag,
		"tag:" + strings.Repeat("x", maxTagLen+1): ErrBadTag,
		"tags": ErrBadPath,
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"tag:a", "tag:", "/a", "/a*", "/*", "tag:a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseKey(s)
		if err != nil {
			return
		}
		if sel.String() != s {
			t.Fatalf("ParseKey(%q).String() = %q", s, sel.String())
		}
	})
}

func TestHandleTag(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	rec := newRecorder("/a", "/b", "/c").tag("t1", "/a", "/b").tag("t2", "/c")
	svc, err := New(Config{Name: "gw1", HMACSecret: testSecret}, rec, nil, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name   string
		req    Request
		status int
		purged int
	}{
		{"tag", Request{Method: "PURGE", Path: "", Tag: "t1", RemoteIP: loop}, 200, 2},
		{"tag again: nothing left", Request{Method: "PURGE", Path: "/", Tag: "t1", RemoteIP: loop}, 404, 0},
		{"tag and path", Request{Method: "PURGE", Path: "/c", Tag: "t2", RemoteIP: loop}, 400, 0},
		{"bad tag", Request{Method: "PURGE", Tag: "a b", RemoteIP: loop}, 400, 0},
		{"not allowed", Request{Method: "PURGE", Tag: "t2", RemoteIP: other}, 403, 0},
		{"signed for the path, not the tag", Request{Method: "PURGE", Tag: "t2", RemoteIP: other,
			Signature: Sign(testSecret, "PURGE", "/c", now.Add(time.Minute))}, 403, 0},
		{"signed for the tag", Request{Method: "PURGE", Tag: "t2", RemoteIP: other, Soft: true,
			Signature: Sign(testSecret, "PURGE", "tag:t2", now.Add(time.Minute))}, 200, 1},
	}
	for _, tt := range tests {
		resp := svc.Handle(context.Background(), tt.req)
		if resp.Status != tt.status {
			t.Errorf("%s: status = %d, want %d (%s)", tt.name, resp.Status, tt.status, resp.Body)
		}
		if want := `"purged":`; resp.Status == 200 && !strings.Contains(string(resp.Body), want) {
			t.Errorf("%s: body %s", tt.name, resp.Body)
		}
	}
	want := []call{{"tag", "t1", false}, {"tag", "t1", false}, {"tag", "t2", true}}
	if got := rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("target calls = %+v, want %+v", got, want)
	}
}

func TestNewRequestTag(t *testing.T) {
	t.Parallel()
	q := url.Values{"tag": {"product-1"}, "soft": {"1"}}
	r := NewRequest("purge", "", netip.Addr{}, func(string) string { return "" }, q.Get)
	if r.Tag != "product-1" || !r.Soft || r.Method != "PURGE" {
		t.Errorf("NewRequest(?tag=product-1&soft=1) = %+v", r)
	}
}

// A tag purge reaches the peers, and one that is down gets it from the journal when it returns.
func TestClusterTagPurge(t *testing.T) {
	t.Parallel()
	cAddr := reserveAddr(t, "127.0.0.4")
	aRec := newRecorder("/a", "/b").tag("t", "/a")
	bRec := newRecorder("/a", "/b").tag("t", "/a", "/b")
	b := startNode(t, "127.0.0.5:0", peerConfig("gw-b", t.TempDir()), bRec)
	a := startNode(t, "127.0.0.6:0", peerConfig("gw-a", t.TempDir(), b.addr, cAddr), aRec)
	runService(t, a.svc)

	status, res := purgeHTTP(t, a.addr, "PURGE", "/", "tag=t", bearer)
	if status != 200 || res.Key != "tag:t" || res.Tag != "t" || res.Purged != 3 {
		t.Fatalf("PURGE /purge/?tag=t = %d, %+v; want 200, key tag:t, 3 purged", status, res)
	}
	if len(res.Nodes) != 3 || res.Nodes[1].Status != NodeOK || res.Nodes[2].Status != NodeQueued {
		t.Errorf("nodes = %+v; want gw-a ok, gw-b ok, c queued", res.Nodes)
	}
	if aRec.Has("/a") || !aRec.Has("/b") || bRec.Has("/a") || bRec.Has("/b") {
		t.Errorf("after the tag purge: a has /a %v /b %v, b has /a %v /b %v; want only a's /b left",
			aRec.Has("/a"), aRec.Has("/b"), bRec.Has("/a"), bRec.Has("/b"))
	}
	// Node c comes up and gets the tag purge from a's journal.
	cRec := newRecorder("/a").tag("t", "/a")
	startNode(t, cAddr, peerConfig("gw-c", t.TempDir()), cRec)
	waitFor(t, "the journaled tag purge to reach c", func() bool { return !cRec.Has("/a") })
	if got := cRec.Calls(); !reflect.DeepEqual(got, []call{{"tag", "t", false}}) {
		t.Errorf("c's target calls = %+v, want one tag purge of t", got)
	}
}
