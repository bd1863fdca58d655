package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

func testDomains(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	ds, err := s.Domains(ctx)
	must(t, "Domains", err)
	if len(ds) != 0 {
		t.Fatalf("Domains() on a new store = %v, want none", ds)
	}
	a := domain(t, ctx, s, "photos")
	b := domain(t, ctx, s, "Photos") // byte-exact: differs by case only
	c := domain(t, ctx, s, "日本")
	if a.ID <= 0 || b.ID <= a.ID || c.ID <= b.ID {
		t.Fatalf("domain ids = %d, %d, %d, want increasing positive", a.ID, b.ID, c.ID)
	}
	_, err = s.CreateDomain(ctx, "photos")
	wantErr(t, `CreateDomain("photos") again`, err, store.ErrExists)
	ds, err = s.Domains(ctx)
	must(t, "Domains", err)
	want := []store.Domain{a, b, c}
	if !reflect.DeepEqual(ds, want) {
		t.Fatalf("Domains() = %v, want %v", ds, want)
	}
	// A stored default-class row goes with its domain.
	_, err = s.CreateClass(ctx, store.Class{DomainID: a.ID, Name: "default", MinDevCount: 3})
	must(t, "CreateClass(default)", err)
	must(t, "DeleteDomain", s.DeleteDomain(ctx, a.ID))
	wantErr(t, "DeleteDomain(deleted)", s.DeleteDomain(ctx, a.ID), store.ErrNotFound)
	cs, err := s.Classes(ctx)
	must(t, "Classes", err)
	if len(cs) != 0 {
		t.Fatalf("Classes() after DeleteDomain = %v, want none", cs)
	}
	ds, err = s.Domains(ctx)
	must(t, "Domains", err)
	if want := []store.Domain{b, c}; !reflect.DeepEqual(ds, want) {
		t.Fatalf("Domains() after delete = %v, want %v", ds, want)
	}
	// The name is free again.
	domain(t, ctx, s, "photos")
}

func testClasses(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	d := domain(t, ctx, s, "d")
	d2 := domain(t, ctx, s, "d2")
	c1, err := s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "thumbs", MinDevCount: 1})
	must(t, "CreateClass(thumbs)", err)
	c2, err := s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "orig", MinDevCount: 3, HashType: 1, ReplPolicy: "MultipleHosts(3)"})
	must(t, "CreateClass(orig)", err)
	if c1.ID != 1 || c2.ID != 2 {
		t.Fatalf("class ids = %d, %d, want 1, 2", c1.ID, c2.ID)
	}
	def, err := s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "default", MinDevCount: 4})
	must(t, "CreateClass(default)", err)
	if def.ID != 0 {
		t.Fatalf("CreateClass(default).ID = %d, want 0", def.ID)
	}
	other, err := s.CreateClass(ctx, store.Class{DomainID: d2.ID, Name: "thumbs", MinDevCount: 2})
	must(t, "CreateClass(thumbs) in another domain", err)
	if other.ID != 1 {
		t.Fatalf("first class id of d2 = %d, want 1", other.ID)
	}
	_, err = s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "thumbs", MinDevCount: 1})
	wantErr(t, "CreateClass(thumbs) again", err, store.ErrExists)
	_, err = s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "default", MinDevCount: 1})
	wantErr(t, "CreateClass(default) again", err, store.ErrExists)
	_, err = s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "Thumbs", MinDevCount: 1})
	must(t, "CreateClass(Thumbs)", err)

	cs, err := s.Classes(ctx)
	must(t, "Classes", err)
	want := []store.Class{def, c1, c2, {DomainID: d.ID, ID: 3, Name: "Thumbs", MinDevCount: 1}, other}
	if !reflect.DeepEqual(cs, want) {
		t.Fatalf("Classes() = %+v, want %+v", cs, want)
	}

	c2.MinDevCount, c2.HashType, c2.ReplPolicy, c2.Name = 2, 0, "", "originals"
	must(t, "UpdateClass", s.UpdateClass(ctx, c2))
	wantErr(t, "UpdateClass(missing)", s.UpdateClass(ctx, store.Class{DomainID: d.ID, ID: 99, Name: "x", MinDevCount: 1}), store.ErrNotFound)
	dup := c2
	dup.Name = "thumbs"
	wantErr(t, "UpdateClass(name clash)", s.UpdateClass(ctx, dup), store.ErrExists)
	must(t, "UpdateClass(unchanged)", s.UpdateClass(ctx, c2))
	cs, err = s.Classes(ctx)
	must(t, "Classes", err)
	if cs[2] != c2 {
		t.Fatalf("class after UpdateClass = %+v, want %+v", cs[2], c2)
	}

	n, err := s.CountFiles(ctx, d.ID, c1.ID)
	must(t, "CountFiles", err)
	if n != 0 {
		t.Fatalf("CountFiles(empty class) = %d, want 0", n)
	}
	for i, key := range []string{"a", "b", "c"} {
		fid, err := s.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, ClassID: c1.ID, Key: key})
		must(t, "CreateTempfile", err)
		cls := c1.ID
		if i == 2 {
			cls = 0
		}
		_, err = s.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, ClassID: cls, Key: key}})
		must(t, "CommitFile", err)
	}
	for _, tc := range []struct{ class, want int }{{c1.ID, 2}, {0, 1}, {c2.ID, 0}, {-1, 3}} {
		n, err := s.CountFiles(ctx, d.ID, tc.class)
		must(t, "CountFiles", err)
		if n != int64(tc.want) {
			t.Errorf("CountFiles(%d, %d) = %d, want %d", d.ID, tc.class, n, tc.want)
		}
	}
	must(t, "DeleteClass", s.DeleteClass(ctx, d.ID, c2.ID))
	wantErr(t, "DeleteClass(deleted)", s.DeleteClass(ctx, d.ID, c2.ID), store.ErrNotFound)
	// Ids are max+1: deleting the highest frees it, a hole below stays a hole.
	c4, err := s.CreateClass(ctx, store.Class{DomainID: d.ID, Name: "new", MinDevCount: 2})
	must(t, "CreateClass(new)", err)
	if c4.ID != 4 {
		t.Fatalf("CreateClass after a delete: id %d, want 4", c4.ID)
	}
}

func testHosts(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	h1, err := s.CreateHost(ctx, store.Host{Name: "sto1", Status: "alive", IP: "10.0.0.1", HTTPPort: 7500})
	must(t, "CreateHost(sto1)", err)
	h2, err := s.CreateHost(ctx, store.Host{Name: "sto2", Status: "down", IP: "10.0.0.2", HTTPPort: 7500, HTTPGetPort: 7600, AltIP: "192.168.0.2", AltMask: "192.168.0.0/24"})
	must(t, "CreateHost(sto2)", err)
	if h1.ID != 1 || h2.ID != 2 {
		t.Fatalf("host ids = %d, %d, want 1, 2", h1.ID, h2.ID)
	}
	h9, err := s.CreateHost(ctx, store.Host{ID: 9, Name: "sto9", Status: "alive", IP: "10.0.0.9", HTTPPort: 7500})
	must(t, "CreateHost(id 9)", err)
	if h9.ID != 9 {
		t.Fatalf("CreateHost(ID 9).ID = %d", h9.ID)
	}
	for _, h := range []store.Host{
		{Name: "sto1", IP: "10.0.0.3", HTTPPort: 7500, Status: "alive"},
		{Name: "sto3", IP: "10.0.0.1", HTTPPort: 7500, Status: "alive"},
		{Name: "sto3", IP: "10.0.0.3", AltIP: "192.168.0.2", HTTPPort: 7500, Status: "alive"},
		{ID: 2, Name: "sto4", IP: "10.0.0.4", HTTPPort: 7500, Status: "alive"},
	} {
		_, err := s.CreateHost(ctx, h)
		wantErr(t, "CreateHost("+h.Name+", "+h.IP+") clash", err, store.ErrExists)
	}
	hs, err := s.Hosts(ctx)
	must(t, "Hosts", err)
	if want := []store.Host{h1, h2, h9}; !reflect.DeepEqual(hs, want) {
		t.Fatalf("Hosts() = %+v, want %+v", hs, want)
	}
	h1.Status, h1.IP, h1.HTTPGetPort, h1.AltIP, h1.AltMask = "readonly", "10.0.0.11", 7501, "192.168.0.1", "192.168.0.0/24"
	must(t, "UpdateHost", s.UpdateHost(ctx, h1))
	must(t, "UpdateHost(unchanged)", s.UpdateHost(ctx, h1))
	clash := h9
	clash.IP = h2.IP
	wantErr(t, "UpdateHost(ip clash)", s.UpdateHost(ctx, clash), store.ErrExists)
	wantErr(t, "UpdateHost(missing)", s.UpdateHost(ctx, store.Host{ID: 77, Name: "x", IP: "10.9.9.9"}), store.ErrNotFound)
	hs, err = s.Hosts(ctx)
	must(t, "Hosts", err)
	if hs[0] != h1 {
		t.Fatalf("host after UpdateHost = %+v, want %+v", hs[0], h1)
	}
	must(t, "DeleteHost", s.DeleteHost(ctx, h9.ID))
	wantErr(t, "DeleteHost(deleted)", s.DeleteHost(ctx, h9.ID), store.ErrNotFound)
}

func testDevices(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	h, err := s.CreateHost(ctx, store.Host{Name: "sto1", Status: "alive", IP: "10.0.0.1", HTTPPort: 7500})
	must(t, "CreateHost", err)
	must(t, "CreateDevice(1)", s.CreateDevice(ctx, store.Device{ID: 1, HostID: h.ID, Status: "alive"}))
	must(t, "CreateDevice(7)", s.CreateDevice(ctx, store.Device{ID: 7, HostID: h.ID, Status: "down", Weight: 50}))
	wantErr(t, "CreateDevice(1) again", s.CreateDevice(ctx, store.Device{ID: 1, HostID: h.ID, Status: "alive"}), store.ErrExists)
	ds, err := s.Devices(ctx)
	must(t, "Devices", err)
	want := []store.Device{
		{ID: 1, HostID: h.ID, Status: "alive", Weight: 100},
		{ID: 7, HostID: h.ID, Status: "down", Weight: 50},
	}
	if !reflect.DeepEqual(ds, want) {
		t.Fatalf("Devices() = %+v, want %+v", ds, want)
	}
	must(t, "UpdateDevice", s.UpdateDevice(ctx, store.Device{ID: 7, HostID: h.ID, Status: "drain", Weight: 0}))
	must(t, "UpdateDeviceUsage", s.UpdateDeviceUsage(ctx, 1, 1<<22, 1<<21, 1700000000))
	wantErr(t, "UpdateDevice(missing)", s.UpdateDevice(ctx, store.Device{ID: 99, Status: "alive"}), store.ErrNotFound)
	wantErr(t, "UpdateDeviceUsage(missing)", s.UpdateDeviceUsage(ctx, 99, 1, 1, 1), store.ErrNotFound)
	ds, err = s.Devices(ctx)
	must(t, "Devices", err)
	want = []store.Device{
		{ID: 1, HostID: h.ID, Status: "alive", Weight: 100, MBTotal: 1 << 22, MBUsed: 1 << 21, MBAsOf: 1700000000},
		{ID: 7, HostID: h.ID, Status: "drain", Weight: 0},
	}
	if !reflect.DeepEqual(ds, want) {
		t.Fatalf("Devices() after updates = %+v, want %+v", ds, want)
	}
	must(t, "DeleteDevice", s.DeleteDevice(ctx, 7))
	wantErr(t, "DeleteDevice(deleted)", s.DeleteDevice(ctx, 7), store.ErrNotFound)
	ds, err = s.Devices(ctx)
	must(t, "Devices", err)
	if len(ds) != 1 || ds[0].ID != 1 {
		t.Fatalf("Devices() after delete = %+v, want device 1 only", ds)
	}
}

func testSettings(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	m, err := s.Settings(ctx)
	must(t, "Settings", err)
	if m["schema_version"] != "17" {
		t.Errorf("Settings()[schema_version] = %q, want %q", m["schema_version"], "17")
	}
	must(t, "SetSetting", s.SetSetting(ctx, "skip_mkcol", "1"))
	must(t, "SetSetting", s.SetSetting(ctx, "fsck_host", "tracker-a"))
	must(t, "SetSetting", s.SetSetting(ctx, "skip_mkcol", "0"))
	m, err = s.Settings(ctx)
	must(t, "Settings", err)
	if m["skip_mkcol"] != "0" || m["fsck_host"] != "tracker-a" {
		t.Fatalf("Settings() = %v, want skip_mkcol=0 fsck_host=tracker-a", m)
	}
	must(t, "SetSetting(empty)", s.SetSetting(ctx, "fsck_host", ""))
	m, err = s.Settings(ctx)
	must(t, "Settings", err)
	if _, ok := m["fsck_host"]; ok {
		t.Fatalf("Settings() after deleting fsck_host = %v", m)
	}

	must(t, "SetSetting", s.SetSetting(ctx, "fsck_sum_evcount_MISS", "4"))
	must(t, "SetSettings", s.SetSettings(ctx, map[string]string{
		"fsck_start_time":       "1000",
		"fsck_host":             "tracker-b",
		"fsck_sum_evcount_MISS": "",
		"skip_mkcol":            "1",
		"fsck_never_set":        "",
	}))
	m, err = s.Settings(ctx)
	must(t, "Settings", err)
	want := map[string]string{"schema_version": "17", "fsck_start_time": "1000", "fsck_host": "tracker-b", "skip_mkcol": "1"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Settings() after SetSettings = %v, want %v", m, want)
	}
	must(t, "SetSettings(empty)", s.SetSettings(ctx, nil))
	m, err = s.Settings(ctx)
	must(t, "Settings", err)
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Settings() after SetSettings(nil) = %v, want %v", m, want)
	}
}

// testConcurrentSettings writes a pair of settings with SetSettings from two Stores while a third
// reads them: every read sees both keys from the same write.
func testConcurrentSettings(t *testing.T, open Open) {
	ctx, a, b := twoStores(t, open)
	r := newStore(t, open)
	const writes = 20
	var wg sync.WaitGroup
	for w, s := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				v := fmt.Sprint(w, "-", i)
				kv := map[string]string{"fsck_start_time": v, "fsck_host": v}
				if i%5 == 4 {
					kv = map[string]string{"fsck_start_time": "", "fsck_host": ""}
				}
				if err := s.SetSettings(ctx, kv); err != nil {
					t.Errorf("SetSettings(%v): %v", kv, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	// Read until the writers are done (at most maxReads times or up to the first failure), then
	// wait for them, so that none reports after the test has ended.
	const maxReads = 100000
	defer func() { <-done }()
	for reads := 0; reads < maxReads; reads++ {
		m, err := r.Settings(ctx)
		if err != nil {
			t.Errorf("Settings: %v", err)
			return
		}
		st, okS := m["fsck_start_time"]
		host, okH := m["fsck_host"]
		if st != host || okS != okH {
			t.Errorf("Settings() read %d mixes two writes: fsck_start_time=%q (%v), fsck_host=%q (%v)", reads, st, okS, host, okH)
			return
		}
		select {
		case <-done:
			return
		default:
		}
	}
}

func testFsckLog(t *testing.T, open Open) {
	ctx := ctxFor(t)
	s := newStore(t, open)
	in := []store.FsckEvent{
		{UTime: 100, Fid: 5, EvCode: "NOPA"},
		{UTime: 101, Fid: 6, EvCode: "MISS", DevID: 3},
		{UTime: 102, EvCode: "SRCH"},
	}
	for _, e := range in {
		must(t, "AddFsckEvent", s.AddFsckEvent(ctx, e))
	}
	got, err := s.FsckEvents(ctx, 0, 10)
	must(t, "FsckEvents", err)
	if len(got) != 3 {
		t.Fatalf("FsckEvents(0, 10) = %+v, want 3 rows", got)
	}
	for i := range got {
		if got[i].LogID <= 0 || (i > 0 && got[i].LogID <= got[i-1].LogID) {
			t.Fatalf("FsckEvents logids = %+v, want increasing", got)
		}
		e := got[i]
		e.LogID = 0
		if e != in[i] {
			t.Errorf("FsckEvents()[%d] = %+v, want %+v", i, e, in[i])
		}
	}
	after, err := s.FsckEvents(ctx, got[0].LogID, 1)
	must(t, "FsckEvents", err)
	if len(after) != 1 || after[0] != got[1] {
		t.Fatalf("FsckEvents(%d, 1) = %+v, want [%+v]", got[0].LogID, after, got[1])
	}
	max, err := s.MaxFsckLogID(ctx)
	must(t, "MaxFsckLogID", err)
	if max != got[2].LogID {
		t.Fatalf("MaxFsckLogID() = %d, want %d", max, got[2].LogID)
	}
	must(t, "ClearFsckLog", s.ClearFsckLog(ctx))
	got, err = s.FsckEvents(ctx, 0, 10)
	must(t, "FsckEvents", err)
	if len(got) != 0 {
		t.Fatalf("FsckEvents after ClearFsckLog = %+v", got)
	}
	max, err = s.MaxFsckLogID(ctx)
	must(t, "MaxFsckLogID", err)
	if max != 0 {
		t.Fatalf("MaxFsckLogID() of an empty log = %d, want 0", max)
	}
}
