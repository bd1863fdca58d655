package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/tracker/store/sqlite"
	"github.com/mogway/mogway/tracker/store/storetest"
)

// asMainEnv makes the test binary run as mogway itself (see TestMain), so tests can start a daemon
// as a real process and kill it with SIGKILL.
const asMainEnv = "MOGWAY_TEST_AS_MAIN"

// osProc is `mogway args...` running as a child process.
type osProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// startProcess starts `mogway args...` as a child process (the test binary in asMainEnv mode); it is
// killed at t.Cleanup if still running.
func startProcess(t *testing.T, args ...string) *osProc {
	t.Helper()
	p := &osProc{cmd: exec.Command(os.Args[0], args...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), asMainEnv+"=1")
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start mogway %s: %v", strings.Join(args, " "), err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitLog polls the process's output until re matches and returns the submatches.
func (p *osProc) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return m
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("mogway %v exited (%v) before logging %q; log:\n%s", p.cmd.Args[1:], err, re, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mogway %v did not log %q within %v; log:\n%s", p.cmd.Args[1:], re, waitTimeout, p.stderr.String())
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// upload is one `mogway upload` of the stream: its key and body, and when it was acknowledged
// (zero if it failed).
type upload struct {
	key, body string
	acked     time.Time
}

// uploadStream runs `mogway upload` of small files, one after another, from its own goroutine,
// until end or 5000 uploads, and records each.
type uploadStream struct {
	mu      sync.Mutex
	uploads []upload // guarded by mu
	stop    chan struct{}
	wg      sync.WaitGroup
}

// startUploads starts a stream of uploads through the trackers of tr ("--trackers=...") into the
// domain photos; each body names its key.
func startUploads(t *testing.T, tr string) *uploadStream {
	t.Helper()
	s := &uploadStream{stop: make(chan struct{})}
	s.wg.Go(func() {
		for i := range 5000 {
			select {
			case <-s.stop:
				return
			default:
			}
			u := upload{key: fmt.Sprintf("k%05d", i), body: fmt.Sprintf("body of k%05d %s", i, strings.Repeat("x", i%97))}
			if r := mog(t, u.body, "upload", tr, "--domain=photos", "--key="+u.key); r.code == 0 {
				u.acked = time.Now()
			} else {
				time.Sleep(pollInterval) // pacing while the tracker refuses, so the bound lasts
			}
			s.mu.Lock()
			s.uploads = append(s.uploads, u)
			s.mu.Unlock()
		}
	})
	return s
}

// checkStored fails t unless the tracker has u with copies on the storage nodes (get_paths) and
// fetching it gives its exact bytes; why says why u must be there.
func checkStored(t *testing.T, tr string, u upload, why string) {
	t.Helper()
	info := mog(t, "", "info", tr, "--domain=photos", "--key="+u.key)
	if info.code != 0 || len(copyURLs(info.stdout)) == 0 {
		t.Errorf("upload %s, %s: %v\nwant it with its copies", u.key, why, info)
		return
	}
	if f := mog(t, "", "fetch", tr, "--domain=photos", "--key="+u.key); f.code != 0 || f.stdout != u.body {
		t.Errorf("fetch %s = exit %d, %d bytes, want its %d bytes; stderr %s", u.key, f.code, len(f.stdout), len(u.body), f.stderr)
	}
}

// snapshot returns the uploads done so far.
func (s *uploadStream) snapshot() []upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]upload(nil), s.uploads...)
}

// waitFor polls until ok accepts the uploads done so far; it fails the test after waitTimeout.
func (s *uploadStream) waitFor(t *testing.T, what string, ok func([]upload) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ok(s.snapshot()) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitTimeout, what)
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// end stops the stream after the upload under way and returns every upload done.
func (s *uploadStream) end() []upload {
	close(s.stop)
	s.wg.Wait()
	return s.snapshot()
}

// TestE2EKillRestoreFromReplica is the bounded-loss drill: a tracker on SQLite replicating to a
// directory takes a stream of `mogway upload`s, is killed with SIGKILL, and its database files are
// deleted. `mogway tracker restore --from file:///...` rebuilds the database, a new tracker starts
// on it, and every upload acknowledged more than the replication interval before the kill is
// there, with its copies on the storage nodes and its exact bytes; no key shows up that was never
// uploaded, and every key that does show up has its exact bytes.
func TestE2EKillRestoreFromReplica(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	dir := t.TempDir()
	db := filepath.Join(dir, "tracker.db")
	replicaDir := filepath.Join(dir, "replica")
	nodes, mgmtPort := startE2ENodes(t, [2]string{"127.0.0.91", "127.0.0.92"})
	cfg := e2eTrackerConfig(t, mgmtPort, fmt.Sprintf("  replicate:\n    to: \"file://%s\"\n    interval: %s\n", replicaDir, interval))
	tracker := startProcess(t, "tracker", "-c", cfg, "--listen", "127.0.0.1:0", "--db", "sqlite:"+db)
	addr := tracker.waitLog(t, trackerStartingRE)[1]
	registerE2ENodes(t, addr, nodes)
	tr := "--trackers=" + addr

	// Kill once uploads have been acknowledged for three intervals.
	stream := startUploads(t, tr)
	stream.waitFor(t, "uploads acknowledged for three intervals", func(us []upload) bool {
		return len(us) > 0 && !us[0].acked.IsZero() && time.Since(us[0].acked) > 3*interval
	})
	killed := time.Now()
	if err := tracker.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-tracker.done
	tracker.done <- err
	uploads := stream.end()

	// The disk with the database died: every file of it goes, the replica stays.
	files, _ := filepath.Glob(db + "*")
	meta, _ := filepath.Glob(filepath.Join(dir, ".tracker.db*"))
	for _, f := range append(files, meta...) {
		if err := os.RemoveAll(f); err != nil {
			t.Fatal(err)
		}
	}
	r := mustMog(t, "tracker", "restore", "--from", "file://"+replicaDir, "--db", "sqlite:"+db)
	if !regexp.MustCompile(`(?m)^file +\d+$`).MatchString(r.stdout) {
		t.Errorf("%v\nwant the row count of table file", r)
	}

	// The new tracker replicates to the same replica, carrying on from the restored state.
	tracker2 := startDaemon(t, "tracker", "-c", cfg, "--listen", "127.0.0.1:0", "--db", "sqlite:"+db)
	addr2 := tracker2.waitLog(t, trackerStartingRE)[1]
	tr2 := "--trackers=" + addr2
	var must, late int
	byKey := map[string]upload{}
	for _, u := range uploads {
		byKey[u.key] = u
		if u.acked.IsZero() || killed.Sub(u.acked) <= interval {
			late++
			continue
		}
		must++
		checkStored(t, tr2, u, fmt.Sprintf("acknowledged %v before the kill", killed.Sub(u.acked)))
	}
	if must == 0 {
		t.Fatal("no upload was acknowledged more than one interval before the kill")
	}
	// Whatever else the restored namespace holds was uploaded, and is whole.
	ls := mustMog(t, "ls", tr2, "--domain=photos")
	listed := strings.Fields(ls.stdout)
	for _, k := range listed {
		u, ok := byKey[k]
		if !ok {
			t.Errorf("the restored namespace holds %q, which was never uploaded", k)
			continue
		}
		if f := mog(t, "", "fetch", tr2, "--domain=photos", "--key="+k); f.code != 0 || f.stdout != u.body {
			t.Errorf("fetch %s (restored) = exit %d, %d bytes, want its %d bytes", k, f.code, len(f.stdout), len(u.body))
		}
	}
	t.Logf("%d uploads acknowledged more than %v before the kill, all restored; %d later or unacknowledged, %d of the %d keys restored in all",
		must, interval, late, len(listed)-must, len(listed))
	// The restored tracker takes new uploads and replicates: !stats shows the replica's position.
	mog(t, "after the restore", "upload", tr2, "--domain=photos", "--key=after")
	if f := mustMog(t, "fetch", tr2, "--domain=photos", "--key=after"); f.stdout != "after the restore" {
		t.Errorf("fetch after = %q", f.stdout)
	}
	txid := regexp.MustCompile(`(?m)^replicate_local_txid (\d+)\r?\n^replicate_replica_txid (\d+)\r?$`)
	deadline := time.Now().Add(waitTimeout)
	for {
		stats := trackerAdmin(t, addr2, "!stats")
		m := txid.FindStringSubmatch(stats)
		if m != nil && m[1] == m[2] && m[1] != "0" && strings.Contains(stats, "replicate_to file://"+replicaDir+"\r\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("!stats never showed the replica caught up:\n%s", stats)
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
	// The same position through the CLI: adm stats prints the tracker and its replicate_ lines only.
	st := mustMog(t, "adm", tr2, "stats", "--match=replicate_")
	if !strings.HasPrefix(st.stdout, addr2+"\n") || !strings.Contains(st.stdout, "\n  replicate_to file://"+replicaDir+"\n") ||
		!strings.Contains(st.stdout, "\n  replicate_lag_seconds ") || strings.Contains(st.stdout, "uptime") {
		t.Errorf("%v\nwant the tracker's address, then its replicate_ lines only", st)
	}
	// A graceful stop ships the last changes: a second restore from the same replica has the old
	// namespace and the new upload.
	if code := tracker2.stop(t); code != 0 {
		t.Fatalf("the restored tracker stopped with exit %d; log:\n%s", code, tracker2.stderr.String())
	}
	again := filepath.Join(t.TempDir(), "again.db")
	mustMog(t, "tracker", "restore", "--from", "file://"+replicaDir, "--db", "sqlite:"+again)
	s, err := sqlite.Open(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := storetest.Invariants(context.Background(), s); err != nil {
		t.Errorf("the second restore breaks an invariant: %v", err)
	}
	var photos int
	domains, err := s.Domains(context.Background())
	for _, d := range domains {
		if d.Name == "photos" {
			photos = d.ID
		}
	}
	if err != nil || photos == 0 {
		t.Fatalf("the second restore has domains %v, %v; want photos", domains, err)
	}
	for _, k := range []string{"after", listed[0]} {
		if _, err := s.FileByKey(context.Background(), photos, k); err != nil {
			t.Errorf("the second restore lacks %q: %v", k, err)
		}
	}
}

// TestE2ESIGTERMShipsLastChanges: on SIGTERM the tracker ships its last changes to the replica
// before it exits (docs/tracker.md, Continuous replication). With `interval: 1m` the periodic
// shipments come every 15 s, so the change made just before the signal reaches the replica only
// through the graceful stop; a restore from the replica must hold it.
func TestE2ESIGTERMShipsLastChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "tracker.db")
	replicaDir := filepath.Join(dir, "replica")
	// No storage node is needed: the changes are domains and classes.
	cfg := e2eTrackerConfig(t, "7500", fmt.Sprintf("  replicate:\n    to: \"file://%s\"\n    interval: 1m\n", replicaDir))
	// The binary itself, whose main turns SIGTERM into a graceful stop.
	tracker := startReal(t, "tracker", "-c", cfg, "--listen", "127.0.0.1:0", "--http-listen", "off", "--db", "sqlite:"+db)
	tr := "--trackers=" + tracker.mustLog(t, trackerStartingRE)[1]
	mustMog(t, "adm", tr, "domain", "add", "photos")
	mustMog(t, "adm", tr, "class", "add", "photos", "last", "--mindevcount=3")
	stopExpectingZero(t, tracker)
	if t.Failed() {
		t.FailNow()
	}

	// The tracker's disk died after the stop: only the replica is left.
	restored := filepath.Join(t.TempDir(), "restored.db")
	mustMog(t, "tracker", "restore", "--from", "file://"+replicaDir, "--db", "sqlite:"+restored)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var photos int
	domains, err := s.Domains(ctx)
	for _, d := range domains {
		if d.Name == "photos" {
			photos = d.ID
		}
	}
	if err != nil || photos == 0 {
		t.Fatalf("the restore from the replica has domains %v, %v; want photos", domains, err)
	}
	classes, err := s.Classes(ctx)
	var last bool
	for _, c := range classes {
		last = last || (c.DomainID == photos && c.Name == "last" && c.MinDevCount == 3)
	}
	if err != nil || !last {
		t.Errorf("the restore from the replica has classes %+v, %v; want photos/last with mindevcount 3, made just before SIGTERM", classes, err)
	}
}

// trackerAdmin sends an admin command ("!stats") to the tracker at addr and returns its answer up
// to the closing "." line.
func trackerAdmin(t *testing.T, addr, line string) string {
	t.Helper()
	c, r := sendTrackerLine(t, addr, line)
	defer c.Close()
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s to %s: %v after %q", line, addr, err, b.String())
		}
		if l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}
