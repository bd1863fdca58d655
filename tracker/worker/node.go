package worker

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Requests the tracker sends to storage nodes (spec 4.3), over net/http: it streams a GET body into a
// PUT with a known length, which is what replication needs.

// errMissing is a 404 from a storage node.
var errMissing = errors.New("worker: file missing on storage node")

// statusError is an unexpected HTTP status.
type statusError struct {
	method, url string
	code        int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d", e.method, e.url, e.code)
}

const userAgent = "mogway-tracker"

func (w *Workers) do(ctx context.Context, c *http.Client, method, url string, body io.Reader, length int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.Do(req)
}

// drain reads a little of what is left of a reply body so the connection can be reused, then closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}

// getSmall fetches url into memory, refusing bodies over limit bytes.
func (w *Workers) getSmall(ctx context.Context, url string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.NodeTimeout.D())
	defer cancel()
	resp, err := w.do(ctx, w.http, http.MethodGet, url, nil, 0, nil)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return nil, errMissing
	}
	if resp.StatusCode/100 != 2 {
		return nil, &statusError{"GET", url, resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: body over %d bytes", url, limit)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("GET %s: short body", url)
	}
	return b, nil
}

// putSmall writes body to url and returns the status code.
func (w *Workers) putSmall(ctx context.Context, url string, body []byte, hdr map[string]string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.NodeTimeout.D())
	defer cancel()
	resp, err := w.do(ctx, w.http, http.MethodPut, url, bytes.NewReader(body), int64(len(body)), hdr)
	if err != nil {
		return 0, err
	}
	drain(resp)
	return resp.StatusCode, nil
}

// head returns the size of the file at url; errMissing on 404. A 2xx reply without Content-Length is
// an error, as for the Perl tracker.
func (w *Workers) head(ctx context.Context, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.NodeTimeout.D())
	defer cancel()
	resp, err := w.do(ctx, w.http, http.MethodHead, url, nil, 0, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, errMissing
	case resp.StatusCode/100 != 2:
		return 0, &statusError{"HEAD", url, resp.StatusCode}
	case resp.ContentLength < 0:
		return 0, fmt.Errorf("HEAD %s: no Content-Length", url)
	}
	return resp.ContentLength, nil
}

// remove deletes url; a 404 counts as success.
func (w *Workers) remove(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.NodeTimeout.D())
	defer cancel()
	resp, err := w.do(ctx, w.http, http.MethodDelete, url, nil, 0, nil)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return &statusError{"DELETE", url, resp.StatusCode}
}

// newHash returns the digest for a MogileFS hashtype (1 MD5, 2 SHA-1), or nil for none.
func newHash(hashType int) hash.Hash {
	switch hashType {
	case 1:
		return md5.New()
	case 2:
		return sha1.New()
	}
	return nil
}

// hashName is the spelling of a hashtype in logs and checksum strings.
func hashName(hashType int) string {
	switch hashType {
	case 1:
		return "MD5"
	case 2:
		return "SHA-1"
	}
	return "NONE"
}

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

// fetchDigest streams url and returns its length and, when hashType is set, its digest.
func (w *Workers) fetchDigest(ctx context.Context, url string, hashType int) (int64, []byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(w.cfg.CopyTimeout.D(), cancel)
	defer idle.Stop()
	resp, err := w.do(ctx, w.copy, http.MethodGet, url, nil, 0, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil, errMissing
	}
	if resp.StatusCode/100 != 2 {
		return 0, nil, &statusError{"GET", url, resp.StatusCode}
	}
	h := newHash(hashType)
	var dst io.Writer = io.Discard
	if h != nil {
		dst = h
	}
	n, err := io.Copy(dst, &idleCancel{r: resp.Body, t: idle, d: w.cfg.CopyTimeout.D()})
	if err != nil {
		return n, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, nil, fmt.Errorf("GET %s: got %d of %d bytes", url, n, resp.ContentLength)
	}
	if h == nil {
		return n, nil, nil
	}
	return n, h.Sum(nil), nil
}

// copyError says which side of a copy failed.
type copyError struct {
	source bool
	err    error
}

func (e *copyError) Error() string {
	side := "destination"
	if e.source {
		side = "source"
	}
	return side + ": " + e.err.Error()
}

func (e *copyError) Unwrap() error { return e.err }

// copyFile streams src into a PUT to dst. The source must announce exactly length bytes. When hashType
// is set the streamed bytes are digested and the digest returned; contentMD5, when not nil, is sent as
// Content-MD5. Errors are *copyError.
func (w *Workers) copyFile(ctx context.Context, src, dst string, length int64, hashType int, contentMD5 []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(w.cfg.CopyTimeout.D(), cancel)
	defer idle.Stop()
	resp, err := w.do(ctx, w.copy, http.MethodGet, src, nil, 0, nil)
	if err != nil {
		return nil, &copyError{true, err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, &copyError{true, &statusError{"GET", src, resp.StatusCode}}
	}
	if resp.ContentLength != length {
		return nil, &copyError{true, fmt.Errorf("GET %s: Content-Length %d, want %d", src, resp.ContentLength, length)}
	}
	body := &idleCancel{r: resp.Body, t: idle, d: w.cfg.CopyTimeout.D()}
	h := newHash(hashType)
	var rd io.Reader = body
	if h != nil {
		rd = io.TeeReader(body, h)
	}
	srcErr := &errReader{r: rd}
	hdr := map[string]string{"Content-Type": "application/octet-stream"}
	if contentMD5 != nil {
		hdr["Content-MD5"] = base64.StdEncoding.EncodeToString(contentMD5)
	}
	put, err := w.do(ctx, w.copy, http.MethodPut, dst, srcErr, length, hdr)
	if err != nil {
		if srcErr.err != nil && srcErr.err != io.EOF {
			return nil, &copyError{true, srcErr.err}
		}
		return nil, &copyError{false, err}
	}
	drain(put)
	if put.StatusCode/100 != 2 {
		return nil, &copyError{false, &statusError{"PUT", dst, put.StatusCode}}
	}
	if got := body.n.Load(); got != length {
		return nil, &copyError{true, fmt.Errorf("GET %s: sent %d of %d bytes", src, got, length)}
	}
	if h == nil {
		return nil, nil
	}
	return h.Sum(nil), nil
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

// usage is the part of a device's usage file the monitor needs, in KiB.
type usage struct {
	total, used int64
}

// parseUsage reads a mogstored usage file (spec 4.4): "key: value" lines. It needs positive `total`
// and `used`, as the Perl monitor does.
func parseUsage(b []byte) (usage, error) {
	var u usage
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimRight(k, " \t"), strings.TrimSpace(v)
		if k == "" || v == "" || !wordChars(k) {
			continue
		}
		switch k {
		case "total":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return usage{}, fmt.Errorf("usage: bad total %q", v)
			}
			u.total = n
		case "used":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return usage{}, fmt.Errorf("usage: bad used %q", v)
			}
			u.used = n
		}
	}
	if u.total <= 0 || u.used <= 0 { // a missing key leaves its field 0
		return usage{}, errors.New("usage: total and used must be present and positive")
	}
	return u, nil
}

func wordChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
