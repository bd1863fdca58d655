package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// idleCancel cancels a transfer when no bytes have moved for d.
type idleCancel struct {
	r io.Reader
	t *time.Timer
	d time.Duration
	n atomic.Int64
}

func (r *idleCancel) Read(p []byte) (int, error) {
	r.t.Reset(r.d)
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// stream starts a GET of url on the transfer client. Its reply headers must come within Timeout: a
// node sends them as soon as it has opened the file, so one that does not is hung, and waiting
// TransferTimeout for it would hold a replication or fsck worker that long. The returned context,
// which ends the transfer, is cancelled once TransferTimeout passes without a byte read from body;
// done releases it all.
func (c *Client) stream(ctx context.Context, url string) (_ context.Context, resp *http.Response, body *idleCancel, done func(), err error) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	idle := time.AfterFunc(c.cfg.Timeout, func() { cancelCause(errNoReply) })
	resp, err = do(ctx, c.copy, http.MethodGet, url, nil, 0, nil)
	if err != nil {
		idle.Stop()
		if cause := context.Cause(ctx); cause == errNoReply {
			err = fmt.Errorf("GET %s: %w within %s", url, cause, c.cfg.Timeout)
		}
		cancel()
		return nil, nil, nil, nil, err
	}
	idle.Stop()
	idle = time.AfterFunc(c.cfg.TransferTimeout, cancel)
	done = func() {
		resp.Body.Close()
		idle.Stop()
		cancel()
	}
	return ctx, resp, &idleCancel{r: resp.Body, t: idle, d: c.cfg.TransferTimeout}, done, nil
}

// Fetch streams the file at url and returns its length and, unless h is store.HashNone, its digest.
// A body shorter than its Content-Length is an error. The transfer is cancelled when it stalls for
// the TransferTimeout.
func (c *Client) Fetch(ctx context.Context, url string, h store.Hash) (int64, []byte, error) {
	_, resp, body, done, err := c.stream(ctx, url)
	if err != nil {
		return 0, nil, err
	}
	defer done()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil, fmt.Errorf("GET %s: %w", url, ErrNotFound)
	}
	if resp.StatusCode/100 != 2 {
		return 0, nil, &StatusError{"GET", url, resp.StatusCode}
	}
	d := h.New()
	var dst io.Writer = io.Discard
	if d != nil {
		dst = d
	}
	n, err := io.Copy(dst, body)
	if err != nil {
		return n, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, nil, fmt.Errorf("GET %s: got %d of %d bytes", url, n, resp.ContentLength)
	}
	if d == nil {
		return n, nil, nil
	}
	return n, d.Sum(nil), nil
}

// CopyError is a failed Copy; Source says whether the source (GET) or the destination (PUT) failed.
type CopyError struct {
	Source bool
	Err    error
}

func (e *CopyError) Error() string {
	side := "destination"
	if e.Source {
		side = "source"
	}
	return side + ": " + e.Err.Error()
}

func (e *CopyError) Unwrap() error { return e.Err }

// Copy streams the file at src into a PUT to dst. The source must announce exactly length bytes.
// Unless h is store.HashNone the streamed bytes are digested and the digest returned; contentMD5,
// when not nil, is sent as Content-MD5. Errors are *CopyError.
func (c *Client) Copy(ctx context.Context, src, dst string, length int64, h store.Hash, contentMD5 []byte) ([]byte, error) {
	ctx, resp, body, done, err := c.stream(ctx, src)
	if err != nil {
		return nil, &CopyError{Source: true, Err: err}
	}
	defer done()
	if resp.StatusCode/100 != 2 {
		return nil, &CopyError{Source: true, Err: &StatusError{"GET", src, resp.StatusCode}}
	}
	if resp.ContentLength != length {
		return nil, &CopyError{Source: true, Err: fmt.Errorf("GET %s: Content-Length %d, want %d", src, resp.ContentLength, length)}
	}
	d := h.New()
	var rd io.Reader = body
	if d != nil {
		rd = io.TeeReader(body, d)
	}
	srcErr := &errReader{r: rd}
	hdr := map[string]string{"Content-Type": "application/octet-stream"}
	if contentMD5 != nil {
		hdr["Content-MD5"] = base64.StdEncoding.EncodeToString(contentMD5)
	}
	put, err := do(ctx, c.copy, http.MethodPut, dst, srcErr, length, hdr)
	if err != nil {
		if srcErr.err != nil && srcErr.err != io.EOF {
			return nil, &CopyError{Source: true, Err: srcErr.err}
		}
		return nil, &CopyError{Source: false, Err: err}
	}
	drain(put)
	if put.StatusCode/100 != 2 {
		return nil, &CopyError{Source: false, Err: &StatusError{"PUT", dst, put.StatusCode}}
	}
	if got := body.n.Load(); got != length {
		return nil, &CopyError{Source: true, Err: fmt.Errorf("GET %s: sent %d of %d bytes", src, got, length)}
	}
	if d == nil {
		return nil, nil
	}
	return d.Sum(nil), nil
}

// errReader remembers the first read error of the source.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}
