package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/tracker/mogproto"
)

// replayBody is the body of one PUT, read from the client once and sent to one destination after
// another. It keeps the first bytes it reads, up to max, so that a destination that fails while
// everything read so far is still kept can be sent the body again from its first byte; once more
// than max was read the kept bytes are dropped and the body can only go forward. Memory per upload is
// thus at most max, whatever the body's size. It is used by one goroutine at a time.
type replayBody struct {
	r    io.Reader // the client's body
	size int64     // its Content-Length
	max  int64     // most bytes kept for a replay
	kept []byte    // bytes 0..read of the body while read <= max; nil once dropped
	read int64     // bytes read from the client
	off  int64     // bytes handed out since the last rewind
	err  error     // the client's failure (an error or a short body), if any
}

func newReplayBody(r io.Reader, size, max int64) *replayBody {
	return &replayBody{r: r, size: size, max: max}
}

func (b *replayBody) Read(p []byte) (int, error) {
	if b.off < b.read {
		// Replaying: b.kept holds every byte read so far (rewind refuses otherwise).
		n := copy(p, b.kept[b.off:b.read])
		b.off += int64(n)
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if n > 0 {
		switch {
		case b.dropped():
		case b.read+int64(n) <= b.max:
			if b.kept == nil {
				b.kept = make([]byte, 0, min(b.size, b.max))
			}
			b.kept = append(b.kept, p[:n]...)
		default:
			b.kept = nil
		}
		b.read += int64(n)
		b.off += int64(n)
	}
	if err == io.EOF && b.read < b.size {
		err = errShortUpload
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// rewind makes the next Read start again at the body's first byte. It reports false when bytes
// that were not kept have been handed out since the last rewind.
func (b *replayBody) rewind() bool {
	if b.off == 0 {
		return true
	}
	if b.dropped() {
		return false
	}
	b.off = 0
	return true
}

// dropped reports whether more than max was read, so that the kept bytes are gone and the body
// cannot be sent again.
func (b *replayBody) dropped() bool { return b.read > b.max }

// complete reports whether the client's whole body was read (so its connection may serve another
// request).
func (b *replayBody) complete() bool { return b.read == b.size }

// oversizeHeader marks a PUT whose Content-Length was over max_upload_size when its head arrived
// (see refuseOversized). The value is the length the client announced.
const oversizeHeader = "X-Mogway-Oversize"

// refuseOversized runs on every request head before fasthttp reads any of the body. A PUT that
// announces more than max_upload_size would otherwise wait for its first 8 KiB to arrive (fasthttp
// reads them with the head) before the handler could answer: its length is set to 0 and the
// announced one kept in oversizeHeader, so the handler answers 413 at once and closes the
// connection, never reading the body. Expect: 100-continue is dropped for such a request, so the
// client gets the 413 as its final answer instead of a 417. A client-sent oversizeHeader is always
// removed first.
func (s *Server) refuseOversized(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if !h.IsPut() {
		return fasthttp.RequestConfig{}
	}
	h.Del(oversizeHeader)
	if cl := h.ContentLength(); int64(cl) > int64(s.state.Load().cfg.Limits.MaxUploadSize) {
		h.Set(oversizeHeader, strconv.Itoa(cl))
		h.Del(fasthttp.HeaderExpect)
		h.SetContentLength(0)
	}
	return fasthttp.RequestConfig{}
}

// lingerBody arranges for the connection to discard up to n more request body bytes before it is
// closed, so that a client still sending reads the answer instead of a connection reset.
func lingerBody(ctx *fasthttp.RequestCtx, n int64) {
	if sc, ok := ctx.Conn().(*serverConn); ok && n > 0 {
		sc.linger = n
	}
}

// upload answers PUT on a tracker route: create_open, stream the body to the first destination that
// takes it, create_close with the size, then 201 with an empty body. The body is never held whole:
// it flows from the client connection to the storage node through a fixed buffer as it arrives,
// and only its first replay_buffer bytes are kept (see replayBody). A destination that fails while
// every byte read is still kept is replaced by the next one create_open offered; otherwise the upload
// fails with 502 (503 when the node hung, see put) and nothing is committed (no create_close: the key
// is not created).
func (s *Server) upload(ctx *fasthttp.RequestCtx, st *state, rt *route, key string, rec *accessRecord) {
	if v := ctx.Request.Header.Peek(oversizeHeader); len(v) > 0 {
		n, _ := strconv.ParseInt(string(v), 10, 64)
		lingerBody(ctx, n)
		plainError(ctx, fasthttp.StatusRequestEntityTooLarge, "body too large")
		return
	}
	size := ctx.Request.Header.ContentLength()
	if size < 0 {
		plainError(ctx, fasthttp.StatusLengthRequired, "send Content-Length; chunked uploads are not accepted")
		return
	}
	if int64(size) > int64(st.cfg.Limits.MaxUploadSize) {
		plainError(ctx, fasthttp.StatusRequestEntityTooLarge, "body too large")
		return
	}
	// Request.Body would read a streamed body whole into memory: take the stream.
	var stream io.Reader = ctx.RequestBodyStream()
	if stream == nil {
		stream = &bodyBytes{b: ctx.Request.Body()} // a body fasthttp read whole (at most 64 KiB)
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
	body := newReplayBody(stream, int64(size), int64(st.cfg.Limits.UploadReplayBuffer))
	used, err := s.sendBody(open.Dests, body, rec)
	rec.bodyRead = body.complete()
	if used == nil {
		if body.err == nil {
			lingerBody(ctx, body.size-body.read)
		}
		switch {
		case body.err != nil:
			// The client stopped sending; it is probably gone, but answer anyway.
			if isTimeout(body.err) {
				plainError(ctx, fasthttp.StatusRequestTimeout, "request body timed out")
			} else {
				plainError(ctx, fasthttp.StatusBadRequest, "request body ended before its Content-Length")
			}
		case classify(err) == failTimeout:
			// A hung node (it accepted the connection, then took no more of the body or sent no
			// answer within storage_stall or storage_first_byte): the cluster is not able to store
			// the file now, so the client may retry (503, as for no destination at all).
			plainError(ctx, fasthttp.StatusServiceUnavailable, "storage node not responding; nothing was stored")
		default:
			plainError(ctx, fasthttp.StatusBadGateway, "storage did not take the file; nothing was stored")
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

// sendBody sends body to the first of dests that stores it whole and returns that destination, or
// nil and the last error. After a failure it moves to the next destination only when the body can
// be sent again from its start and the client was not the cause.
func (s *Server) sendBody(dests []Dest, body *replayBody, rec *accessRecord) (*Dest, error) {
	var err error
	for i := range dests {
		d := &dests[i]
		if i > 0 && !body.rewind() {
			break
		}
		if err = s.put(d.Path, body, i+1 < len(dests), rec); err == nil {
			return d, nil
		}
		if body.err != nil {
			s.log.Info("upload body not received", "path", d.Path, "read", body.read, "size", body.size, "err", body.err)
			break
		}
		s.log.Warn("upload to storage failed", "path", d.Path, "read", body.read, "size", body.size,
			"replayable", !body.dropped(), "err", err)
	}
	return nil, err
}

// bodyBytes reads a request body fasthttp already holds (a Reader over b, without its WriterTo, so
// that every body is copied through the same bounded buffer).
type bodyBytes struct{ b []byte }

func (r *bodyBytes) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// maxStaleAttempts bounds how often one PUT is sent again after finding a pooled connection closed.
const maxStaleAttempts = 3

// errShortUpload is a body that ended before its Content-Length.
var errShortUpload = errors.New("gateway: request body shorter than Content-Length")

// uploadStream is the body of one PUT attempt as fasthttp reads it to write the request. fasthttp
// gives the response the address of the connection it writes on before it writes (see connAddr), so
// on the first read from each connection (fasthttp may retry on another) the waits of this upload
// on it are bounded (idleConn.boundUpload).
type uploadStream struct {
	io.Reader
	resp          *fasthttp.Response
	stall, answer time.Duration
	conn          *idleConn // the connection bound last
}

func (u *uploadStream) Read(p []byte) (int, error) {
	if a, ok := u.resp.LocalAddr().(connAddr); ok && a.c != u.conn {
		u.conn = a.c
		a.c.boundUpload(u.stall, u.answer)
	}
	return u.Reader.Read(p)
}

// put streams body, from its current position, to a storage URL. A node that hangs (it accepts the
// connection, then reads or answers nothing) is given up on quickly: each wait for it to take more
// of the body is bounded by storage_stall, and the wait for its answer once it has the whole body by
// storage_first_byte, or by storage_stall too when the body could go to the next destination
// instead (failover: there is one, and the whole body fits the replay buffer).
func (s *Server) put(path string, body *replayBody, failover bool, rec *accessRecord) error {
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
	n.requests.Add(1)
	// No overall deadline: the idle and stall timeouts of both connections bound every wait.
	t := s.cfgNow().Timeouts
	stall, answer := t.StorageStall.D(), t.StorageFirstByte.D()
	if failover && body.size <= body.max {
		answer = min(answer, stall)
	}
	began := time.Now()
	for attempt := 1; ; attempt++ {
		// The limit keeps the stream from reading past the body, and tells fasthttp its length.
		req.SetBodyStream(&uploadStream{Reader: io.LimitReader(body, body.size-body.off), resp: resp, stall: stall, answer: answer},
			int(body.size-body.off))
		err = n.hc.Do(req, resp)
		// A pooled connection the node closed (it restarted, or its idle timeout passed) is found
		// before a byte of the body is read: send again on another connection. The second stale
		// connection in a row means the node restarted and every idle connection predates it.
		if !errors.Is(err, errStaleConn) || !body.rewind() || attempt == maxStaleAttempts {
			break
		}
		if attempt == 2 {
			n.hc.CloseIdleConnections()
		}
	}
	rec.addUpstream(n.addr, time.Since(began))
	if err == nil && body.off != body.size {
		err = errShortUpload
	}
	if err != nil {
		if body.err == nil && !errors.Is(err, errStaleConn) {
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
	if err != nil && trackerCode(err) != mogproto.ErrUnknownKey {
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
