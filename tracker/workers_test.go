package tracker

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/worker"
)

// The workers: section inherits the keys it shares with the tracker section, including the
// storage nodes' side-channel port (a changed tracker.side_channel_port once did not reach the
// workers' digest requests).
func TestWorkerConfigInheritsSharedKeys(t *testing.T) {
	var cfg Config
	cfg.SideChannelPort = 17501
	cfg.TempfileMaxAge = conf.Duration(90e9)
	cfg.NodeTimeout = conf.Duration(7e9)
	cfg.MinFreeSpace = 5 * conf.MiB
	cfg.DefaultMinDevCount = 3
	wc := workerConfig(cfg)
	if wc.SideChannelPort != 17501 || wc.TempfileMaxAge != cfg.TempfileMaxAge || wc.NodeTimeout != cfg.NodeTimeout || wc.MinFreeSpace != cfg.MinFreeSpace ||
		wc.DefaultMinDevCount != 3 {
		t.Errorf("workerConfig = %+v, want the tracker's shared keys", wc)
	}
	cfg.Workers.SideChannelPort = 7600
	if got := workerConfig(cfg).SideChannelPort; got != 7600 {
		t.Errorf("workerConfig with workers.side_channel_port 7600 = %d, want 7600", got)
	}
}

// get_devices shows what the monitor learnt from its bad Content-MD5 probe (docs/workers.md,
// monitor): reject_bad_md5=1 for a node that refuses the PUT (a mogway storage node answers 400),
// 0 for one that stores it (here a node behind a proxy that drops Content-MD5), and 0 for one
// that answers the probe with a 507, which is no refusal.
func TestGetDevicesRejectBadMD5(t *testing.T) {
	n1 := startNode(t, "127.0.0.2", "-", 1)
	n2 := startNode(t, "127.0.0.3", "-", 2)
	n3 := startNode(t, "127.0.0.4", "-", 3)
	accepts := proxyNode(t, n2, func(rw http.ResponseWriter, r *http.Request) bool {
		r.Header.Del("Content-MD5")
		return false
	})
	full := proxyNode(t, n3, func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.URL.Path != "/dev3/test-write/test-md5" {
			return false
		}
		http.Error(rw, "disk full", http.StatusInsufficientStorage)
		return true
	})
	ms := func(n int) conf.Duration { return conf.Duration(time.Duration(n) * time.Millisecond) }
	cfg := Config{Workers: worker.Config{MonitorInterval: ms(50), WriteProbeInterval: ms(100), UsageUpdateInterval: ms(100), SideChannelPort: -1}}
	tt := startTrackerWith(t, cfg, func(*Server) {})
	lc := tt.dial(t)
	for _, req := range []string{
		"create_host host=h1&ip=127.0.0.2&port=" + n1.httpPort + "&status=alive",
		"create_host host=h2&ip=127.0.0.3&port=" + accepts + "&status=alive",
		"create_host host=h3&ip=127.0.0.4&port=" + full + "&status=alive",
		"create_device hostname=h1&devid=1",
		"create_device hostname=h2&devid=2",
		"create_device hostname=h3&devid=3",
	} {
		lc.ok(req)
	}
	want := map[string]string{"1": "1", "2": "0", "3": "0"}
	for devid, rb := range want {
		waitFor(t, "dev"+devid+" writeable", func() bool {
			return lc.ok("get_devices devid="+devid).Get("dev1_observed_state") == "writeable"
		})
		if got := lc.ok("get_devices devid=" + devid).Get("dev1_reject_bad_md5"); got != rb {
			t.Errorf("get_devices devid=%s: reject_bad_md5=%q, want %q", devid, got, rb)
		}
	}
}

// proxyNode puts a proxy in front of storage node n, on n's address, and returns its port. Each
// request goes to answer first, which may change it or answer it itself (returning true).
func proxyNode(t *testing.T, n *testNode, answer func(rw http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, err := url.Parse("http://" + net.JoinHostPort(n.ip, n.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !answer(rw, r) {
			proxy.ServeHTTP(rw, r)
		}
	}))
	srv.Listener = testutil.Listen(t, n.ip+":0")
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}
