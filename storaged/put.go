package storaged

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/httpsem"
)

// errShortBody means the client sent fewer bytes than its Content-Length before closing.
var errShortBody = errors.New("storaged: request body shorter than Content-Length")

// errTooLarge means a chunked body grew past max_body.
var errTooLarge = errors.New("storaged: request body larger than max_body")

// servePut stores a request body at the request path. The body streams into a temp file in the
// target directory, which is fsynced, renamed into place and its directory fsynced before the
// reply: 200 OK, or 201 Created when a Content-MD5 was sent and matched. Whatever goes wrong
// (short body, disconnect, MD5 mismatch, full disk) the temp file is removed and nothing is left
// at the final path. Concurrent PUTs to one path each write their own temp file; the last rename
// wins and the file is always one complete body.
func (s *Server) servePut(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	rel, err := writePath(string(h.RequestURI()))
	if err != nil {
		s.abortPut(ctx, pathStatus(err), "Invalid filename")
		return
	}
	cl := h.ContentLength()
	if cl == -2 || (cl == 0 && !sentContentLength(h)) {
		// Perlbal stores an empty file here; a missing length is far more likely a broken client.
		s.abortPut(ctx, fasthttp.StatusLengthRequired, "Content-Length or chunked encoding required")
		return
	}
	if int64(cl) > int64(s.cfg.MaxBody) {
		s.abortPut(ctx, fasthttp.StatusRequestEntityTooLarge, "")
		return
	}
	var wantMD5 []byte
	if v := strings.TrimSpace(string(h.Peek("Content-MD5"))); v != "" {
		if wantMD5, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "=")); err != nil || len(wantMD5) != md5.Size {
			s.abortPut(ctx, fasthttp.StatusBadRequest, "Invalid Content-MD5")
			return
		}
	}
	dev, _, _ := strings.Cut(rel, "/")
	if fi, err := s.root.Stat(dev); err != nil || !fi.IsDir() {
		s.abortPut(ctx, fasthttp.StatusNotFound, "Base directory does not exist")
		return
	}
	dir := path.Dir(rel)
	if err := s.makeDirs(dir); err != nil {
		code := fileStatus(err)
		if code == fasthttp.StatusNotFound || errors.Is(err, fs.ErrExist) {
			code = fasthttp.StatusForbidden // a file where a directory should be
		}
		s.log.Warn("put: cannot create directory", "dir", dir, "err", err)
		s.abortPut(ctx, code, "")
		return
	}
	// Replace regular files only: a directory or a symlink (perhaps leading out of the docroot)
	// at the path stays as it is.
	if fi, err := s.root.Lstat(rel); err == nil && !fi.Mode().IsRegular() {
		s.abortPut(ctx, fasthttp.StatusForbidden, "not a regular file")
		return
	}

	if cr := h.Peek("Content-Range"); len(cr) > 0 {
		if wantMD5 != nil {
			s.abortPut(ctx, fasthttp.StatusBadRequest, "Content-MD5 is not supported with Content-Range")
			return
		}
		s.putRange(ctx, rel, string(cr), int64(cl))
		return
	}

	var sum hash.Hash
	if wantMD5 != nil {
		sum = md5.New()
	}
	body := s.putBody(ctx)
	n, err := s.receive(rel, body, int64(cl), sum, wantMD5)
	var mismatch *md5Mismatch
	switch {
	case err == nil:
	case errors.As(err, &mismatch):
		s.abortPut(ctx, fasthttp.StatusBadRequest, mismatch.Error())
		return
	case errors.Is(err, errTooLarge):
		s.abortPut(ctx, fasthttp.StatusRequestEntityTooLarge, "")
		return
	case body.failed, errors.Is(err, errShortBody):
		// The client went away or stalled: it will not read a reply, but try anyway.
		s.log.Debug("put: body not received", "path", rel, "err", err)
		s.abortPut(ctx, fasthttp.StatusBadRequest, "incomplete request body")
		return
	case fileStatus(err) == fasthttp.StatusForbidden:
		s.abortPut(ctx, fasthttp.StatusForbidden, "")
		return
	default:
		s.log.Error("put: cannot store file", "path", rel, "err", err)
		s.abortPut(ctx, fasthttp.StatusInternalServerError, "")
		return
	}
	if wantMD5 != nil {
		s.putStored(ctx, fasthttp.StatusCreated, n)
	} else {
		s.putStored(ctx, fasthttp.StatusOK, n)
	}
}

// putStored answers a PUT that stored n bytes with code and an empty HTML body.
func (s *Server) putStored(ctx *fasthttp.RequestCtx, code int, n int64) {
	s.stats.created.Add(1)
	s.stats.bytesIn.Add(n)
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/html")
	ctx.SetBodyString("")
}

// putBody is the streamed body of a PUT, read under read_timeout.
func (s *Server) putBody(ctx *fasthttp.RequestCtx) *bodyReader {
	return &bodyReader{r: ctx.RequestBodyStream(), conn: ctx.Conn(), timeout: s.cfg.ReadTimeout.D()}
}

// abortPut replies with an error to a PUT whose body may be unread and closes the connection,
// since fasthttp cannot skip the rest of a streamed body.
func (s *Server) abortPut(ctx *fasthttp.RequestCtx, code int, msg string) {
	s.stats.aborted.Add(1)
	s.reply(ctx, code, msg)
	ctx.SetConnectionClose()
}

// sentContentLength reports whether the request carried a Content-Length header (fasthttp reports
// a missing one as 0 once the body was read).
func sentContentLength(h *fasthttp.RequestHeader) bool {
	raw := h.RawHeaders()
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		k, _, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(strings.TrimSpace(string(k)), "Content-Length") {
			return true
		}
	}
	return false
}

// md5Mismatch is a Content-MD5 that does not match the received body.
type md5Mismatch struct{ want, got []byte }

func (e *md5Mismatch) Error() string {
	return fmt.Sprintf("Content-MD5 mismatch, expected: %s actual: %s",
		base64.StdEncoding.EncodeToString(e.want), base64.StdEncoding.EncodeToString(e.got))
}

// receive writes body to rel through a temp file: copy, check length and digest, fsync, close,
// rename, fsync the directory. length is the declared length, or -1 for a chunked body. It removes
// the temp file on every failure.
func (s *Server) receive(rel string, body io.Reader, length int64, sum hash.Hash, wantMD5 []byte) (n int64, err error) {
	tmp := tempName(rel)
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			s.root.Remove(tmp)
		}
	}()
	var w io.Writer = f
	if sum != nil {
		w = io.MultiWriter(f, sum)
	}
	limit := int64(s.cfg.MaxBody)
	if length >= 0 {
		limit = length
	}
	bp := s.bufs.Get().(*[]byte)
	n, err = io.CopyBuffer(w, io.LimitReader(body, limit+1), *bp)
	s.bufs.Put(bp)
	if err != nil {
		return n, err
	}
	switch {
	case length >= 0 && n < length:
		return n, errShortBody
	case length < 0 && n > limit:
		return n, errTooLarge
	}
	if sum != nil {
		if got := sum.Sum(nil); !bytes.Equal(got, wantMD5) {
			return n, &md5Mismatch{want: wantMD5, got: got}
		}
	}
	if err = f.Sync(); err != nil {
		return n, err
	}
	if err = f.Close(); err != nil {
		return n, err
	}
	if err = s.root.Rename(tmp, rel); err != nil {
		return n, err
	}
	if serr := s.syncDir(path.Dir(rel)); serr != nil {
		s.log.Warn("put: cannot fsync directory", "dir", path.Dir(rel), "err", serr)
	}
	return n, nil
}

// makeDirs creates dir (relative to the docroot) and any missing parents with mode 0755, fsyncing
// each parent that gained an entry.
func (s *Server) makeDirs(dir string) error {
	if fi, err := s.root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w", dir, fs.ErrExist)
		}
		return nil
	}
	parent := path.Dir(dir)
	if parent != "." && parent != dir {
		if err := s.makeDirs(parent); err != nil {
			return err
		}
	}
	if err := s.root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return s.syncDir(parent)
}

// bodyReader reads a streamed request body. Each read may wait up to timeout for the client, and
// any read error (including an early EOF, which fasthttp reports as a plain io.EOF) marks it failed.
type bodyReader struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
	failed  bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.conn != nil && b.timeout > 0 {
		// The connection's coarse deadlines (httpconn.Options.CoarseDeadlines) only record this;
		// the runtime timer moves once per eighth of the timeout while the body streams.
		b.conn.SetReadDeadline(time.Now().Add(b.timeout)) //nolint:errcheck // the read fails instead
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.failed = true
	}
	return n, err
}

// putRange writes a partial PUT ("Content-Range: bytes A-B/*", as cmogstored accepts and the Perl
// client's large-file mode sends) at offset A of the file, creating it if needed and never
// truncating it. Unlike a whole-file PUT this writes in place: if the body breaks off, the bytes
// already received stay written (the reply is then 400 and the client resends the range).
func (s *Server) putRange(ctx *fasthttp.RequestCtx, rel, cr string, length int64) {
	first, last, _, ok := httpsem.ParseContentRange(cr)
	if !ok {
		s.abortPut(ctx, fasthttp.StatusBadRequest, "Invalid Content-Range")
		return
	}
	if length != last-first+1 {
		s.abortPut(ctx, fasthttp.StatusBadRequest, "Content-Length does not match Content-Range")
		return
	}
	if last >= int64(s.cfg.MaxBody) {
		s.abortPut(ctx, fasthttp.StatusRequestEntityTooLarge, "")
		return
	}
	f, err := s.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		code := fileStatus(err)
		if code == fasthttp.StatusNotFound {
			code = fasthttp.StatusInternalServerError
		}
		s.abortPut(ctx, code, "")
		return
	}
	body := s.putBody(ctx)
	bp := s.bufs.Get().(*[]byte)
	n, err := io.CopyBuffer(io.NewOffsetWriter(f, first), io.LimitReader(body, length), *bp)
	s.bufs.Put(bp)
	if err == nil && n < length {
		err = errShortBody
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err == nil:
	case body.failed, errors.Is(err, errShortBody):
		s.abortPut(ctx, fasthttp.StatusBadRequest, "incomplete request body")
		return
	default:
		s.log.Error("put: cannot write range", "path", rel, "err", err)
		s.abortPut(ctx, fasthttp.StatusInternalServerError, "")
		return
	}
	s.putStored(ctx, fasthttp.StatusOK, n)
}
