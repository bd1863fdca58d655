package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/storaged"
)

// restartable is a storaged that can be stopped and started again on the same address and docroot.
type restartable struct {
	addr, docroot string
	cancel        context.CancelFunc
	done          chan error
}

func startRestartable(t *testing.T, ip string) *restartable {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &restartable{addr: ip + ":0", docroot: root}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	srv, err := storaged.New(storaged.Config{Docroot: r.docroot, Listen: r.addr, MgmtListen: "off",
		UsageInterval: conf.Duration(time.Hour)}, nil)
	if err != nil {
		t.Fatalf("storaged.New: %v", err)
	}
	var ln net.Listener
	waitFor(t, "the node's port to be free", func() bool {
		ln, err = net.Listen("tcp", r.addr)
		return err == nil
	})
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- srv.Serve(ctx, ln, nil) }()
}

func (r *restartable) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// A PUT right after the storage node restarted must not be sent on a keep-alive connection the old
// process closed: the body is a stream that cannot be sent again once read.
func TestUploadAfterStorageRestart(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1000, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			node := startRestartable(t, "127.0.0.4")
			ft := newFakeTracker()
			ft.opens = []Dest{{DevID: 1, Path: "http://" + node.addr + fidPath(int64(size))}}
			g := startGateway(t, trackerConfig(writeRoute()), Deps{Tracker: ft})
			data := pattern(size)
			if code, body := put(t, g.base+"/u/a", bytes.NewReader(data), int64(len(data))); code != 201 {
				t.Fatalf("first PUT = %d %q, want 201", code, body)
			}
			n := g.srv.nodes.get(node.addr)
			if c := n.hc.ConnsCount(); c != 1 {
				t.Fatalf("pooled connections after the first PUT = %d, want 1", c)
			}
			node.stop()
			node.start(t)
			data[0]++
			if code, body := put(t, g.base+"/u/a", bytes.NewReader(data), int64(len(data))); code != 201 {
				t.Fatalf("PUT after the node restarted = %d %q, want 201", code, body)
			}
			got, err := os.ReadFile(filepath.Join(node.docroot, filepath.FromSlash(fidPath(int64(size)))))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored copy = %d bytes, %v; want the %d bytes of the second PUT", len(got), err, len(data))
			}
			if d := n.dials.Load(); d != 2 {
				t.Errorf("dials = %d, want 2 (one before the restart, one after)", d)
			}
		})
	}
}
