package tracker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// TestGetPathsShareVerification: a get_paths that checks a path while another query's HEAD of the
// same path is in flight waits for that HEAD instead of sending its own, and both answer with the
// verified path.
func TestGetPathsShareVerification(t *testing.T) {
	var heads atomic.Int64
	release := make(chan struct{})
	node := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
			<-release
		}
		w.Header().Set("Content-Length", "5")
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	node.Listener = ln
	node.Start()
	t.Cleanup(node.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release) // a failed test must not leave the handler blocked
		}
	})
	joined := make(chan string, 4)
	tt := startTrackerWith(t, Config{}, func(s *Server) {
		s.noWorkers = true
		s.verify.joined = func(url string) { joined <- url }
	})
	lc := tt.dial(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	fixture(t, lc, "127.0.0.2", port, "127.0.0.3", "1")
	tt.observeAll(1)
	ctx := context.Background()
	fid, err := tt.st.CreateTempfile(ctx, store.Tempfile{DomainID: 1, Key: "hot", DevIDs: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.st.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: 1, Key: "hot", Length: 5}, DevIDs: []int{1}}); err != nil {
		t.Fatal(err)
	}

	first, second := tt.dial(t), tt.dial(t)
	first.write("get_paths domain=d&key=hot\r\n")
	waitFor(t, "the first HEAD", func() bool { return heads.Load() == 1 })
	second.write("get_paths domain=d&key=hot\r\n")
	var url string
	select {
	case url = <-joined: // the second query waits for the first one's HEAD
	case <-time.After(15 * time.Second):
		t.Fatalf("the second get_paths did not wait for the first one's HEAD (the node saw %d HEADs)", heads.Load())
	}
	close(release)
	want := "OK paths=1&path1=" + escape(url)
	for i, lc := range []*lineConn{first, second} {
		if got := lc.readLine(); got != want {
			t.Errorf("get_paths #%d = %q, want %q", i+1, got, want)
		}
	}
	if n := heads.Load(); n != 1 {
		t.Errorf("the node saw %d HEADs, want 1", n)
	}
	// Once answered, the HEAD is no longer shared: the next query sends its own.
	if got := lc.do("get_paths domain=d&key=hot"); got != want {
		t.Errorf("get_paths = %q, want %q", got, want)
	}
	if n := heads.Load(); n != 2 {
		t.Errorf("the node saw %d HEADs after a later get_paths, want 2", n)
	}
}
