package tracker

import (
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/replica"
	"github.com/mogway/mogway/tracker/worker"
)

func TestURLsAndAltIP(t *testing.T) {
	h := store.Host{IP: "10.0.0.1", HTTPPort: 7500, HTTPGetPort: 7600, AltIP: "192.168.0.1", AltMask: "192.168.0.0/16"}
	for _, tc := range []struct {
		name  string
		cl    client
		write string
		read  string
	}{
		{"outside altmask", client{ip: net.ParseIP("10.1.2.3")}, "http://10.0.0.1:7500/dev4/0/000/000/0000000005.fid", "http://10.0.0.1:7600/dev4/0/000/000/0000000005.fid"},
		{"inside altmask", client{ip: net.ParseIP("192.168.3.4")}, "http://192.168.0.1:7500/dev4/0/000/000/0000000005.fid", "http://192.168.0.1:7600/dev4/0/000/000/0000000005.fid"},
		{"zone=alt", client{ip: net.ParseIP("10.1.2.3"), altZone: true}, "http://192.168.0.1:7500/dev4/0/000/000/0000000005.fid", "http://192.168.0.1:7600/dev4/0/000/000/0000000005.fid"},
	} {
		if got := writeURL(h, 4, 5, tc.cl); got != tc.write {
			t.Errorf("%s: writeURL = %q, want %q", tc.name, got, tc.write)
		}
		if got := readURL(h, 4, 5, tc.cl); got != tc.read {
			t.Errorf("%s: readURL = %q, want %q", tc.name, got, tc.read)
		}
	}
	// An IPv6 host is bracketed, as net.JoinHostPort does.
	if got, want := readURL(store.Host{IP: "::1", HTTPPort: 7500}, 4, 5, client{}), "http://[::1]:7500/dev4/0/000/000/0000000005.fid"; got != want {
		t.Errorf("readURL of an IPv6 host = %q, want %q", got, want)
	}
	// altip without altmask is never used.
	h.AltMask = ""
	if got := hostIP(h, client{altZone: true}); got != "10.0.0.1" {
		t.Errorf("hostIP without altmask = %q, want the hostip", got)
	}
}

// TestAltIPOverTheWire: create_open from a client inside altmask gets altip URLs, and create_close
// checks the path against the same choice.
func TestAltIPOverTheWire(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	lc.ok("create_domain domain=d")
	lc.ok("create_host host=h1&ip=10.0.0.1&port=7500&status=alive&altip=127.0.0.9&altmask=127.0.0.0/8")
	lc.ok("create_device hostname=h1&devid=1")
	tt.observeAll(1)
	a := lc.ok("create_open domain=d&key=k")
	want := "http://127.0.0.9:7500/dev1/0/000/000/" + strings.Repeat("0", 10-len(a.Get("fid"))) + a.Get("fid") + ".fid"
	if a.Get("path") != want {
		t.Errorf("create_open path = %q, want %q (altip)", a.Get("path"), want)
	}
	hostPath := "http://10.0.0.1:7500" + strings.TrimPrefix(a.Get("path"), "http://127.0.0.9:7500")
	if got := lc.do("create_close domain=d&key=k&fid=" + a.Get("fid") + "&devid=1&path=" + hostPath); got != "ERR bogus_args bogus_args" {
		t.Errorf("create_close with the hostip path from an altmask client = %q, want bogus_args", got)
	}
}

// seqRand returns the given values in turn.
type seqRand struct {
	v []float64
	i int
}

func (s *seqRand) Float64() float64 { x := s.v[s.i%len(s.v)]; s.i++; return x }

func TestWeightedOrder(t *testing.T) {
	for _, tc := range []struct {
		weights []float64
		draws   []float64
		want    []int
	}{
		{[]float64{1, 1, 1}, []float64{0}, []int{0, 1, 2}},
		{[]float64{1, 1, 1}, []float64{0.99}, []int{2, 1, 0}},
		{[]float64{0, 5, -1, 5}, []float64{0.6, 0}, []int{3, 1}},
		{[]float64{90, 10}, []float64{0.95, 0}, []int{1, 0}},
		{nil, []float64{0}, []int{}},
	} {
		got := weightedOrder(tc.weights, &seqRand{v: tc.draws})
		if !slices.Equal(got, tc.want) {
			t.Errorf("weightedOrder(%v, %v) = %v, want %v", tc.weights, tc.draws, got, tc.want)
		}
	}
	// Over many draws, a device of weight 3 comes first about three times as often as one of weight 1.
	r := rand.New(rand.NewPCG(1, 2))
	first := map[int]int{}
	for range 4000 {
		first[weightedOrder([]float64{3, 1}, r)[0]]++
	}
	if first[0] < 2600 || first[0] > 3400 {
		t.Errorf("weight 3 first %d of 4000 times, want about 3000", first[0])
	}
}

func TestChooseDestinations(t *testing.T) {
	now := time.Now()
	dev := func(id, host int, status string, writable bool, total, used int64) devInfo {
		return devInfo{
			dev:      store.Device{ID: id, HostID: host, Status: status, Weight: 100},
			host:     store.Host{ID: host, Status: "alive"},
			obs:      Observation{Reachable: true, Writable: writable, MBTotal: total, MBUsed: used, At: now},
			observed: true,
		}
	}
	devs := []devInfo{
		dev(1, 1, "alive", true, 1000, 100),
		dev(2, 1, "alive", true, 1000, 100),
		dev(3, 2, "alive", true, 1000, 500),
		dev(4, 3, "readonly", true, 1000, 0),
		dev(5, 4, "alive", false, 1000, 0),
		dev(6, 5, "alive", true, 1000, 999),
		dev(7, 6, "alive", true, 0, 0),
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		got := chooseDestinations(devs, 0, 3, 10, r)
		if len(got) != 2 {
			t.Fatalf("chooseDestinations = %d devices, want 2 (hosts 1 and 2 only)", len(got))
		}
		if got[0].host.ID == got[1].host.ID {
			t.Fatalf("chooseDestinations picked two devices of host %d", got[0].host.ID)
		}
		for _, d := range got {
			if d.dev.ID > 3 {
				t.Fatalf("chooseDestinations picked dev%d, which cannot take new files", d.dev.ID)
			}
		}
	}
	// size: only devices with room; 500 MiB free fits 400 MiB, 900 MiB fits too.
	for range 50 {
		got := chooseDestinations(devs, 600<<20, 1, 10, r)
		if len(got) != 1 || got[0].dev.ID == 3 {
			t.Fatalf("chooseDestinations(600MiB) = %v, want dev1 or dev2", got)
		}
	}
}

func TestSettingValue(t *testing.T) {
	for _, tc := range []struct {
		key, value, clean string
		writable          bool
		bad               bool
	}{
		{"skip_mkcol", "on", "1", true, false},
		{"skip_mkcol", "off", "0", true, false},
		{"skip_mkcol", "yes", "1", true, false},
		{"skip_mkcol", "No", "0", true, false},
		{"skip_mkcol", "", "0", true, false},
		{"skip_mkcol", "maybe", "", true, true},
		{"case_sensitive_list_keys", "true", "1", true, false},
		{"memcache_ttl", "60", "60", true, false},
		{"memcache_ttl", "6x", "", true, true},
		{"slave_keys", "a,b", "a,b", true, false},
		{"slave_keys", "", "", true, false},
		{"zone_east", "10.0.0.0/8, 192.168.0.0/16", "10.0.0.0/8, 192.168.0.0/16", true, false},
		{"zone_east", "nope", "", true, true},
		{"fsck_checksum", "class", "", true, false},
		{"fsck_checksum", "MD5", "MD5", true, false},
		{"fsck_checksum", "CRC", "", true, true},
		{"queue_size_for_fsck", "100", "100", true, false},
		{"schema_version", "18", "", false, false},
		{"fsck_host", "x", "", false, false},
	} {
		clean, writable, problem := settingValue(tc.key, tc.value)
		if clean != tc.clean || writable != tc.writable || (problem != "") != tc.bad {
			t.Errorf("settingValue(%q, %q) = %q, %v, %q; want %q, %v, bad=%v", tc.key, tc.value, clean, writable, problem, tc.clean, tc.writable, tc.bad)
		}
	}
}

func TestParseChecksum(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string
	}{
		{"MD5:5d41402abc4b2a76b9719d911017c592", true, "MD5:5d41402abc4b2a76b9719d911017c592"},
		{"MD5:5D41402ABC4B2A76B9719D911017C592", true, "MD5:5d41402abc4b2a76b9719d911017c592"},
		{"SHA-1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", true, "SHA-1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"},
		{"MD5:zz", false, ""},
		{"MD5:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", false, ""},
		{"md5:5d41402abc4b2a76b9719d911017c592", false, ""},
		{"5d41402abc4b2a76b9719d911017c592", false, ""},
	} {
		c, ok := parseChecksum(1, tc.in)
		if ok != tc.ok || (ok && checksumString(*c) != tc.want) {
			t.Errorf("parseChecksum(%q) = %v, %v; want %q, %v", tc.in, c, ok, tc.want, tc.ok)
		}
	}
}

func TestPerlInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"", 0}, {"0", 0}, {"12", 12}, {"12abc", 12}, {"abc", 0}, {"-5", -5}, {"+7", 7}, {" 3", 0},
	} {
		if got := perlInt(tc.in); got != tc.want {
			t.Errorf("perlInt(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if got := perlInt("99999999999999999999"); got <= 0 {
		t.Errorf("perlInt(huge) = %d, want a large positive number (no overflow)", got)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Config{Listen: "nope", DB: "postgres://x", QueryWorkers: 501, MaxLine: 10, DefaultMinDevCount: 300, SideChannelPort: 70000, TempfileMaxAge: conf.Duration(time.Second),
		NodeTimeout: conf.Duration(time.Millisecond), ChecksumTimeout: conf.Duration(-time.Second), VerifyHedgeDelay: conf.Duration(-time.Millisecond)}
	err := bad.Validate()
	fields, _ := conf.FieldErrors(err)
	for _, f := range []string{"listen", "db", "query_workers", "max_line", "default_mindevcount", "side_channel_port", "tempfile_max_age", "node_timeout", "checksum_timeout", "verify_hedge_delay"} {
		found := slices.ContainsFunc(fields, func(fe *conf.FieldError) bool { return fe.Field == f })
		if !found {
			t.Errorf("Validate() = %v, lacks a FieldError for %s", err, f)
		}
	}
	if err := (&Config{}).Validate(); err != nil {
		t.Errorf("zero Config.Validate() = %v, want nil", err)
	}
	good := Config{Listen: "127.0.0.1:7001", DB: "mysql://u:p@tcp(db:3306)/mogilefs", QueryWorkers: 5, VerifyHedgeDelay: conf.Duration(time.Millisecond)}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", good, err)
	}
}

// tracker.tempfile_max_age must be at least a minute (docs/workers.md, Configuration): 59s is
// refused with a FieldError naming it, 1m is accepted, and so is 0 (the default, 1h).
func TestConfigTempfileMaxAgeAtLeastAMinute(t *testing.T) {
	for _, tc := range []struct {
		age  time.Duration
		want bool // valid
	}{
		{59 * time.Second, false},
		{time.Minute, true},
		{0, true},
	} {
		c := Config{TempfileMaxAge: conf.Duration(tc.age)}
		err := c.Validate()
		var fe *conf.FieldError
		switch {
		case tc.want && err != nil:
			t.Errorf("Validate(tempfile_max_age %s) = %v, want nil", tc.age, err)
		case !tc.want && (!errors.As(err, &fe) || fe.Field != "tempfile_max_age"):
			t.Errorf("Validate(tempfile_max_age %s) = %v, want a FieldError for tempfile_max_age", tc.age, err)
		}
	}
}

// Every problem of a nested section survives the caller's conf.Within: with the workers' problems
// added as one joined error, Within("tracker", ...) kept only the first of them.
func TestConfigValidateReportsEveryNestedProblem(t *testing.T) {
	c := Config{Workers: worker.Config{BatchSize: -1, ReaperBatch: -2}}
	fields, others := conf.FieldErrors(conf.Within("tracker", c.Validate()))
	var got []string
	for _, f := range fields {
		got = append(got, f.Field)
	}
	want := []string{"tracker.workers.batch_size", "tracker.workers.reaper_batch"}
	if !slices.Equal(got, want) || len(others) != 0 {
		t.Errorf("fields of Within(tracker, Validate()) = %q, others %v; want %q", got, others, want)
	}
}

func TestConfigReplicateNeedsSQLite(t *testing.T) {
	rep := replica.Config{To: "file:///var/backups/mogway"}
	for _, tc := range []struct {
		db      string
		wantErr string // "" = valid
	}{
		{"", ""}, // the default is SQLite
		{"sqlite:/var/lib/mogway/tracker.db", ""},
		{"mysql://u:p@tcp(db:3306)/mogilefs", "replicate.to"},
	} {
		c := Config{DB: tc.db, Replicate: rep}
		err := c.Validate()
		var fe *conf.FieldError
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("Validate(db %q, replicate) = %v, want nil", tc.db, err)
		case tc.wantErr != "" && (!errors.As(err, &fe) || fe.Field != tc.wantErr):
			t.Errorf("Validate(db %q, replicate) = %v, want a FieldError for %s", tc.db, err, tc.wantErr)
		}
	}
	bad := Config{Replicate: replica.Config{To: "s3://bucket/x"}}
	var fe *conf.FieldError
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Field != "replicate.to" {
		t.Errorf("Validate(replicate.to s3://) = %v, want a FieldError for replicate.to", err)
	}
}
