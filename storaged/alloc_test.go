package storaged

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"
)

// A GET of a small file kept open allocates nothing: no path string, no header value, no body
// buffer. (A HEAD also stats the path; see serveGet.)
func TestGetCachedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled buffers")
	}
	n := startNode(t, nil)
	if n.srv.root.files == nil {
		t.Skip("no openat2 here: reads go through os.Root and keep nothing open")
	}
	body := bytes.Repeat([]byte{'a'}, 4<<10)
	const uri = "/dev1/0/000/000/0000000001.fid"
	must(t, os.MkdirAll(filepath.Join(n.docroot, "dev1/0/000/000"), 0o755))
	must(t, os.WriteFile(filepath.Join(n.docroot, uri), body, 0o644))
	for _, method := range []string{"GET"} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		serve := func() {
			ctx.Response.Reset()
			n.srv.serveHTTP(&ctx)
		}
		serve() // opens the file and keeps it
		serve()
		if code := ctx.Response.StatusCode(); code != 200 || (method == "GET" && !bytes.Equal(ctx.Response.Body(), body)) {
			t.Fatalf("%s %s = %d, %d bytes", method, uri, code, len(ctx.Response.Body()))
		}
		if allocs := testing.AllocsPerRun(100, serve); allocs != 0 {
			t.Errorf("%s of a cached file: %.1f allocations, want 0", method, allocs)
		}
	}
}
