package gateway

import (
	"bytes"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

func nodeRequests(g *gw, addr string) int64 {
	for _, n := range g.srv.Stats().Nodes {
		if n.Addr == addr {
			return n.Requests
		}
	}
	return 0
}

func TestUpstreamMaxFailsFailTimeout(t *testing.T) {
	t.Parallel()
	bad := startFault(t, "127.0.0.2", fault500, nil)
	good := startStorage(t, "127.0.0.3")
	data := pattern(5000)
	good.put(t, 71, data)
	clock := testutil.NewClock()
	// Hedging off: the counts below are of the round robin and max_fails alone; a hedge fired under
	// load would add a request to the bad server while it is still available.
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", NextUpstream: []string{"error", "timeout", "http_500"},
		Servers: []UpstreamServer{
			{Addr: bad.addr, MaxFails: 2, FailTimeout: conf.Duration(10 * time.Second)},
			{Addr: good.addr},
		}, Hedge: Hedge{Delay: "off"}}}}
	g := startGateway(t, cfg, Deps{Now: clock.Now})
	fetch := func() {
		t.Helper()
		code, _, body, err := get(t, "GET", g.base+fidPath(71))
		if err != nil || code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET = %d, %d bytes, %v; want 200 and the exact bytes", code, len(body), err)
		}
	}
	// Round robin alternates first picks, so four requests try the bad server twice: two failures
	// within fail_timeout reach max_fails 2.
	for i := 0; i < 4; i++ {
		fetch()
	}
	if n := bad.accepted.Load(); n != 2 {
		t.Fatalf("bad server tried %d times in 4 requests, want 2", n)
	}
	for i := 0; i < 6; i++ {
		fetch()
	}
	if n := bad.accepted.Load(); n != 2 {
		t.Errorf("bad server tried %d times while marked down, want still 2", n)
	}
	clock.Advance(10 * time.Second)
	fetch()
	fetch()
	if n := bad.accepted.Load(); n != 3 {
		t.Errorf("bad server tried %d times after fail_timeout, want 3 (tried once again)", n)
	}
}

func TestUpstreamNextUpstreamRules(t *testing.T) {
	t.Parallel()
	bad := startFault(t, "127.0.0.2", fault500, nil)
	empty := startStorage(t, "127.0.0.4")
	good := startStorage(t, "127.0.0.3")
	data := []byte("fastdfs bytes")
	good.put(t, 72, data)
	dead := deadAddr(t, "127.0.0.5")
	one := func(addr string) UpstreamServer { return UpstreamServer{Addr: addr, MaxFails: -1} }
	// Hedging off: under load the first server's answer can take longer than the hedge delay, and a
	// hedge to the next server would answer instead of the one the rules pass through.
	cfg := Config{Hedge: Hedge{Delay: "off"}, Routes: []Route{
		// Default next_upstream [error, timeout]: a 500 is passed through, a refused connect fails over.
		{Prefix: "/a/", StripPrefix: true, Servers: []UpstreamServer{one(bad.addr), one(good.addr)}},
		{Prefix: "/b/", StripPrefix: true, Servers: []UpstreamServer{one(dead), one(good.addr)}},
		{Prefix: "/c/", StripPrefix: true, NextUpstream: []string{"off"}, Servers: []UpstreamServer{one(dead), one(good.addr)}},
		{Prefix: "/d/", StripPrefix: true, Servers: []UpstreamServer{one(empty.addr), one(good.addr)}},
		{Prefix: "/e/", StripPrefix: true, NextUpstream: []string{"http_404"}, Servers: []UpstreamServer{one(empty.addr), one(good.addr)}},
		{Prefix: "/f/", StripPrefix: true, NextUpstream: []string{"http_500"}, Servers: []UpstreamServer{one(bad.addr)}},
		{Prefix: "/dev1/", Servers: []UpstreamServer{one(good.addr)}},
	}}
	g := startGateway(t, cfg, Deps{})
	tests := []struct {
		path string
		want int
		body []byte
	}{
		{"/a" + fidPath(72), 500, nil},
		{"/b" + fidPath(72), 200, data},
		{"/c" + fidPath(72), 502, nil},
		{"/d" + fidPath(72), 404, nil},
		{"/e" + fidPath(72), 200, data},
		{"/f" + fidPath(72), 500, nil}, // the last server's answer is passed through
		{fidPath(72), 200, data},       // no strip_prefix: the URI as sent
		{fidPath(72) + "?x=1", 200, data},
	}
	for _, tt := range tests {
		code, _, body, err := get(t, "GET", g.base+tt.path)
		if err != nil || code != tt.want || (tt.body != nil && !bytes.Equal(body, tt.body)) {
			t.Errorf("GET %s = %d %q, %v; want %d %q", tt.path, code, body, err, tt.want, tt.body)
		}
	}
}

func TestUpstreamWeights(t *testing.T) {
	t.Parallel()
	a := startStorage(t, "127.0.0.2")
	b := startStorage(t, "127.0.0.3")
	a.put(t, 73, []byte("x"))
	b.put(t, 73, []byte("x"))
	// Hedging off: on a loaded machine a slow first byte would let a hedge add a request to the
	// other server, and the count is of the weighted choice alone.
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", Servers: []UpstreamServer{
		{Addr: a.addr, Weight: 2}, {Addr: b.addr, Weight: 1}}, Hedge: Hedge{Delay: "off"}}}}
	g := startGateway(t, cfg, Deps{})
	for i := 0; i < 9; i++ {
		if code, _, _, err := get(t, "GET", g.base+fidPath(73)); err != nil || code != 200 {
			t.Fatalf("GET = %d, %v", code, err)
		}
	}
	if na, nb := nodeRequests(g, a.addr), nodeRequests(g, b.addr); na != 6 || nb != 3 {
		t.Errorf("requests with weights 2:1 = %d:%d, want 6:3", na, nb)
	}
}

func TestUpstreamResumeAfterMidBodyDeath(t *testing.T) {
	t.Parallel()
	data := pattern(1 << 20)
	good := startStorage(t, "127.0.0.3")
	good.put(t, 74, data)
	dying := startFault(t, "127.0.0.4", faultMidBody, data)
	one := func(addr string) UpstreamServer { return UpstreamServer{Addr: addr, MaxFails: -1} }
	// Hedging off: a slow first byte on a loaded machine must not let the good server answer first.
	cfg := Config{Routes: []Route{{Prefix: "/dev1/", Servers: []UpstreamServer{one(dying.addr), one(good.addr)},
		Hedge: Hedge{Delay: "off"}}}}
	g := startGateway(t, cfg, Deps{})
	// Round robin starts with the dying server on the first request.
	code, _, body, err := get(t, "GET", g.base+fidPath(74))
	if err != nil || code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, %v; want 200 and %d exact bytes", code, len(body), err, len(data))
	}
	if st := g.srv.Stats(); st.Resumed != 1 {
		t.Errorf("Stats().Resumed = %d, want 1", st.Resumed)
	}
	if code, _, body, err := get(t, "GET", g.base+fidPath(74), "Range", "bytes=0-1,5-6"); err != nil || code/100 != 2 || len(body) == 0 {
		t.Errorf("multi-range GET = %d, %d bytes, %v; want a 2xx", code, len(body), err)
	}
}

func TestExtend(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	idle := 80 * time.Second
	at := func(d time.Duration) time.Time { return now.Add(d) }
	tests := []struct {
		name         string
		armed, floor time.Time
		want         time.Time
		keep         bool
	}{
		{"no deadline yet", time.Time{}, time.Time{}, at(idle), false},
		{"fresh deadline kept", at(idle - time.Second), time.Time{}, at(idle), true},
		{"deadline at the slack edge kept", at(70 * time.Second), time.Time{}, at(idle), true},
		{"deadline older than the slack moved", at(69 * time.Second), time.Time{}, at(idle), false},
		{"deadline beyond idle moved back", at(idle + time.Second), time.Time{}, at(idle), false},
		{"later floor wins", at(idle), at(5 * time.Minute), at(5 * time.Minute), false},
		{"later floor already armed", at(5 * time.Minute), at(5 * time.Minute), at(5 * time.Minute), true},
		{"floor within the slack", at(75 * time.Second), at(75 * time.Second), at(idle), true},
		{"armed before a floor within the slack", at(71 * time.Second), at(75 * time.Second), at(idle), false},
	}
	for _, tc := range tests {
		got, keep := extend(tc.armed, tc.floor, now, idle)
		if !got.Equal(tc.want) || keep != tc.keep {
			t.Errorf("%s: extend(%v, %v) = %v, %v; want %v, %v", tc.name, tc.armed.Sub(now), tc.floor.Sub(now),
				got.Sub(now), keep, tc.want.Sub(now), tc.keep)
		}
	}
}

// Picking the targets of a group of up to ownTargets servers allocates nothing: they go into the
// room the fetchRequest has for them.
func TestGroupTargetsAllocs(t *testing.T) {
	g := newGroup([]UpstreamServer{{Addr: "127.0.0.2:1", Weight: 2}, {Addr: "127.0.0.3:1", Weight: 1},
		{Addr: "127.0.0.4:1", Weight: 1}}, newNodes(nodeOptions{}))
	var fr fetchRequest
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		fr.targets = g.targets(fr.own[:0], now, "/a")
	})
	if allocs != 0 {
		t.Errorf("group.targets allocates %.1f times per request, want 0", allocs)
	}
	if len(fr.targets) != 3 || &fr.targets[0] != &fr.own[0] {
		t.Errorf("targets = %d, in fr.own %v; want 3 in fr.own", len(fr.targets), &fr.targets[0] == &fr.own[0])
	}
}
