package worker

// Tests of reject_bad_md5: what the monitor learns from a PUT whose Content-MD5 is wrong, and the
// replication read-back it lets the workers skip.

import (
	"bytes"
	"context"
	"crypto/md5"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// md5Front is what a proxy in front of a storage node (harness.front) does to it.
type md5Front struct {
	probe   atomic.Int64 // status for the bad Content-MD5 probe; 0 passes it to the node
	strip   bool         // drop Content-MD5 from every PUT: a node that does not verify it
	corrupt bool         // flip the first byte of every .fid PUT body: a bad disk or network
	probes  atomic.Int64 // bad Content-MD5 probes received
	fidGets atomic.Int64 // GETs of .fid files: replication read-backs
}

func (m *md5Front) wrap(node http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/test-write/test-md5"):
			m.probes.Add(1)
			if code := m.probe.Load(); code != 0 {
				http.Error(rw, http.StatusText(int(code)), int(code))
				return
			}
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, ".fid"):
			m.fidGets.Add(1)
		}
		if r.Method == http.MethodPut {
			if m.strip {
				r.Header.Del("Content-MD5")
			}
			if m.corrupt && strings.HasSuffix(r.URL.Path, ".fid") {
				b, err := io.ReadAll(r.Body)
				if err != nil || len(b) == 0 {
					http.Error(rw, "short body", http.StatusBadRequest)
					return
				}
				b[0] ^= 0xff
				r.Body = io.NopCloser(bytes.NewReader(b))
			}
		}
		node.ServeHTTP(rw, r)
	})
}

// The monitor learns reject_bad_md5 from a PUT of "." with the Content-MD5 of "!" (spec 4.5;
// docs/workers.md): a node that refuses it with 400 (a mogway storage node) rejects bad MD5s, one
// that stores it does not. Any other answer (a full disk's 507, a 500) says nothing about
// verification: the device counts as not rejecting, and the probe is repeated at the next test
// write until the node gives a 2xx or a 400. Before, any non-2xx counted as rejecting, for as long
// as the tracker ran, so one failed probe turned off the read-back of every replica on that device.
func TestMonitorLearnsRejectBadMD5(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		probe int64 // first answer to the probe; 0 = the node's
		strip bool
		want  bool
	}{
		{"node verifies", 0, false, true},
		{"node does not verify", 0, true, false},
		{"probe answered 507", http.StatusInsufficientStorage, false, false},
		{"probe answered 500", http.StatusInternalServerError, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, 1, 1)
			m := &md5Front{strip: tc.strip}
			m.probe.Store(tc.probe)
			h.front(0, m.wrap)
			w := h.run(testConfig(), nil)
			if o, ok := w.Observed(1); !ok || !o.Writable || o.RejectBadMD5 != tc.want {
				t.Fatalf("Observed(1) = %+v, %v; want writable with RejectBadMD5 %v", o, ok, tc.want)
			}
			if tc.probe == 0 {
				return
			}
			// The inconclusive probe is asked again; once the node answers it, it is learnt.
			waitFor(t, "the probe repeated", func() bool { return m.probes.Load() >= 2 })
			m.probe.Store(0)
			waitFor(t, "reject_bad_md5 learnt", func() bool {
				o, _ := w.Observed(1)
				return o.RejectBadMD5
			})
		})
	}
}

// storedMD5 uploads data as key in c2md5 through dev1, as h.upload does, with its MD5 stored in the
// same commit (so that replication, queued by it, finds it and sends Content-MD5).
func (h *harness) storedMD5(key string, data []byte) store.File {
	h.t.Helper()
	ctx := context.Background()
	cid := h.classID("c2md5")
	fid, err := h.st.CreateTempfile(ctx, store.Tempfile{DomainID: h.dmid, ClassID: cid, Key: key, DevIDs: []int{1}})
	if err != nil {
		h.t.Fatalf("CreateTempfile: %v", err)
	}
	h.put(h.devURL(1, fid), data)
	sum := md5.Sum(data)
	f := store.File{Fid: fid, DomainID: h.dmid, ClassID: cid, Key: key, Length: int64(len(data))}
	c := store.Commit{File: f, DevIDs: []int{1}, Checksum: &store.Checksum{Fid: fid, Type: store.HashMD5, Sum: sum[:]}, Replicate: true}
	if _, err := h.st.CommitFile(ctx, c); err != nil {
		h.t.Fatalf("CommitFile: %v", err)
	}
	return f
}

// A replica sent with Content-MD5 is read back and digested unless its device rejects bad MD5s
// (docs/workers.md, Replication): none on a mogway node, which verified it; one on a node that
// does not verify.
func TestReplicateReadBackUnlessNodeVerifiesMD5(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		strip     bool
		readBacks int64
	}{
		{"node verifies", false, 0},
		{"node does not verify", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, 2, 1)
			m := &md5Front{strip: tc.strip}
			h.front(1, m.wrap)
			w := h.run(testConfig(), nil)
			if o, _ := w.Observed(2); o.RejectBadMD5 == tc.strip {
				t.Fatalf("Observed(2) = %+v, want RejectBadMD5 %v", o, !tc.strip)
			}
			data := []byte("copied with its Content-MD5")
			f := h.storedMD5("k", data)
			w.Kick(JobReplicate)
			waitFor(t, "two copies", func() bool { return len(h.fileOn(f.Fid)) == 2 })
			if n := m.fidGets.Load(); n != tc.readBacks {
				t.Errorf("dev2's node got %d GETs of the replica, want %d", n, tc.readBacks)
			}
			if got := h.readFile(2, f.Fid); !bytes.Equal(got, data) {
				t.Errorf("replica on dev2 = %q, want %q", got, data)
			}
		})
	}
}

// A node that does not verify Content-MD5 and corrupts what it stores, whose answer to the bad
// Content-MD5 probe was a 507, gets no recorded replica: the read-back catches the bad bytes.
// Before, the 507 counted as rejecting bad MD5s, the read-back was skipped and the corrupt copy
// recorded.
func TestReplicateReadsBackAfterFailedProbe(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2, 1)
	m := &md5Front{strip: true, corrupt: true}
	m.probe.Store(http.StatusInsufficientStorage)
	h.front(1, m.wrap)
	w := h.run(testConfig(), nil)
	f := h.storedMD5("k", []byte("replicated to a node that garbles it"))
	w.Kick(JobReplicate)
	waitFor(t, "replication row settled", func() bool { return h.rowSettled(store.QueueReplicate, f.Fid) })
	if on := h.fileOn(f.Fid); !reflect.DeepEqual(on, []int{1}) {
		t.Fatalf("FileOn(%d) = %v, want [1]: the garbled replica on dev2 must not be recorded", f.Fid, on)
	}
	if m.fidGets.Load() == 0 {
		t.Errorf("the replica on dev2 was never read back")
	}
	if o, _ := w.Observed(2); o.RejectBadMD5 {
		t.Errorf("Observed(2) = %+v, want RejectBadMD5 false: a 507 is no refusal", o)
	}
}
