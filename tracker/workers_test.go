package tracker

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/worker"
)

// TestWithWorkers runs the tracker with its real background workers against two storage nodes:
// the monitor makes devices writeable, a c2 upload is replicated to the other host (spec 8.2 #22),
// and a delete removes the copies from disk.
func TestWithWorkers(t *testing.T) {
	n1 := startNode(t, "127.0.0.2", "-", 1, 2)
	n2 := startNode(t, "127.0.0.3", "-", 3)
	tt := startTrackerWith(t, Config{
		RefreshInterval: conf.Duration(50 * time.Millisecond),
		MinFreeSpace:    1,
		Workers: worker.Config{
			MonitorInterval:     conf.Duration(50 * time.Millisecond),
			WriteProbeInterval:  conf.Duration(50 * time.Millisecond),
			UsageUpdateInterval: conf.Duration(50 * time.Millisecond),
			PollInterval:        conf.Duration(20 * time.Millisecond),
			ReaperInterval:      conf.Duration(50 * time.Millisecond),
		},
	}, func(*Server) {})
	lc := tt.dial(t)
	fixture(t, lc, n1.ip, n1.httpPort, n2.ip, n2.httpPort)
	c := &cluster{tt: tt, lc: lc, n1: n1, n2: n2}

	waitFor(t, "every device to be observed writeable", func() bool {
		a := lc.ok("get_devices")
		for i := 1; i <= 3; i++ {
			if v, _ := a.Indexed("dev", i, "_observed_state"); v != "writeable" {
				return false
			}
			if v, _ := a.Indexed("dev", i, "_mb_total"); v == "" {
				return false
			}
		}
		return true
	})
	if got := lc.do("clear_cache"); got != "OK " {
		t.Fatalf("clear_cache = %q", got)
	}
	fidS, _ := c.upload(t, "rep", "c2", []byte("replicate me"))
	waitFor(t, "the second copy", func() bool {
		return lc.ok("file_info domain=d&key=rep").Get("devcount") == "2"
	})
	gp := lc.ok("get_paths domain=d&key=rep&noverify=1")
	if gp.Get("paths") != "2" {
		t.Fatalf("get_paths = %v, want 2 paths", gp)
	}
	if strings.Contains(gp.Get("path1"), "127.0.0.2") == strings.Contains(gp.Get("path2"), "127.0.0.2") {
		t.Errorf("copies on one host: %q, %q", gp.Get("path1"), gp.Get("path2"))
	}
	for _, p := range []string{gp.Get("path1"), gp.Get("path2")} {
		if code, body := httpDo(t, http.MethodGet, p, nil); code != 200 || string(body) != "replicate me" {
			t.Errorf("GET %s = %d %q", p, code, body)
		}
	}
	// Delete: the key goes at once, the copies soon after.
	lc.ok("delete domain=d&key=rep")
	fid := mustInt(t, fidS)
	waitFor(t, "the copies to be deleted", func() bool {
		for _, n := range []*testNode{n1, n2} {
			for _, d := range []int{1, 2, 3} {
				if _, err := os.Stat(filepath.Join(n.docroot, filepath.FromSlash(fidPath(d, fid)))); err == nil {
					return false
				}
			}
		}
		return true
	})
	waitFor(t, "the file_on rows to go", func() bool {
		on, err := tt.st.FileOn(context.Background(), fid)
		return err == nil && len(on) == 0
	})
	if jobs := strings.Join(lc.admin("!jobs"), "\n"); !strings.Contains(jobs, "replicate count") {
		t.Errorf("!jobs lacks the replicate worker:\n%s", jobs)
	}
}
