package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// countingReader counts the bytes read through it, so a failed PUT knows whether the body was touched
// (and can no longer be sent to another destination).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// upload answers PUT on a tracker route: create_open, stream the body to the first destination that
// takes it, create_close with the size, then 201 with an empty body. The body is never held whole: it
// flows from the client connection to the storage node. A destination that fails before any byte of
// the body was read is replaced by the next one create_open offered; after that the upload fails.
func (s *Server) upload(ctx *fasthttp.RequestCtx, st *state, rt *route, key string, rec *accessRecord) {
	size := ctx.Request.Header.ContentLength()
	if size < 0 {
		plainError(ctx, fasthttp.StatusLengthRequired, "send Content-Length; chunked uploads are not accepted")
		return
	}
	if int64(size) > int64(st.cfg.Limits.MaxUploadSize) {
		plainError(ctx, fasthttp.StatusRequestEntityTooLarge, "body too large")
		return
	}
	var body io.Reader = bytes.NewReader(ctx.Request.Body())
	if bs := ctx.RequestBodyStream(); bs != nil {
		body = bs
	}
	if sc, ok := ctx.Conn().(*serverConn); ok {
		// The body may take as long as the client keeps sending (client_read between reads).
		sc.streaming = true
		defer func() { sc.streaming = false }()
	}
	tctx, cancel := context.WithTimeout(context.Background(), st.budget)
	open, err := st.tracker.CreateOpen(tctx, rt.Domain, key, rt.Class)
	cancel()
	if err != nil {
		s.trackerFailed(ctx, "create_open", rt, key, err)
		return
	}
	if len(open.Dests) == 0 {
		plainError(ctx, fasthttp.StatusServiceUnavailable, "no destination to store the file")
		return
	}
	cr := &countingReader{r: body}
	var used *Dest
	var lastErr error
	for i := range open.Dests {
		d := &open.Dests[i]
		err := s.put(d.Path, cr, size, rec)
		if err == nil {
			used = d
			break
		}
		lastErr = err
		s.log.Warn("upload to storage failed", "path", d.Path, "sent", cr.n, "err", err)
		if cr.n > 0 {
			break
		}
	}
	rec.bodyRead = cr.n == int64(size)
	if used == nil {
		if isTimeout(lastErr) {
			plainError(ctx, fasthttp.StatusGatewayTimeout, "storage timed out")
		} else {
			plainError(ctx, fasthttp.StatusBadGateway, "storage did not take the file")
		}
		return
	}
	tctx, cancel = context.WithTimeout(context.Background(), st.budget)
	err = st.tracker.CreateClose(tctx, Close{Domain: rt.Domain, Key: key, Class: rt.Class, Fid: open.Fid,
		DevID: used.DevID, Path: used.Path, Size: int64(size)})
	cancel()
	st.paths.forget(rt.Domain, key)
	if err != nil {
		s.trackerFailed(ctx, "create_close", rt, key, err)
		return
	}
	s.stats.uploads.Add(1)
	s.stats.uploadBytes.Add(int64(size))
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.Response.Header.SetContentLength(0)
}

// maxStaleAttempts bounds how often one PUT is sent again after finding a pooled connection closed.
const maxStaleAttempts = 3

// errShortUpload is a body that ended before its Content-Length.
var errShortUpload = errors.New("gateway: request body shorter than Content-Length")

// put streams size bytes of body to a storage URL.
func (s *Server) put(path string, body *countingReader, size int, rec *accessRecord) error {
	u, err := url.Parse(path)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("bad destination %q", path)
	}
	n := s.nodes.get(u.Host)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(u.RequestURI())
	req.Header.SetHost(u.Host)
	req.Header.SetMethod(fasthttp.MethodPut)
	req.Header.SetContentType("application/octet-stream")
	start := body.n
	n.requests.Add(1)
	// No overall deadline: the idle timeouts of both connections bound every wait.
	began := time.Now()
	for attempt := 1; ; attempt++ {
		req.SetBodyStream(io.LimitReader(body, int64(size)), size)
		err = n.hc.Do(req, resp)
		// A pooled connection the node closed (it restarted, or its idle timeout passed) is found
		// before a byte of the body is read: send again on another connection. The second stale
		// connection in a row means the node restarted and every idle connection predates it.
		if !errors.Is(err, errStaleConn) || body.n != start || attempt == maxStaleAttempts {
			break
		}
		if attempt == 2 {
			n.hc.CloseIdleConnections()
		}
	}
	rec.addUpstream(n.addr, time.Since(began))
	if err == nil && body.n-start != int64(size) {
		err = errShortUpload
	}
	if err != nil {
		if body.n == start && !errors.Is(err, errStaleConn) {
			n.fail(s.now(), s.cfgNow().Storage)
		}
		abandon(resp)
		return err
	}
	status := resp.StatusCode()
	drain(resp)
	if status < 200 || status > 299 {
		if status >= 500 {
			n.fail(s.now(), s.cfgNow().Storage)
		}
		return fmt.Errorf("storage answered %d", status)
	}
	n.succeed()
	return nil
}

// drain reads a small response body to its end so its connection can be reused, then releases it.
func drain(resp *fasthttp.Response) {
	if bs := resp.BodyStream(); bs != nil {
		if _, err := io.Copy(io.Discard, io.LimitReader(bs, 64<<10)); err != nil || resp.Header.ContentLength() < 0 ||
			resp.Header.ContentLength() > 64<<10 {
			abandon(resp)
			return
		}
	}
	fasthttp.ReleaseResponse(resp)
}

// remove answers DELETE on a tracker route: 204, also for an unknown key (as the nginx module does).
func (s *Server) remove(ctx *fasthttp.RequestCtx, st *state, rt *route, key string) {
	tctx, cancel := context.WithTimeout(context.Background(), st.budget)
	err := st.tracker.Delete(tctx, rt.Domain, key)
	cancel()
	st.paths.forget(rt.Domain, key)
	if err != nil && trackerCode(err) != "unknown_key" {
		s.trackerFailed(ctx, "delete", rt, key, err)
		return
	}
	s.stats.deletes.Add(1)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// trackerFailed answers a failed tracker command.
func (s *Server) trackerFailed(ctx *fasthttp.RequestCtx, cmd string, rt *route, key string, err error) {
	status, msg := trackerAnswer(err)
	if trackerCode(err) == "" {
		s.stats.trackerErrors.Add(1)
		s.log.Warn("tracker command failed", "cmd", cmd, "domain", rt.Domain, "key", key, "err", err)
	} else if status >= 500 {
		s.log.Warn("tracker refused", "cmd", cmd, "domain", rt.Domain, "key", key, "err", err)
	}
	plainError(ctx, status, msg)
}
