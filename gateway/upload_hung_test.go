package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
)

// Issue 11, item 4: a PUT whose destination hangs (it accepts the connection and then reads and
// answers nothing, as a stopped process or a stuck disk) waits at most timeouts.storage_stall for
// it, then goes to the next destination while the body can be sent again, or answers 503; nothing
// is committed for the hung destination. storage_idle and storage_first_byte are set far longer so
// that a test waiting for them runs into its own deadline instead of passing.

// hungUploadGateway runs a gateway whose create_open offers a hung storage node first, then a real
// one, with storage_stall 300ms; mutate adjusts the configuration further.
func hungUploadGateway(t *testing.T, fid int64, mutate func(*Config)) (g *gw, ft *fakeTracker, hung, good *storageNode) {
	t.Helper()
	var f clustertest.Freezer
	hung = startFrozenStorage(t, "127.0.0.3", &f)
	good = startStorage(t, "127.0.0.4")
	f.Freeze()
	t.Cleanup(f.Thaw)
	ft = newFakeTracker()
	ft.opens = []Dest{{DevID: 3, Path: "http://" + hung.addr + fidPath(fid)}, {DevID: 4, Path: "http://" + good.addr + fidPath(fid)}}
	cfg := trackerConfig(writeRoute())
	cfg.Timeouts.StorageStall = conf.Duration(300 * time.Millisecond)
	cfg.Timeouts.StorageFirstByte = conf.Duration(time.Minute)
	cfg.Timeouts.StorageIdle = conf.Duration(time.Minute)
	if mutate != nil {
		mutate(&cfg)
	}
	return startGateway(t, cfg, Deps{Tracker: ft}), ft, hung, good
}

// wantNoClose fails the test if create_close was sent: a failed upload commits nothing.
func wantNoClose(t *testing.T, ft *fakeTracker) {
	t.Helper()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.closes) != 0 {
		t.Errorf("create_close after the failed upload: %+v", ft.closes)
	}
}

// timedPut is put that also returns how long the answer took.
func timedPut(t *testing.T, url string, data []byte) (int, []byte, time.Duration) {
	t.Helper()
	start := time.Now()
	code, body := put(t, url, bytes.NewReader(data), int64(len(data)))
	return code, body, time.Since(start)
}

func TestUploadHungDestinationFailsOver(t *testing.T) {
	t.Parallel()
	g, ft, _, good := hungUploadGateway(t, 41, nil)
	data := pattern(200 << 10) // within the replay buffer (1 MiB)
	code, body, took := timedPut(t, g.base+"/u/hung/small", data)
	if code != 201 || took > hedgeBound {
		t.Fatalf("PUT with the first destination hung = %d %q after %v, want 201 within %v", code, body, took, hedgeBound)
	}
	onDisk, err := os.ReadFile(filepath.Join(good.docroot, filepath.FromSlash(fidPath(41))))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Errorf("copy on the second destination = %d bytes, %v; want the %d bytes sent", len(onDisk), err, len(data))
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.closes) != 1 || ft.closes[0].DevID != 4 {
		t.Errorf("create_close = %+v, want one, for devid 4 (the destination that answered)", ft.closes)
	}
}

func TestUploadHungDestinationPastReplay(t *testing.T) {
	t.Parallel()
	// 64 KiB kept, 32 MiB sent: more than the replay buffer and than the loopback socket buffers
	// hold, so the gateway waits for the hung node to read while the kept bytes are gone.
	g, ft, _, good := hungUploadGateway(t, 42, func(cfg *Config) { cfg.Limits.UploadReplayBuffer = 64 * conf.KiB })
	data := pattern(32 << 20)
	code, body, took := timedPut(t, g.base+"/u/hung/big", data)
	if code != 503 || !strings.Contains(string(body), "not responding") || took > hedgeBound {
		t.Errorf("PUT past the replay buffer with its destination hung = %d %q after %v, want 503 saying the node is not responding, within %v",
			code, body, took, hedgeBound)
	}
	wantNoClose(t, ft)
	if _, err := os.Stat(filepath.Join(good.docroot, filepath.FromSlash(fidPath(42)))); !os.IsNotExist(err) {
		t.Errorf("the second destination holds a copy of the failed upload (stat: %v)", err)
	}
}

// TestUploadHungAfterBody: a body within the socket buffers but past the replay buffer is written
// whole, then the hung node never answers: the wait for its answer is bounded by
// storage_first_byte, not storage_idle, and answered with 503.
func TestUploadHungAfterBody(t *testing.T) {
	t.Parallel()
	g, ft, _, _ := hungUploadGateway(t, 43, func(cfg *Config) {
		cfg.Limits.UploadReplayBuffer = 4 * conf.KiB
		cfg.Timeouts.StorageFirstByte = conf.Duration(500 * time.Millisecond)
	})
	data := pattern(64 << 10)
	code, body, took := timedPut(t, g.base+"/u/hung/answer", data)
	if code != 503 || took > hedgeBound {
		t.Errorf("PUT whose hung destination took the body = %d %q after %v, want 503 within %v", code, body, took, hedgeBound)
	}
	wantNoClose(t, ft)
}
