package tracker

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

// exchange is one request line and the reply expected for it: exact, or a regexp when want starts
// with "~".
type exchange struct {
	send string
	want string
}

func runExchanges(t *testing.T, lc *lineConn, xs []exchange) {
	t.Helper()
	for _, x := range xs {
		got := lc.do(x.send)
		if strings.HasPrefix(x.want, "~") {
			if !regexp.MustCompile(x.want[1:]).MatchString(got) {
				t.Errorf("%s = %q, want match %s", x.send, got, x.want[1:])
			}
			continue
		}
		if got != x.want {
			t.Errorf("%s = %q, want %q", x.send, got, x.want)
		}
	}
}

// TestSpecExchanges replays the tracker-only cases of spec sections 8.1, 8.4 and 8.5 on one
// connection, byte for byte.
func TestSpecExchanges(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	runExchanges(t, lc, []exchange{
		// 8.1 framing and encoding
		{"noop", "OK "},
		{"frobnicate x=1", "ERR unknown_command Unknown+server+command"},
		{"NOOP", "OK "},
		{"noop callid=42", "OK callid=42"},
		{"get_paths key=x", "ERR no_domain No+domain+provided"},
		{"create_domain domain=d", "OK domain=d"},
		{"get_paths domain=zz&key=x", "ERR unreg_domain Domain+name+invalid/not+found"},
		{"get_paths domain=d&key=", "ERR no_key no_key"},
		{"get_paths domain=d&key=nope&callid=7", "ERR unknown_key unknown_key 7"},
		{"noop", "OK "},
		{"test crash=1", "ERR failure Operation+failed"},
		{"test", "OK "},
		{"  noop", "ERR unknown_command Unknown+server+command"},
		// 8.5 administration
		{"create_domain domain=d2", "OK domain=d2"},
		{"create_domain domain=d2", "ERR domain_exists That+domain+already+exists"},
		{"create_domain domain=", "ERR no_domain No+domain+provided"},
		{"create_class domain=d&class=x", "ERR invalid_mindevcount The+mindevcount+must+be+at+least+1"},
		{"create_class domain=nope&class=x&mindevcount=2", "ERR domain_not_found Domain+not+found"},
		{"create_class domain=d&mindevcount=2", "ERR no_class No+class+provided"},
		{"create_class domain=d&class=x&mindevcount=2", "OK class=x&mindevcount=2&domain=d"},
		{"create_class domain=d&class=x&mindevcount=2", "ERR class_exists That+class+already+exists+in+that+domain"},
		{"create_class domain=d&class=y&mindevcount=2&replpolicy=Bogus%28%29", "~^ERR invalid_replpolicy \\S+$"},
		{"create_class domain=d&class=y&mindevcount=2&hashtype=CRC", "ERR invalid_hashtype invalid_hashtype"},
		// MultipleDevices(N) is honoured when found in the database but refused here (workers.md).
		{"create_class domain=d&class=y&mindevcount=2&replpolicy=MultipleDevices%282%29", "ERR invalid_replpolicy Unsupported+replication+policy+MultipleDevices%282%29%3B+use+MultipleHosts%28%29+or+MultipleHosts%28N%29"},
		{"create_class domain=d&class=y&mindevcount=2&replpolicy=MultipleDevices%28%29", "ERR invalid_replpolicy Unsupported+replication+policy+MultipleDevices%28%29%3B+use+MultipleHosts%28%29+or+MultipleHosts%28N%29"},
		{"update_class domain=d&class=nope&mindevcount=2", "ERR class_not_found Class+not+found"},
		{"update_class domain=d&class=x&mindevcount=3&replpolicy=MultipleDevices%283%29", "ERR invalid_replpolicy Unsupported+replication+policy+MultipleDevices%283%29%3B+use+MultipleHosts%28%29+or+MultipleHosts%28N%29"},
		{"update_class domain=d&class=x&mindevcount=3&hashtype=MD5", "OK class=x&mindevcount=3&domain=d"},
		{"get_domains", "OK domain1=d&domain1class1name=default&domain1class1mindevcount=2&domain1class1replpolicy=MultipleHosts%28%29&domain1class1hashtype=NONE&domain1class2name=x&domain1class2mindevcount=3&domain1class2replpolicy=MultipleHosts%28%29&domain1class2hashtype=MD5&domain1classes=2&domain2=d2&domain2class1name=default&domain2class1mindevcount=2&domain2class1replpolicy=MultipleHosts%28%29&domain2class1hashtype=NONE&domain2classes=1&domains=2"},
		{"update_class domain=d2&class=default&mindevcount=1&replpolicy=MultipleHosts%283%29", "OK class=default&mindevcount=1&domain=d2"},
		{"get_domains", "~&domain2class1name=default&domain2class1mindevcount=1&domain2class1replpolicy=MultipleHosts%283%29&"},
		{"delete_class domain=d&class=default", "ERR nodel_default_class Cannot+delete+the+default+class"},
		{"delete_class domain=d&class=nope", "ERR class_not_found Class+not+found"},
		{"delete_domain domain=d", "ERR domain_has_classes domain_has_classes"},
		{"delete_domain domain=nope", "ERR domain_not_found Domain+not+found"},
		{"delete_domain domain=d2", "OK domain=d2"},
		{"delete_class domain=d&class=x", "OK domain=d&class=x"},
		{"create_host host=h3&port=7500", "ERR no_ip IP+required+to+create+host"},
		{"create_host host=h3&ip=10.0.0.3", "ERR no_port Port+required+to+create+host"},
		{"create_host ip=10.0.0.3&port=7500", "ERR no_host No+host+provided"},
		{"create_host host=h1&ip=10.0.0.1&port=7500&status=alive", "OK hostid=1&hostname=h1"},
		{"create_host host=h2&ip=10.0.0.2&port=7500&status=alive", "OK hostid=2&hostname=h2"},
		{"create_host host=h3&ip=10.0.0.3&port=7500", "OK hostid=3&hostname=h3"},
		{"create_host host=h3&ip=10.0.0.9&port=7500", "ERR host_exists That+host+already+exists"},
		{"create_host host=h4&ip=10.0.0.9&port=7500&status=sleepy", "ERR unknown_state Invalid/unknown+state"},
		{"create_host host=h4&ip=10.0.0.3&port=7500", "ERR dup Duplicate+name/number+used."},
		{"get_hosts hostid=3", "OK hosts=1&host1_hostid=3&host1_status=down&host1_hostname=h3&host1_hostip=10.0.0.3&host1_http_port=7500&host1_http_get_port=&host1_altip=&host1_altmask="},
		{"update_host host=nope&status=alive", "ERR host_not_found Host+not+found"},
		{"update_host host=h3&getport=7600&status=readonly", "OK hostid=3&hostname=h3"},
		{"get_hosts hostid=3", "OK hosts=1&host1_hostid=3&host1_status=readonly&host1_hostname=h3&host1_hostip=10.0.0.3&host1_http_port=7500&host1_http_get_port=7600&host1_altip=&host1_altmask="},
		{"delete_host host=h3", "OK "},
		{"delete_host host=h3", "ERR unknown_host Host+not+found"},
		{"create_device hostname=h1&devid=1", "OK "},
		{"create_device hostname=h1&devid=2", "OK "},
		{"create_device hostid=2&devid=3", "OK "},
		{"create_device hostname=h1&devid=1", "ERR existing_devid existing_devid"},
		{"create_device hostname=h1&devid=abc", "ERR invalid_devid invalid_devid"},
		{"create_device hostname=h1&devid=7&state=bogus", "ERR invalid_state invalid_state"},
		{"create_device hostname=nope&devid=7", "ERR unknown_host Host+not+found"},
		{"create_device hostid=99&devid=7", "ERR unknown_hostid unknown_hostid"},
		{"create_device devid=7", "ERR bad_args No+hostid/hostname+parameter"},
		{"set_state host=h2&device=1&state=down", "ERR host_mismatch The+device+specified+doesn%27t+belong+to+the+host+specified"},
		{"set_state host=h1&device=99&state=down", "ERR no_device Device+not+found"},
		{"set_state host=h1&device=1&state=sleepy", "ERR bad_params Invalid+parameters+to+command%3B+please+see+documentation"},
		{"delete_host host=h1", "ERR host_not_empty Unable+to+delete+host%3B+it+contains+devices+still"},
		{"set_state host=h1&device=2&state=dead", "OK "},
		{"set_state host=h1&device=2&state=alive", "ERR state_too_high Status+cannot+go+from+dead+to+alive%3B+must+use+down"},
		{"set_state host=h1&device=2&state=down", "OK "},
		{"set_state host=h1&device=2&state=alive", "OK "},
		{"set_weight host=h1&device=2&weight=-1", "ERR bad_params Invalid+parameters+to+command%3B+please+see+documentation"},
		{"set_weight host=h1&device=2&weight=50", "OK "},
		{"get_devices devid=2", "OK devices=1&dev1_devid=2&dev1_hostid=1&dev1_status=alive&dev1_weight=50&dev1_mb_total=&dev1_mb_used=&dev1_mb_asof=&dev1_mb_free=&dev1_observed_state=&dev1_utilization=&dev1_reject_bad_md5="},
		{"set_server_setting key=foo&value=1", "ERR not_writable not_writable"},
		{"set_server_setting key=skip_mkcol&value=on", "OK "},
		{"server_setting key=skip_mkcol", "OK key=skip_mkcol&value=1"},
		{"set_server_setting key=skip_devcount&value=maybe", "ERR invalid_format Unknown+format"},
		{"set_server_setting key=fsck_checksum&value=MD5", "OK "},
		{"server_setting key=nothing", "OK key=nothing&value="},
		{"server_setting", "ERR bad_params Invalid+parameters+to+command%3B+please+see+documentation"},
		{"server_settings", "~^OK key_count=\\d+&"},
		// 8.4 listing on an empty domain
		{"list_keys domain=d", "ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29."},
		{"list_keys domain=d&prefix=foo&after=bar", "ERR after_mismatch Pattern+does+not+match+the+after-value%3F"},
		{"list_fids from=0&to=2", "OK fid_count=0"},
		// file commands on missing keys
		{"delete domain=d&key=k", "ERR unknown_key unknown_key"},
		{"rename domain=d&from_key=k&to_key=k2", "ERR unknown_key unknown_key"},
		{"rename domain=d&from_key=k", "ERR no_key no_key"},
		{"updateclass domain=d&key=k&class=default", "ERR invalid_key invalid_key"},
		{"updateclass domain=d&key=k&class=nope", "ERR class_not_found Class+not+found"},
		{"file_info domain=d&key=k", "ERR unknown_key unknown_key"},
		{"file_debug fid=12345", "OK checksum=NONE"},
		{"create_open domain=d&key=k&class=nope", "ERR unreg_class unreg_class"},
		{"create_open domain=d&key=k", "ERR no_devices No+devices+found+to+store+file"},
		{"create_close domain=d&devid=1&path=x", "ERR no_fid no_fid"},
		{"create_close domain=d&fid=5&path=x", "ERR no_devid no_devid"},
		{"create_close domain=d&fid=5&devid=1", "ERR no_path no_path"},
		{"create_close domain=d&fid=5&devid=1&path=x&checksum=MD5:zz", "ERR invalid_checksum_format invalid_checksum_format"},
		{"create_close domain=d&fid=5&devid=1&path=x", "ERR bogus_args bogus_args"},
		{"create_close domain=d&fid=5&devid=1&path=http://10.0.0.1:7500/dev1/0/000/000/0000000005.fid", "ERR no_temp_file No+tempfile+or+file+already+closed"},
		{"fsck_status", "~^OK running=0&host=&max_fid_checked=0&policy_only=0&end_fid=0&start_time=0&stop_time=0&current_time=\\d+&max_logid=0$"},
		{"fsck_start", "OK "},
		{"fsck_start", "ERR fsck_running fsck+is+already+running"},
		{"fsck_status", "~^OK running=1&host=tracker-test&"},
		{"fsck_stop", "OK "},
		{"fsck_getlog", "OK row_count=0"},
		{"fsck_clearlog", "OK "},
		{"fsck_reset policy_only=1&startpos=5", "OK "},
		{"rebalance_status", "ERR no_rebal_state No+available+rebalance+status"},
		{"clear_cache all=1", "OK all=1"},
		{"replicate_now", "OK count=0"},
		// Not offered (tracker.md, Where mogway differs): the Perl tracker's other commands.
		{"httpcopy domain=d&key=k", "ERR unknown_command Unknown+server+command"},
		{"edit_file domain=d&key=k", "ERR unknown_command Unknown+server+command"},
		{"plugin_meta_data domain=d&key=k", "ERR unknown_command Unknown+server+command"},
		{"plugin_filepaths_list_directory domain=d&path=%2F", "ERR unknown_command Unknown+server+command"},
		{"rebalance_start", "ERR unknown_command Unknown+server+command"},
		{"rebalance_stop", "ERR unknown_command Unknown+server+command"},
		{"rebalance_reset", "ERR unknown_command Unknown+server+command"},
		{"rebalance_test", "ERR unknown_command Unknown+server+command"},
		{"rebalance_set_policy policy=x", "ERR unknown_command Unknown+server+command"},
		{"stats", "ERR unknown_command Unknown+server+command"},
		{"checker", "ERR unknown_command Unknown+server+command"},
		{"noop", "OK "},
	})
}

// TestFraming covers spec 8.1 #4-#6 and #8: empty lines, pipelining, bare LF, ERR keeps the socket.
func TestFraming(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	lc.write("\r\nnoop\r\n")
	if got := lc.readLine(); got != "OK " {
		t.Fatalf("empty line then noop = %q, want %q", got, "OK ")
	}
	lc.write("list_keys domain=\r\nlist_keys domain=\r\n")
	for i := range 2 {
		if got := lc.readLine(); got != "ERR no_domain No+domain+provided" {
			t.Fatalf("pipelined reply %d = %q", i, got)
		}
	}
	lc.write("noop\n")
	if got := lc.readLine(); got != "OK " {
		t.Fatalf("bare LF noop = %q, want %q", got, "OK ")
	}
	// Many pipelined requests in one write come back in order.
	var b strings.Builder
	for i := range 50 {
		b.WriteString("noop callid=" + itoa(i) + "\r\n")
	}
	lc.write(b.String())
	for i := range 50 {
		if got, want := lc.readLine(), "OK callid="+itoa(i); got != want {
			t.Fatalf("pipelined reply %d = %q, want %q", i, got, want)
		}
	}
}

// TestLongLine: a line over max_line is answered with one ERR and skipped; the connection stays
// usable.
func TestLongLine(t *testing.T) {
	tt := startTracker(t, Config{MaxLine: 1024})
	lc := tt.dial(t)
	lc.write("get_paths domain=d&key=" + strings.Repeat("x", 10000) + "\r\nnoop\r\n")
	if got, want := lc.readLine(), "ERR bad_params Request+line+too+long+%28limit+1024+bytes%29"; got != want {
		t.Fatalf("long line = %q, want %q", got, want)
	}
	if got := lc.readLine(); got != "OK " {
		t.Fatalf("noop after long line = %q, want %q", got, "OK ")
	}
	if n := tt.s.Stats().TooLong; n != 1 {
		t.Errorf("Stats().TooLong = %d, want 1", n)
	}
}

// TestLineLengths: lines around the read buffer's size and up to max_line arrive whole.
func TestLineLengths(t *testing.T) {
	tt := startTracker(t, Config{MaxLine: 16384})
	lc := tt.dial(t)
	const prefix = "noop callid="
	for _, n := range []int{1, 4080, 4083, 4084, 4085, 4096, 8191, 8192, 8193, 16384 - len(prefix)} {
		id := strings.Repeat("a", n)
		if got := lc.do(prefix + id); got != "OK callid="+id {
			t.Errorf("noop with a %d-byte line = %.40q..., want the callid echoed", len(prefix)+n, got)
		}
	}
	id := strings.Repeat("a", 16385-len(prefix))
	for _, eol := range []string{"\r\n", "\n"} {
		lc.write(prefix + id + eol)
		if got := lc.readLine(); !strings.HasPrefix(got, "ERR bad_params ") {
			t.Errorf("noop with a 16385-byte line ending %q = %.40q, want ERR bad_params", eol, got)
		}
	}
	lc.ok("noop")
}

// TestAdminCommands covers spec 8.1 #17 and the other ! commands.
func TestAdminCommands(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	if got := lc.admin("!version"); len(got) != 1 || got[0] != Version {
		t.Errorf("!version = %q, want [%q]", got, Version)
	}
	stats := strings.Join(lc.admin("!stats"), "\n")
	for _, k := range []string{"uptime ", "pending_queries ", "processing_queries ", "bored_queryworkers ", "queries ", "times_out_of_qworkers "} {
		if !strings.Contains(stats, k) {
			t.Errorf("!stats lacks %q:\n%s", k, stats)
		}
	}
	if got := lc.admin("!jobs"); len(got) < 3 || got[0] != "queryworker count 20" {
		t.Errorf("!jobs = %q", got)
	}
	lc.ok("noop")
	recent := lc.admin("!recent")
	if len(recent) == 0 || !strings.HasSuffix(recent[len(recent)-1], " noop") {
		t.Errorf("!recent = %q, want the noop last", recent)
	}
	if got := lc.admin("!shutdown"); len(got) != 1 || !strings.HasPrefix(got[0], "ERROR:") {
		t.Errorf("!shutdown (not allowed) = %q, want an ERROR line", got)
	}
	if got := lc.admin("!want 5 replicate"); len(got) != 1 || !strings.HasPrefix(got[0], "ERROR:") {
		t.Errorf("!want = %q", got)
	}
	// The help text has LF line endings, as the Perl tracker's does, and ends with ".\r\n".
	lc.write("!bogus\r\n")
	var help strings.Builder
	for range 100 {
		l, err := lc.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading help: %v", err)
		}
		if l == ".\r\n" {
			break
		}
		help.WriteString(l)
	}
	if !strings.Contains(help.String(), "!version") {
		t.Errorf("help = %q", help.String())
	}
	if got := lc.admin("!watch"); len(got) != 1 || got[0] != "Added you to watcher list." {
		t.Errorf("!watch = %q", got)
	}
	if got := lc.admin("!watch"); len(got) != 1 || got[0] != "Removed you from watcher list." {
		t.Errorf("second !watch = %q", got)
	}
	lc.ok("noop")
}

// TestAdminWhileQueriesBusy: ! commands are answered while every query slot is taken, and the held
// queries show in !stats and !queue.
func TestAdminWhileQueriesBusy(t *testing.T) {
	tt := startTracker(t, Config{QueryWorkers: 1})
	// Take the only slot directly, as a long query would.
	tt.s.slots <- struct{}{}
	lc := tt.dial(t)
	lc.write("noop\r\n")
	admin := tt.dial(t)
	waitFor(t, "the noop to queue", func() bool { return tt.s.Stats().Pending == 1 })
	stats := strings.Join(admin.admin("!stats"), "\n")
	if !strings.Contains(stats, "pending_queries 1") {
		t.Errorf("!stats while busy lacks pending_queries 1:\n%s", stats)
	}
	if q := admin.admin("!queue"); len(q) != 1 || !strings.HasSuffix(q[0], " noop") {
		t.Errorf("!queue = %q, want the waiting noop", q)
	}
	<-tt.s.slots
	if got := lc.readLine(); got != "OK " {
		t.Fatalf("held noop = %q, want %q", got, "OK ")
	}
	if n := tt.s.Stats().OutOfWorkers; n != 1 {
		t.Errorf("Stats().OutOfWorkers = %d, want 1", n)
	}
}

// TestVanishingClient: a client that sends half a line, or a request and leaves before the reply,
// harms no one.
func TestVanishingClient(t *testing.T) {
	tt := startTracker(t, Config{})
	a := tt.dial(t)
	a.write("create_domain domain=half")
	a.c.Close()
	b := tt.dial(t)
	b.write("create_domain domain=gone\r\n")
	b.c.Close()
	lc := tt.dial(t)
	waitFor(t, "the abandoned request to finish", func() bool { return tt.s.Stats().Connections == 1 })
	if got := lc.do("create_domain domain=half"); got != "OK domain=half" {
		t.Errorf("create_domain half = %q, want OK: a half line must not run", got)
	}
	if got := lc.do("create_domain domain=gone"); got != "ERR domain_exists That+domain+already+exists" {
		t.Errorf("create_domain gone = %q: a request whose client left still completes", got)
	}
}

// gatedBackground is a background whose first monitor round ends when the test says so.
type gatedBackground struct {
	idleWorkers
	monitor chan struct{}
}

func (g gatedBackground) MonitorDone() <-chan struct{} { return g.monitor }

// TestStartupGate: queries wait for the first monitor round (spec 2.5); admin commands do not.
func TestStartupGate(t *testing.T) {
	st := startTrackerWith(t, Config{}, func(s *Server) {
		s.testBackground = gatedBackground{monitor: make(chan struct{})}
	})
	g := st.s.testBackground.(gatedBackground)
	lc := st.dial(t)
	lc.write("noop\r\n")
	admin := st.dial(t)
	waitFor(t, "the noop to be held", func() bool { return st.s.Stats().Pending == 1 })
	if got := admin.admin("!version"); len(got) != 1 {
		t.Errorf("!version while gated = %q", got)
	}
	close(g.monitor)
	if got := lc.readLine(); got != "OK " {
		t.Fatalf("held noop = %q, want %q", got, "OK ")
	}
}

// TestStartupWaitAnswersAnyway: when the first monitor round has not finished within startup_wait
// (it never does here), held queries are answered anyway (tracker.md, Configuration).
func TestStartupWaitAnswersAnyway(t *testing.T) {
	st := startTrackerWith(t, Config{StartupWait: conf.Duration(200 * time.Millisecond)}, func(s *Server) {
		s.testBackground = gatedBackground{monitor: make(chan struct{})}
	})
	lc := st.dial(t)
	start := time.Now()
	if got := lc.do("noop"); got != "OK " {
		t.Fatalf("noop with no monitor round finished = %q, want %q after startup_wait", got, "OK ")
	}
	// Held by the gate until startup_wait ran out, not answered at once: the wait is the
	// configuration's, so this is a lower bound on behaviour, not on speed.
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("noop answered after %v with the monitor round unfinished; want it held until startup_wait (200ms)", took)
	}
}

// TestCloseIsAbrupt: Close drops connections at once and Serve returns.
func TestCloseIsAbrupt(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	lc.ok("noop")
	tt.s.Close()
	lc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := lc.br.ReadString('\n'); err == nil {
		t.Fatal("connection still open after Close")
	}
}

// TestGracefulStop: a stop lets a running query finish and write its reply; idle connections are
// closed; Serve returns nil.
func TestGracefulStop(t *testing.T) {
	tt := startTracker(t, Config{})
	busy := tt.dial(t)
	idle := tt.dial(t)
	idle.ok("noop")
	busy.write("sleep duration=1\r\n")
	waitFor(t, "the sleep to run", func() bool { return tt.s.Stats().Processing == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- tt.stop() }()
	if got := busy.readLine(); got != "OK " {
		t.Errorf("running query during a graceful stop = %q, want %q", got, "OK ")
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	idle.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.br.ReadString('\n'); err == nil {
		t.Error("idle connection still open after a graceful stop")
	}
}

// TestShutdownCommand: !shutdown, when allowed, stops the tracker gracefully.
func TestShutdownCommand(t *testing.T) {
	tt := startTracker(t, Config{AllowShutdown: true})
	lc := tt.dial(t)
	if got := lc.admin("!shutdown"); len(got) != 1 || got[0] != "Shutting down." {
		t.Fatalf("!shutdown = %q", got)
	}
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", tt.addr, 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if err := tt.stop(); err != nil {
		t.Errorf("Serve after !shutdown = %v, want nil", err)
	}
}

// TestWatch: a !watch connection receives failed queries as ":: " lines.
func TestWatch(t *testing.T) {
	tt := startTracker(t, Config{})
	w := tt.dial(t)
	if got := w.admin("!watch"); len(got) != 1 || got[0] != "Added you to watcher list." {
		t.Fatalf("!watch = %q", got)
	}
	tt.dial(t).do("test crash=1")
	if got := w.readLine(); got != ":: Error running command 'test': crashed on purpose" {
		t.Errorf("watched line = %q", got)
	}
}

// TestSharedDatabase: two trackers on one database see each other's admin changes after a
// refresh, as trackers sharing a MySQL database do.
func TestSharedDatabase(t *testing.T) {
	a := startTracker(t, Config{RefreshInterval: conf.Duration(20 * time.Millisecond)})
	b, err := New(Config{RefreshInterval: conf.Duration(20 * time.Millisecond)}, a.st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	b.noWorkers = true
	ln := testutil.Listen(t, "127.0.0.1:0")
	testutil.Run(t, "tracker b", func(ctx context.Context) error { return b.Serve(ctx, ln) })
	bt := &testTracker{s: b, st: a.st, addr: ln.Addr().String()}
	lb := bt.dial(t)
	if got := lb.do("list_keys domain=shared"); got != "ERR unreg_domain Domain+name+invalid/not+found" {
		t.Fatalf("list_keys before = %q", got)
	}
	a.dial(t).ok("create_domain domain=shared")
	waitFor(t, "tracker b to see the domain", func() bool {
		return lb.do("list_keys domain=shared") == "ERR none_match No+keys+match+that+pattern+and+after-value+%28if+any%29."
	})
}
