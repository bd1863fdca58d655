package worker

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
)

// cluster builds a view from a compact description: hosts[i] lists the devices of host i+1 as
// "devid:status:writable:percentFree".
type tdev struct {
	id       int
	status   string
	writable bool
	free     int // percent free; 0 = usage unknown
}

func testView(hosts map[int][]tdev) *view {
	v := &view{hosts: map[int]store.Host{}, devs: map[int]store.Device{}, obs: map[int]Observation{}, minFree: 100}
	for hid, devs := range hosts {
		v.hosts[hid] = store.Host{ID: hid, Name: "h", Status: "alive", IP: "127.0.0.1", HTTPPort: 7500}
		for _, d := range devs {
			dev := store.Device{ID: d.id, HostID: hid, Status: d.status, Weight: 100}
			if d.free > 0 {
				dev.MBTotal, dev.MBUsed = 100000, int64(100000-d.free*1000)
			}
			v.devs[d.id] = dev
			v.obs[d.id] = Observation{Reachable: true, Writable: d.writable}
		}
	}
	return v
}

func TestPolicyDecide(t *testing.T) {
	alive := func(id, free int) tdev { return tdev{id, "alive", true, free} }
	tests := []struct {
		name    string
		hosts   map[int][]tdev
		on      []int
		min     int
		failed  []int
		verdict verdict
		ideal   []int // as a set
		desp    []int // as a set
	}{
		{"two hosts one copy", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50)}}, []int{1}, 2, nil, needCopy, []int{2}, nil},
		{"one host two devices", map[int][]tdev{1: {alive(1, 50), alive(2, 50)}}, []int{1}, 2, nil, needCopy, []int{2}, nil},
		{"one host two copies satisfied (rule 4)", map[int][]tdev{1: {alive(1, 50), alive(2, 50)}}, []int{1, 2}, 2, nil, satisfied, nil, nil},
		{"distinct hosts satisfied", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50)}}, []int{1, 2}, 2, nil, satisfied, nil, nil},
		{"min 1 one copy", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50)}}, []int{1}, 1, nil, satisfied, nil, nil},
		{"too happy", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50)}, 3: {alive(3, 50)}}, []int{1, 2, 3}, 2, nil, tooHappy, nil, nil},
		{"same host copies are desperate", map[int][]tdev{1: {alive(1, 50), alive(2, 50)}, 2: {alive(3, 50)}}, []int{1}, 2, nil, needCopy, []int{3}, []int{2}},
		{"second copy on same host is not spread", map[int][]tdev{1: {alive(1, 50), alive(2, 50)}, 2: {alive(3, 50)}}, []int{1, 2}, 2, nil, needCopy, []int{3}, nil},
		{"count met, only desperate left", map[int][]tdev{1: {alive(1, 50), alive(2, 50)}, 2: {tdev{3, "alive", false, 50}}}, []int{1, 2}, 2, nil, tempFail, nil, nil},
		{"readonly and drain are no destinations", map[int][]tdev{1: {alive(1, 50)}, 2: {tdev{2, "readonly", true, 50}, tdev{3, "drain", true, 50}}}, []int{1}, 2, nil, tempFail, nil, nil},
		{"unwritable host skipped", map[int][]tdev{1: {alive(1, 50)}, 2: {tdev{2, "alive", false, 50}}, 3: {alive(3, 50)}}, []int{1}, 2, nil, needCopy, []int{3}, nil},
		{"failed destination excluded", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50)}, 3: {alive(3, 50)}}, []int{1}, 2, []int{2}, needCopy, []int{3}, nil},
		{"unknown usage never chosen", map[int][]tdev{1: {alive(1, 50)}, 2: {tdev{2, "alive", true, 0}}}, []int{1}, 2, nil, tempFail, nil, nil},
		{"only device with known usage chosen", map[int][]tdev{1: {alive(1, 50)}, 2: {tdev{2, "alive", true, 0}}, 3: {alive(3, 1)}}, []int{1}, 2, nil, needCopy, []int{3}, nil},
		{"all non-dead devices hold it (rule 5)", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50), tdev{3, "dead", false, 50}}}, []int{1, 2}, 3, nil, satisfied, nil, nil},
		{"three copies wanted on three hosts", map[int][]tdev{1: {alive(1, 50)}, 2: {alive(2, 50)}, 3: {alive(3, 50)}}, []int{1, 2}, 3, nil, needCopy, []int{3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testView(tt.hosts)
			failed := map[int]bool{}
			for _, d := range tt.failed {
				failed[d] = true
			}
			r := rand.New(rand.NewPCG(1, 2))
			d := policy{}.decide(v, tt.on, tt.min, failed, r.Float64)
			if d.verdict != tt.verdict {
				t.Fatalf("decide(on=%v, min=%d) = %v, want %v", tt.on, tt.min, d.verdict, tt.verdict)
			}
			if got := sorted(d.ideal); !reflect.DeepEqual(got, sorted(tt.ideal)) {
				t.Errorf("decide(on=%v).ideal = %v, want %v", tt.on, got, tt.ideal)
			}
			if got := sorted(d.desperate); !reflect.DeepEqual(got, sorted(tt.desp)) {
				t.Errorf("decide(on=%v).desperate = %v, want %v", tt.on, got, tt.desp)
			}
		})
	}
}

// A replica destination needs a host `alive` and at least min_free_space free (docs/workers.md,
// Replication): a writable alive device of a readonly or down host, or one with less free space
// than min_free_space (the view's 100 MiB), is passed over for one that has both; with no other
// candidate the file waits (temp_fail).
func TestPolicyDestinationNeedsAliveHostAndFreeSpace(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(v *view) // applied to a view of hosts 1-3 with dev1-dev3, dev1 holding the file
		verdict verdict
		ideal   []int
	}{
		{"every host alive", func(v *view) {}, needCopy, []int{2, 3}},
		{"readonly host", func(v *view) { setHostStatus(v, 2, "readonly") }, needCopy, []int{3}},
		{"down host", func(v *view) { setHostStatus(v, 2, "down") }, needCopy, []int{3}},
		{"no alive host left", func(v *view) { setHostStatus(v, 2, "readonly"); setHostStatus(v, 3, "down") }, tempFail, nil},
		{"free below min_free_space", func(v *view) { setFreeMB(v, 2, 99) }, needCopy, []int{3}},
		{"free at min_free_space", func(v *view) { setFreeMB(v, 2, 100) }, needCopy, []int{2, 3}},
		{"observed free below min_free_space", func(v *view) {
			v.obs[2] = Observation{Reachable: true, Writable: true, MBTotal: 100000, MBUsed: 100000 - 99}
		}, needCopy, []int{3}},
		{"no device with room", func(v *view) { setFreeMB(v, 2, 99); setFreeMB(v, 3, 0) }, tempFail, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testView(map[int][]tdev{1: {{1, "alive", true, 50}}, 2: {{2, "alive", true, 50}}, 3: {{3, "alive", true, 50}}})
			tt.setup(v)
			d := policy{}.decide(v, []int{1}, 2, nil, rand.New(rand.NewPCG(1, 2)).Float64)
			if d.verdict != tt.verdict {
				t.Fatalf("decide(on=[1], min=2) = %v, want %v", d.verdict, tt.verdict)
			}
			if got := sorted(d.ideal); !reflect.DeepEqual(got, sorted(tt.ideal)) {
				t.Errorf("decide(on=[1]).ideal = %v, want %v", got, tt.ideal)
			}
			if len(d.desperate) != 0 {
				t.Errorf("decide(on=[1]).desperate = %v, want none", d.desperate)
			}
		})
	}
}

func setHostStatus(v *view, hostID int, status string) {
	h := v.hosts[hostID]
	h.Status = status
	v.hosts[hostID] = h
}

// setFreeMB gives device id 100000 MiB with free MiB of it free, in its device row.
func setFreeMB(v *view, id int, free int64) {
	d := v.devs[id]
	d.MBTotal, d.MBUsed = 100000, 100000-free
	v.devs[id] = d
}

func sorted(s []int) []int {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestPolicyDecideMultipleDevices(t *testing.T) {
	v := testView(map[int][]tdev{1: {{1, "alive", true, 50}, {2, "alive", true, 50}}, 2: {{3, "alive", true, 50}}})
	p, err := parsePolicy("MultipleDevices(3)")
	if err != nil {
		t.Fatal(err)
	}
	d := p.decide(v, []int{1, 3}, 2, nil, rand.New(rand.NewPCG(1, 1)).Float64)
	if d.verdict != needCopy || !reflect.DeepEqual(d.ideal, []int{2}) {
		t.Fatalf("MultipleDevices(3).decide(on=[1 3]) = %v %v, want need_copy [2]", d.verdict, d.ideal)
	}
}

func TestParsePolicy(t *testing.T) {
	testutil.Parses(t, "parsePolicy", parsePolicy, map[string]policy{
		"":                     {},
		"MultipleHosts()":      {},
		"MultipleHosts(3)":     {min: 3},
		" MultipleHosts( 2 ) ": {min: 2},
		"MultipleDevices()":    {byDevice: true},
	})
	testutil.Rejects(t, "parsePolicy", parsePolicy, "MultipleHosts(0)", "MultipleHosts(x)", "MultipleHosts", "HostsPerNetwork(zone1=2)")
}

func TestWeightedOrder(t *testing.T) {
	weights := map[int]float64{1: 90, 2: 10, 3: 0, 4: -1}
	w := func(id int) float64 { return weights[id] }
	r := rand.New(rand.NewPCG(7, 7))
	firsts := map[int]int{}
	const rounds = 2000
	for range rounds {
		got := weightedOrder([]int{1, 2, 3, 4}, w, r.Float64)
		if len(got) != 2 {
			t.Fatalf("weightedOrder = %v, want the two positive-weight items", got)
		}
		firsts[got[0]]++
	}
	// With a fixed seed the draw is deterministic; device 1 (weight 90) must lead most of the time.
	if firsts[1] <= firsts[2] || firsts[1]+firsts[2] != rounds {
		t.Fatalf("weightedOrder first picks = %v, want device 1 ahead of device 2", firsts)
	}
}

func TestFidPath(t *testing.T) {
	type devFid struct {
		dev int
		fid int64
	}
	fidPath := func(k devFid) string { return FidPath(k.dev, k.fid) }
	testutil.Table(t, "FidPath", fidPath, map[devFid]string{
		{1, 1}:           "/dev1/0/000/000/0000000001.fid",
		{2, 10}:          "/dev2/0/000/000/0000000010.fid",
		{1, 17}:          "/dev1/0/000/000/0000000017.fid",
		{5, 148056}:      "/dev5/0/000/148/0000148056.fid",
		{7, 1234567890}:  "/dev7/1/234/567/1234567890.fid",
		{1, 2147483632}:  "/dev1/2/147/483/2147483632.fid",
		{3, 12345678901}: "/dev3/1/234/567/12345678901.fid",
	})
	if got, want := string(AppendFidPath([]byte("http://h:7500"), 5, 148056)), "http://h:7500/dev5/0/000/148/0000148056.fid"; got != want {
		t.Errorf("AppendFidPath after a prefix = %q, want %q", got, want)
	}
}

func TestParseUsage(t *testing.T) {
	parse := func(s string) (usage, error) { return parseUsage([]byte(s)) }
	testutil.Parses(t, "parseUsage", parse, map[string]usage{
		"available: 912345678\ndevice: /dev/sdb1\ndisk: /var/mogdata/dev1\ntime: 1700000000\ntotal: 976762584\nuse: 7%\nused: 64416906\n": {976762584, 64416906},
		"total:100\nused:  5\n\n\n":       {100, 5},
		"total: 100\r\nused: 5\r\n":       {100, 5},
		"my key: 3\ntotal: 10\nused: 1\n": {10, 1},
	})
	testutil.Rejects(t, "parseUsage", parse, "total: 100\n", "total: 0\nused: 0\n", "total: x\nused: 1\n", "total: 1\nused: y\n", "")
}

func FuzzParseUsage(f *testing.F) {
	f.Add([]byte("total: 100\nused: 5\n"))
	f.Add([]byte("available: 1\ndevice: /dev/x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := parseUsage(b)
		if err == nil && (u.total <= 0 || u.used <= 0) {
			t.Fatalf("parseUsage(%q) = %+v with no error, want positive total and used", b, u)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("MultipleHosts(2)")
	f.Add("MultipleDevices()")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePolicy(s)
		if err == nil && p.min < 0 {
			t.Fatalf("parsePolicy(%q) = %+v, negative min", s, p)
		}
	})
}

func TestParseDevList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"3,4,7", []int{3, 4, 7}},
		{" 3 , 4 ", []int{3, 4}},
		{"", nil},
		{"x,0,-2,5", []int{5}},
	}
	for _, tt := range tests {
		if got := parseDevList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseDevList(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
