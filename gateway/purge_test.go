package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/metrics/metricstest"
	"github.com/mogway/mogway/purge"
)

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: time.Minute}
}

func TestPurgePrefixOf10000Keys(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	g := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})
	c := g.srv.cache
	put := func(group string) {
		r, _, err := c.Get(context.Background(), cache.Request{Key: group, Group: group},
			func(ctx context.Context, prev *cache.Meta, w *cache.Writer) error {
				if err := w.Start(cache.Meta{Status: 200, Size: 1}); err != nil {
					return err
				}
				_, err := w.Write([]byte("x"))
				return err
			})
		if err != nil {
			t.Fatalf("Get(%q): %v", group, err)
		}
		io.Copy(io.Discard, r)
		r.Close()
	}
	const n = 10000
	for i := range n {
		put(fmt.Sprintf("/d/img/%05d.jpg", i))
	}
	for i := range 10 {
		put(fmt.Sprintf("/d/other/%d.jpg", i))
	}
	waitFills(t, g, n+10)
	code, body := doPurge(t, testClient(), g.base+"/purge/d/img/*")
	var res purge.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 || res.Purged != n {
		t.Fatalf("PURGE /d/img/* = %d %s (%v), want 200 and %d purged", code, body, err, n)
	}
	if got := c.Stats().Memory.Entries; got != 10 {
		t.Fatalf("entries left = %d, want the 10 outside the prefix", got)
	}
	if code, body := doPurge(t, testClient(), g.base+"/purge/*"); code != 200 || !strings.Contains(body, `"purged":10`) {
		t.Fatalf("PURGE /* = %d %s, want 200 and 10 purged", code, body)
	}
}

func TestPurgeFromDisallowedAddress(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "a.jpg", 17, 1000)
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Purge = &purge.Config{Allow: []string{"127.0.0.1/32"}}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	fetchCached(t, "GET", g.base+"/d/a.jpg", data, "MISS")
	waitFills(t, g, 1)
	for _, path := range []string{"/purge/d/a.jpg", "/purge/*"} {
		if code, body := doPurge(t, clientFrom("127.0.0.5"), g.base+path); code != 403 {
			t.Errorf("PURGE %s from 127.0.0.5 = %d %s, want 403", path, code, body)
		}
	}
	fetchCached(t, "GET", g.base+"/d/a.jpg", data, "HIT")
	if got := g.srv.Stats().Purge.Denied; got != 2 {
		t.Errorf("purge Stats().Denied = %d, want 2", got)
	}
	// A method the purge route does not take.
	req, _ := http.NewRequest("POST", g.base+"/purge/d/a.jpg", nil)
	resp, err := testClient().Do(req)
	if err != nil || resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, PURGE, DELETE" {
		t.Fatalf("POST /purge = %v %v, want 405 with Allow", resp, err)
	}
	resp.Body.Close()
	if code, _ := doPurge(t, clientFrom("127.0.0.1"), g.base+"/purge/d/a.jpg"); code != 200 {
		t.Errorf("PURGE from 127.0.0.1 = %d, want 200", code)
	}
}

func TestPurgeBehindTrustedProxyUsesRealIP(t *testing.T) {
	t.Parallel()
	ft := newFakeTracker()
	cfg := cacheRouteConfig(cache.Config{})
	cfg.Purge = &purge.Config{Allow: []string{"10.1.2.3"}}
	cfg.RealIP.TrustedProxies = []string{"127.0.0.0/8"}
	g := startGateway(t, cfg, Deps{Tracker: ft})
	for _, tc := range []struct {
		xff  string
		want int
	}{{"10.1.2.3", 404}, {"10.1.2.4", 403}, {"", 403}} {
		req, _ := http.NewRequest("PURGE", g.base+"/purge/d/a.jpg", nil)
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("PURGE with X-Forwarded-For %q = %d, want %d", tc.xff, resp.StatusCode, tc.want)
		}
	}
}

// peerDown is a gateway (gw2) that cached d/a.jpg on disk and then went down, and the configuration
// of a gateway (gw1) whose purges go to it, journaled while it is down and retried quickly.
type peerDown struct {
	node    *storageNode
	ft      *fakeTracker
	data    []byte
	addr    string // gw2's address, to start it again on
	peerCfg Config // gw2's configuration, with the same disk cache
	cfg     Config // gw1's
}

// cachedThenDown starts gw2 on ip, caches d/a.jpg on its disk and stops it.
func cachedThenDown(t *testing.T, ip string) peerDown {
	t.Helper()
	p := peerDown{addr: deadAddr(t, ip)}
	p.node, p.ft, p.data = storedObject(t, "a.jpg", 17, 2000)
	p.peerCfg = cacheRouteConfig(cache.Config{Disk: cache.DiskConfig{Path: t.TempDir()}})
	g2, stop2 := startGatewayAt(t, p.peerCfg, Deps{Tracker: p.ft}, p.addr)
	fetchCached(t, "GET", g2.base+"/d/a.jpg", p.data, "MISS")
	waitFor(t, "gw2 entry on disk", func() bool { return g2.srv.cache.Stats().Disk.Entries == 1 })
	stop2()
	p.cfg = cacheRouteConfig(cache.Config{})
	p.cfg.Purge = &purge.Config{Peers: []string{p.addr}, JournalDir: t.TempDir(),
		PeerTimeout: conf.Duration(2 * time.Second), RetryMin: conf.Duration(20 * time.Millisecond),
		RetryMax: conf.Duration(100 * time.Millisecond)}
	return p
}

func TestPurgeClusterPeerDownThenBack(t *testing.T) {
	t.Parallel()
	p := cachedThenDown(t, "127.0.0.3")
	n, ft, data, addr2, cfg2 := p.node, p.ft, p.data, p.addr, p.peerCfg
	g1 := startGateway(t, p.cfg, Deps{Tracker: ft})
	fetchCached(t, "GET", g1.base+"/d/a.jpg", data, "MISS")
	waitFills(t, g1, 1)
	code, body := doPurge(t, testClient(), g1.base+"/purge/d/a.jpg")
	if code != 200 || !strings.Contains(body, `"status":"queued"`) {
		t.Fatalf("PURGE with the peer down = %d %s, want 200 with the peer queued", code, body)
	}
	if got := g1.srv.Stats().Purge.Pending; got != 1 {
		t.Fatalf("purges pending = %d, want 1", got)
	}

	// gw2 comes back with its disk cache; the journal delivers the purge.
	g2b, _ := startGatewayAt(t, cfg2, Deps{Tracker: ft}, addr2)
	waitFor(t, "journal delivered", func() bool { return g1.srv.Stats().Purge.Pending == 0 })
	if got := g2b.srv.cache.Stats().Disk.Entries; got != 0 {
		t.Fatalf("gw2 disk entries after the journaled purge = %d, want 0", got)
	}
	fetchCached(t, "GET", g2b.base+"/d/a.jpg", data, "MISS")

	// A write through gw1 purges gw2 too.
	waitFills(t, g2b, 1)
	fetchCached(t, "GET", g2b.base+"/d/a.jpg", data, "HIT")
	ft.mu.Lock()
	ft.opens = []Dest{{DevID: 1, Path: "http://" + n.addr + fidPath(18)}}
	ft.mu.Unlock()
	newer := []byte("new bytes")
	if code, _ := put(t, g1.base+"/d/a.jpg", strings.NewReader(string(newer)), int64(len(newer))); code != 201 {
		t.Fatalf("PUT through gw1 = %d, want 201", code)
	}
	fetchCached(t, "GET", g2b.base+"/d/a.jpg", newer, "MISS")
}

// Without a cache: block a purge changes nothing locally but is still forwarded to the peers: a
// gateway that only fronts writes can invalidate the caching gateways beside it.
func TestPurgeWithoutCacheStillForwards(t *testing.T) {
	t.Parallel()
	_, ft, data := storedObject(t, "a.jpg", 17, 2000)
	g2 := startGateway(t, cacheRouteConfig(cache.Config{}), Deps{Tracker: ft})
	fetchCached(t, "GET", g2.base+"/d/a.jpg", data, "MISS")
	waitFills(t, g2, 1)
	fetchCached(t, "GET", g2.base+"/d/a.jpg", data, "HIT")

	peer := strings.TrimPrefix(g2.base, "http://")
	cfg1 := trackerConfig()
	cfg1.Purge = &purge.Config{Name: "gw1", Peers: []string{peer}, JournalDir: t.TempDir()}
	g1 := startGateway(t, cfg1, Deps{Tracker: ft})
	if g1.srv.cache != nil {
		t.Fatalf("gw1 has a cache without a cache: block")
	}
	code, body := doPurge(t, testClient(), g1.base+"/purge/d/a.jpg")
	var res purge.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 {
		t.Fatalf("PURGE through gw1 = %d %s (%v), want 200", code, body, err)
	}
	if len(res.Nodes) != 2 || res.Purged != 1 || res.Nodes[0] != (purge.NodeResult{Node: "gw1", Status: purge.NodeOK}) ||
		res.Nodes[1].Node != peer || res.Nodes[1].Status != purge.NodeOK || res.Nodes[1].Purged != 1 {
		t.Fatalf("PURGE through gw1 = %+v, want nothing purged on gw1 and 1 entry on %s", res, peer)
	}
	fetchCached(t, "GET", g2.base+"/d/a.jpg", data, "MISS")
}

// docs/purge.md: the journal survives restarts. A gateway restarted on the same journal_dir while
// its peer is still down reports the purge it owes (Stats and the journal-pending gauge), and
// delivers it once the peer answers again.
func TestPurgeJournalSurvivesGatewayRestart(t *testing.T) {
	t.Parallel()
	p := cachedThenDown(t, "127.0.0.22")
	ft, data, addr2, cfg1, cfg2 := p.ft, p.data, p.addr, p.cfg, p.peerCfg
	g1, stop1 := startGatewayAt(t, cfg1, Deps{Tracker: ft}, "127.0.0.1:0")
	if code, body := doPurge(t, testClient(), g1.base+"/purge/d/a.jpg"); code != 404 || !strings.Contains(body, `"status":"queued"`) {
		t.Fatalf("PURGE with the peer down = %d %s, want 404 with the peer queued", code, body)
	}
	stop1()

	// gw1 restarts on the same journal_dir; gw2 is still down.
	g1b := startGateway(t, cfg1, Deps{Tracker: ft})
	if got := g1b.srv.Stats().Purge.Pending; got != 1 {
		t.Errorf("restarted gw1 Stats().Purge.Pending = %d, want 1", got)
	}
	if got := metricstest.Scrape(t, g1b.base+"/metrics").Value("mogway_gateway_purge_journal_pending"); got != 1 {
		t.Errorf("restarted gw1 mogway_gateway_purge_journal_pending = %v, want 1", got)
	}

	// gw2 comes back with its disk cache; the restarted gw1 delivers the purge.
	g2b, _ := startGatewayAt(t, cfg2, Deps{Tracker: ft}, addr2)
	waitFor(t, "journal delivered", func() bool { return g1b.srv.Stats().Purge.Pending == 0 })
	if got := g2b.srv.cache.Stats().Disk.Entries; got != 0 {
		t.Errorf("gw2 disk entries after the journaled purge = %d, want 0", got)
	}
	if got := metricstest.Scrape(t, g1b.base+"/metrics").Value("mogway_gateway_purge_journal_pending"); got != 0 {
		t.Errorf("gw1 mogway_gateway_purge_journal_pending after delivery = %v, want 0", got)
	}
	fetchCached(t, "GET", g2b.base+"/d/a.jpg", data, "MISS")
}
