package clustertest

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/worker"
)

func put(t *testing.T, url string, data []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s = %d, want 2xx", url, resp.StatusCode)
	}
}

// openAndPut opens an upload of d/k in class and writes data to its first destination, leaving the
// upload open.
func openAndPut(t *testing.T, c *Cluster, class string, data []byte) (*client.Open, client.Dest) {
	t.Helper()
	open, err := c.Client().CreateOpen(context.Background(), "d", "k", class)
	if err != nil {
		t.Fatalf("CreateOpen: %v", err)
	}
	dst := open.Dests[0]
	put(t, dst.Path, data)
	return open, dst
}

// Spec 8.2 #26: a create_close with the wrong size fails, and the stored copy is deleted later.
func TestSizeMismatchCopyDeleted(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Domains: map[string]map[string]int{"d": {"c1": 1}}})
	ctx := context.Background()
	p := c.Client()
	open, dst := openAndPut(t, c, "c1", []byte("abc"))
	err := p.CreateClose(ctx, client.CloseRequest{Domain: "d", Key: "k", Class: "c1", Fid: open.Fid, DevID: dst.DevID, Path: dst.Path, Size: 5})
	if !mogproto.IsCode(err, "size_mismatch") {
		t.Fatalf("CreateClose(size=5 after 3 bytes) = %v, want ERR size_mismatch", err)
	}
	Eventually(t, "mismatched copy deleted", func() bool { return c.ReadCopy(int(dst.DevID), open.Fid) == nil })
}

// Spec 8.2 #29: create_close with an empty key aborts the upload; the delete worker removes the copy.
func TestAbortedUploadDeleted(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Domains: map[string]map[string]int{"d": {"c1": 1}}})
	ctx := context.Background()
	p := c.Client()
	open, dst := openAndPut(t, c, "c1", []byte("abort"))
	if err := p.CreateClose(ctx, client.CloseRequest{Domain: "d", Key: "", Fid: open.Fid, DevID: dst.DevID, Path: dst.Path, Size: 5}); err != nil {
		t.Fatalf("CreateClose(key=) = %v, want OK", err)
	}
	Eventually(t, "aborted copy deleted", func() bool { return c.ReadCopy(int(dst.DevID), open.Fid) == nil })
}

// Spec 8.2 #31: overwriting a key serves the new content and deletes every copy of the old fid.
func TestOverwriteDeletesOldCopies(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Domains: map[string]map[string]int{"d": {"c2": 2}}})
	old := c.Upload(t, "d", "k", "c2", []byte("first version"))
	Eventually(t, "old version on two devices", func() bool {
		return c.ReadCopy(1, old) != nil && c.ReadCopy(2, old) != nil
	})
	fresh := c.Upload(t, "d", "k", "c2", []byte("second version"))
	if fresh <= old {
		t.Fatalf("second upload fid = %d, want > %d", fresh, old)
	}
	Eventually(t, "old copies deleted", func() bool { return c.ReadCopy(1, old) == nil && c.ReadCopy(2, old) == nil })
	if got := c.Fetch(t, "d", "k"); string(got) != "second version" {
		t.Fatalf("Fetch(k) = %q, want %q", got, "second version")
	}
	Eventually(t, "new version on two devices", func() bool { return len(c.GetPaths(t, "d", "k")) == 2 })
}

// Spec 8.2 #33 and the delete worker: a deleted key's bytes leave every node.
func TestDeleteRemovesBytesEverywhere(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Nodes: 3, Domains: map[string]map[string]int{"d": {"c3": 3}}})
	fid := c.Upload(t, "d", "k", "c3", []byte("three copies"))
	Eventually(t, "three copies", func() bool {
		on, err := c.Store().FileOn(context.Background(), fid)
		return err == nil && len(on) == 3
	})
	if err := c.Client().Delete(context.Background(), "d", "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	Eventually(t, "every copy deleted", func() bool {
		for _, dev := range c.AllDevIDs() {
			if c.ReadCopy(dev, fid) != nil {
				return false
			}
		}
		return true
	})
}

// Spec 8.2 #32: an upload that is never closed is reaped after tempfile_max_age, and its copy deleted.
func TestAbandonedUploadReaped(t *testing.T) {
	t.Parallel()
	c := New(t, Options{
		Domains: map[string]map[string]int{"d": {"c1": 1}},
		Workers: worker.Config{TempfileMaxAge: conf.Duration(time.Second)},
	})
	ctx := context.Background()
	open, dst := openAndPut(t, c, "c1", []byte("never closed"))
	Eventually(t, "abandoned copy deleted", func() bool { return c.ReadCopy(int(dst.DevID), open.Fid) == nil })
	if _, err := c.Store().Tempfile(ctx, open.Fid); err == nil {
		t.Fatalf("Tempfile(%d) still exists after reaping", open.Fid)
	}
}
