package storaged

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/fsutil"
	"github.com/mogway/mogway/internal/httpsem"
)

// HealthPath answers 200 when every device is writable and 503 otherwise, one line per device.
const HealthPath = "/healthz"

// handle routes one request. Methods other than GET, HEAD, PUT and DELETE (MKCOL included) get
// 400, as from Perlbal: the tracker reads that as "this node creates directories on PUT".
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	if !s.enter() {
		s.reply(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		ctx.SetConnectionClose()
		return
	}
	defer s.requests.Done()
	if s.serveMetrics(ctx) {
		return
	}
	m := method(ctx)
	s.stats.open.Add(1)
	defer s.observe(m, time.Now())
	switch m {
	case mGet:
		s.stats.gets.Add(1)
		s.serveGet(ctx)
	case mHead:
		s.stats.heads.Add(1)
		s.serveGet(ctx)
	case mPut:
		s.stats.puts.Add(1)
		s.servePut(ctx)
	case mDelete:
		s.stats.deletes.Add(1)
		s.serveDelete(ctx)
	default:
		s.reply(ctx, fasthttp.StatusBadRequest, "")
	}
	// fasthttp does not drain an unread streamed body; the connection cannot carry another request.
	// (PUT handles its own body. HTTP/1.0 keep-alive is fasthttp's business.)
	if cl := ctx.Request.Header.ContentLength(); (cl > 0 || cl == -1) && m != mPut {
		ctx.SetConnectionClose()
	}
}

// reply sends a short HTML reply like Perlbal's: "<h1>CODE - Reason</h1>" and an optional message.
func (s *Server) reply(ctx *fasthttp.RequestCtx, code int, msg string) {
	switch {
	case code == fasthttp.StatusNotFound:
		s.stats.notFound.Add(1)
	case code >= 500:
		s.stats.srvErrs.Add(1)
	case code >= 400:
		s.stats.badRequests.Add(1)
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/html")
	body := fmt.Sprintf("<h1>%d - %s</h1>\n", code, fasthttp.StatusMessage(code))
	if msg != "" {
		body += msg + "\n"
	}
	ctx.SetBodyString(body)
}

// pathStatus maps a path error to its status.
func pathStatus(err error) int {
	switch {
	case errors.Is(err, errForbidden):
		return fasthttp.StatusForbidden
	case errors.Is(err, errNoDevice):
		return fasthttp.StatusNotFound
	}
	return fasthttp.StatusBadRequest
}

// fileStatus maps an error from the docroot to a status: missing → 404, a path escaping the docroot
// through a symlink (os.Root refuses it; openat2 answers EXDEV) or a permission problem → 403,
// anything else → 500.
func fileStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fasthttp.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return fasthttp.StatusForbidden
	case errors.Is(err, syscall.EXDEV), strings.Contains(err.Error(), "escapes from parent"):
		return fasthttp.StatusForbidden
	case errors.Is(err, fs.ErrClosed), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ESTALE):
		// The device directory was being replaced under the request: worth another try.
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusInternalServerError
}

// serveGet answers GET and HEAD.
func (s *Server) serveGet(ctx *fasthttp.RequestCtx) {
	// rel is read in place from the request head, which stays put until the handler returns:
	// whatever keeps it longer (the open-file and device caches' keys, a log record) copies it.
	uri := ctx.Request.Header.RequestURI()
	rel, err := readPath(unsafe.String(unsafe.SliceData(uri), len(uri)))
	if err != nil {
		s.reply(ctx, pathStatus(err), "")
		return
	}
	if rel == HealthPath[1:] { // without building "/"+rel on every GET
		body, ok := s.health()
		code := fasthttp.StatusOK
		if !ok {
			code = fasthttp.StatusServiceUnavailable
			s.stats.srvErrs.Add(1)
		}
		ctx.SetStatusCode(code)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(body)
		return
	}
	if rel == "" {
		s.reply(ctx, fasthttp.StatusOK, "Directory listing disabled")
		return
	}
	if dev, _, _ := strings.Cut(rel, "/"); !isDevName(dev) {
		s.reply(ctx, fasthttp.StatusNotFound, "")
		return
	}
	// A HEAD always checks the path of a kept-open file: the tracker's size checks (fsck, and
	// get_paths verifying a copy) are HEADs and must see a file changed behind the node's back.
	g, err := s.root.openGet(rel, ctx.IsHead())
	if err != nil {
		s.reply(ctx, fileStatus(err), "")
		return
	}
	fm, err := g.stat()
	if err != nil {
		g.close()
		s.reply(ctx, fasthttp.StatusInternalServerError, "")
		return
	}
	if fm.mode.IsDir() {
		g.close()
		s.reply(ctx, fasthttp.StatusOK, "Directory listing disabled")
		return
	}
	if !fm.mode.IsRegular() {
		g.close()
		s.reply(ctx, fasthttp.StatusForbidden, "")
		return
	}
	size := fm.size
	hd := g.head()
	val := httpsem.Validators{ETag: hd.etag, LastModified: fm.mtime.Unix(), HasLastModified: true}
	h := &ctx.Response.Header
	var buf [64]byte
	h.SetBytesV("Last-Modified", hd.lastModified)
	h.Set("ETag", val.ETag)
	h.Set("Accept-Ranges", "bytes")
	h.SetContentType(contentType(rel))

	cond := httpsem.ConditionsOf(&ctx.Request.Header)
	switch cond.Evaluate(true, val) {
	case httpsem.NotModified:
		g.close()
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		h.Del("Content-Type")
		return
	case httpsem.PreconditionFailed:
		g.close()
		s.reply(ctx, fasthttp.StatusPreconditionFailed, "")
		return
	}
	st := httpsem.RangeIgnore
	var first, n int64
	if rh := ctx.Request.Header.Peek("Range"); len(rh) > 0 && cond.RangeApplies(val) {
		if r, ok := httpsem.ParseRange(rh); ok {
			first, n, st = r.Resolve(size)
		}
	}
	switch st {
	case httpsem.RangeUnsatisfiable:
		g.close()
		ctx.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
		h.SetBytesV("Content-Range", httpsem.AppendUnsatisfiedRange(buf[:0], size))
		h.SetContentLength(0)
		s.stats.badRequests.Add(1)
		return
	case httpsem.RangeOK:
		ctx.SetStatusCode(fasthttp.StatusPartialContent)
		h.SetBytesV("Content-Range", httpsem.AppendContentRange(buf[:0], first, n, size))
	default:
		ctx.SetStatusCode(fasthttp.StatusOK)
		first, n = 0, size
	}
	if ctx.IsHead() {
		// fasthttp keeps a Content-Length set on a HEAD reply with no body.
		g.close()
		h.SetContentLength(int(n))
		return
	}
	if size <= smallFileSize {
		// A small file (or a range of one) is read with pread: a cached descriptor is never seeked.
		err := s.readSmall(ctx, &g, first, n)
		g.close()
		if err != nil {
			s.log.Warn("read failed", "path", strings.Clone(rel), "err", err)
			s.reply(ctx, fasthttp.StatusInternalServerError, "")
			return
		}
		s.stats.bytesOut.Add(n)
		return
	}
	f := g.file()
	if first > 0 {
		if _, err := f.Seek(first, io.SeekStart); err != nil {
			f.Close()
			s.reply(ctx, fasthttp.StatusInternalServerError, "")
			return
		}
	}
	s.stats.bytesOut.Add(n)
	// Sent with sendfile(2) (see sectionFile); fasthttp closes it when done. Bounded by its length,
	// the copy ends without one more sendfile to find the end of the file.
	ctx.SetBodyStream(&sectionFile{f: f, lr: io.LimitedReader{R: f, N: n}}, int(n))
}

// smallFileSize is the largest file GET reads into the response rather than streaming it with
// sendfile(2). A small body goes out in the same write(2) as the headers, where the sendfile path
// costs a write for the headers, a sendfile for the body and one more to see the end of the file.
const smallFileSize = 16 << 10

// readSmall reads n bytes of g from off into the response body. A file that turns out shorter than
// its stat size (truncated meanwhile) is an error, never a short answer.
func (s *Server) readSmall(ctx *fasthttp.RequestCtx, g *getFile, off, n int64) error {
	// The bytes are read straight into the response's own (pooled) body buffer, not copied there.
	buf := ctx.Response.SwapBody(nil)
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	err := g.readAt(buf, off)
	if err != nil {
		buf = buf[:0]
	}
	ctx.Response.SwapBody(buf)
	return err
}

// sectionFile is a byte range of an open file as a response body. WriteTo keeps the sendfile path:
// net.TCPConn.ReadFrom recognises an *io.LimitedReader over an *os.File.
type sectionFile struct {
	f  *os.File
	lr io.LimitedReader
}

func (r *sectionFile) Read(p []byte) (int, error) { return r.lr.Read(p) }
func (r *sectionFile) Close() error               { return r.f.Close() }

func (r *sectionFile) WriteTo(w io.Writer) (int64, error) {
	// bufio.Writer hands ReadFrom to the connection only when its buffer is empty.
	if fl, ok := w.(interface{ Flush() error }); ok {
		if err := fl.Flush(); err != nil {
			return 0, err
		}
	}
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(&r.lr)
	}
	return io.Copy(w, &r.lr)
}

func makeETag(size int64, mtime time.Time) string {
	return `"` + strconv.FormatInt(size, 16) + "-" + strconv.FormatInt(mtime.UnixNano(), 16) + `"`
}

// contentType is text/plain for .fid and extensionless files (usage), as mogstored answers, and the
// type httpsem.ContentType gives by extension for anything else.
func contentType(rel string) string {
	ext := path.Ext(rel)
	if ext == "" || ext == ".fid" {
		return "text/plain"
	}
	return httpsem.ContentType(rel)
}

// serveDelete answers DELETE: 204, 404 when missing, 400 for a directory or another failure.
func (s *Server) serveDelete(ctx *fasthttp.RequestCtx) {
	rel, err := writePath(string(ctx.Request.Header.RequestURI()))
	if err != nil {
		s.reply(ctx, pathStatus(err), "")
		return
	}
	fi, err := s.root.Lstat(rel)
	if err != nil {
		code := fileStatus(err)
		if code == fasthttp.StatusInternalServerError {
			code = fasthttp.StatusBadRequest
		}
		s.reply(ctx, code, "")
		return
	}
	if !fi.Mode().IsRegular() {
		// A directory, or a symlink: removing links is not the node's business.
		s.reply(ctx, fasthttp.StatusBadRequest, "not a regular file")
		return
	}
	if err := s.root.Remove(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.reply(ctx, fasthttp.StatusNotFound, "")
			return
		}
		s.log.Warn("delete failed", "path", rel, "err", err)
		s.reply(ctx, fasthttp.StatusBadRequest, "")
		return
	}
	s.syncDir(path.Dir(rel))
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// syncDir fsyncs a directory of the docroot so a rename or removal in it is durable.
func (s *Server) syncDir(dir string) error { return fsutil.SyncDirIn(s.root, dir) }
