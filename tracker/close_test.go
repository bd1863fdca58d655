package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/store"
)

// try sends one request line and returns the reply line; unlike do it may run on any goroutine.
func (lc *lineConn) try(req string) (string, error) {
	lc.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(lc.c, req+"\r\n"); err != nil {
		return "", err
	}
	l, err := lc.br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read reply: %w (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

const noTempFile = "ERR no_temp_file No+tempfile+or+file+already+closed"

// TestCloseRaceAcrossTrackers sends the same create_close to two trackers at once, each with its own
// Store on one SQLite file, from several clients (a client that retried on another tracker, or
// closed twice). Exactly one close ends the upload; every other one answers no_temp_file and
// changes nothing. Where some of the racing closes carry a wrong size, the one that ends the upload
// may be a failing one: then the upload is discarded and no commit follows it.
func TestCloseRaceAcrossTrackers(t *testing.T) {
	c := startCluster(t)
	_, side, _ := net.SplitHostPort(c.n1.mgmtAddr)
	sidePort, _ := strconv.Atoi(side)
	b := startTrackerOn(t, c.tt.db, Config{SideChannelPort: sidePort, Hostname: "tracker-b"}, func(s *Server) { s.noWorkers = true })
	b.observeAll(1, 2, 3)
	trackers := []*testTracker{c.tt, b}
	ctx := context.Background()

	const closers = 8
	for round := 0; round < 4; round++ {
		key := fmt.Sprint("race-", round)
		fid, devid, path := c.open(t, "domain=d&class=c1&key="+key)
		body := []byte("hello")
		if code, _ := testutil.Fetch(t, http.MethodPut, path, body, nil); code/100 != 2 {
			t.Fatalf("PUT %s = %d", path, code)
		}
		conns := make([]*lineConn, closers)
		for i := range conns {
			conns[i] = trackers[i%2].dial(t)
		}
		// Round 0 races identical closes; later rounds make two of the eight claim a wrong size.
		size := func(i int) int {
			if round > 0 && (i+round)%4 == 0 {
				return len(body) + 1
			}
			return len(body)
		}
		replies := make([]string, closers)
		errs := make([]error, closers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, lc := range conns {
			req := closeArgs(fid, devid, path, key, size(i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				replies[i], errs[i] = lc.try(req)
			}()
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, r := range replies {
			switch {
			case errs[i] != nil:
				t.Fatalf("round %d: closer %d: %v", round, i, errs[i])
			case r == noTempFile:
			case winner >= 0:
				t.Errorf("round %d: closers %d (%q) and %d (%q) both ended fid %s", round, winner, replies[winner], i, r, fid)
			default:
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no create_close ended fid %s: %q", round, fid, replies)
		}
		fidN := mustInt(t, fid)
		_, delErr := c.tt.st.QueueJobs(ctx, store.QueueDelete, fidN)
		on, err := c.tt.st.FileOn(ctx, fidN)
		if err != nil {
			t.Fatalf("FileOn(%s): %v", fid, err)
		}
		if want := []int{int(mustInt(t, devid))}; !reflect.DeepEqual(on, want) {
			t.Errorf("round %d: FileOn(%s) = %v, want %v", round, fid, on, want)
		}
		if size(winner) == len(body) {
			if replies[winner] != "OK " {
				t.Errorf("round %d: create_close with the right size = %q, want OK", round, replies[winner])
			}
			if delErr == nil {
				t.Errorf("round %d: committed fid %s is queued for deletion", round, fid)
			}
			for _, tt := range trackers {
				if got := tt.dial(t).ok("get_paths domain=d&key=" + key).Get("paths"); got != "1" {
					t.Errorf("round %d: get_paths %s on %s: paths=%q, want 1", round, key, tt.s.hostname, got)
				}
			}
			continue
		}
		want := fmt.Sprintf("ERR size_mismatch Expected:+%d%%3B+actual:+%d%%3B+path:+%s", size(winner), len(body), path)
		if !strings.HasPrefix(replies[winner], want) {
			t.Errorf("round %d: create_close with a wrong size = %q, want prefix %q", round, replies[winner], want)
		}
		if delErr != nil {
			t.Errorf("round %d: discarded fid %s is not queued for deletion: %v", round, fid, delErr)
		}
		if got := c.lc.do("get_paths domain=d&key=" + key); !strings.HasPrefix(got, "ERR unknown_key ") {
			t.Errorf("round %d: get_paths %s after its upload was discarded = %q, want ERR unknown_key", round, key, got)
		}
	}
}

// create_close queues replication only for a class that wants more than one copy: its
// mindevcount, or the N of MultipleHosts(N) (tracker.md, Where mogway differs). A
// MultipleDevices(N) policy found in the database (written by a Perl tracker, say) counts the same
// way, since the workers honour it (workers.md, Replication). Before, only MultipleHosts(N) was
// read, so a file of a mindevcount 1, MultipleDevices(2) class was never queued and kept one copy.
func TestCreateCloseQueuesReplicationByTarget(t *testing.T) {
	c := startCluster(t)
	c.lc.ok("create_class domain=d&class=hosts2&mindevcount=1&replpolicy=MultipleHosts%282%29")
	c.lc.ok("create_class domain=d&class=hosts1&mindevcount=2&replpolicy=MultipleHosts%281%29")
	c.lc.ok("create_class domain=d&class=default1&mindevcount=1&replpolicy=MultipleHosts%28%29")
	ctx := context.Background()
	if _, err := c.tt.st.CreateClass(ctx, store.Class{DomainID: 1, Name: "devices2", MinDevCount: 1, ReplPolicy: "MultipleDevices(2)"}); err != nil {
		t.Fatalf("CreateClass(devices2): %v", err)
	}
	c.lc.ok("clear_cache")
	for _, tc := range []struct {
		class string
		queue bool
	}{
		{"c1", false},       // mindevcount 1, no replpolicy
		{"default1", false}, // mindevcount 1, MultipleHosts()
		{"c2", true},        // mindevcount 2
		{"hosts2", true},    // mindevcount 1, MultipleHosts(2)
		{"hosts1", false},   // mindevcount 2, MultipleHosts(1): N wins
		{"devices2", true},  // mindevcount 1, MultipleDevices(2)
	} {
		fid, _ := c.upload(t, "k-"+tc.class, tc.class, []byte("one or more copies"))
		_, err := c.tt.st.QueueJobs(ctx, store.QueueReplicate, mustInt(t, fid))
		switch {
		case tc.queue && err != nil:
			t.Errorf("class %s: replication row for fid %s: %v, want one", tc.class, fid, err)
		case !tc.queue && !errors.Is(err, store.ErrNotFound):
			t.Errorf("class %s: replication row for fid %s: %v, want none (ErrNotFound)", tc.class, fid, err)
		}
	}
}
