// Package node is the tracker's client for storage nodes (spec 4.3, 4.6): HEAD for a file's size,
// small GETs and PUTs for the monitor's probes, DELETE, streamed GETs that are hashed or copied into a
// PUT, and digests through the node's side channel with an HTTP fallback. Both the query handlers and
// the background workers use it.
//
// Contract: a file a node does not have (HTTP 404, or a side-channel `=-1`) is reported as an error
// wrapping ErrNotFound; check with errors.Is. An unexpected HTTP status is a *StatusError, and a
// failed Copy is a *CopyError that says which side failed. Other errors mean the node could not be
// asked. A Client is safe for concurrent use; Close releases its idle connections.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrNotFound means the storage node does not have the file: it answered 404, or its side channel
// could not open the file.
var ErrNotFound = errors.New("node: file not found on storage node")

// errNoReply ends a streamed GET whose node sent no reply headers within the Client's Timeout.
var errNoReply = timeoutError("node: no reply headers")

// timeoutError is a net.Error whose Timeout is true, so IsTimeout and callers that check net.Error
// see a node that did not answer in time.
type timeoutError string

func (e timeoutError) Error() string   { return string(e) }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// IsTimeout reports whether err means a storage node did not answer in time: a request that ran
// out of the Client's Timeout (node_timeout), or a context deadline. Callers use it to tell a hung
// node from one that answered with an error or refused the connection.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// StatusError is an unexpected HTTP status from a storage node.
type StatusError struct {
	Method, URL string
	Code        int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Code)
}

// userAgent is sent with every HTTP request, so a node's log shows who asked.
const userAgent = "mogway-tracker"

// Config sets a Client's timeouts and pools. The zero value of a field means its default.
type Config struct {
	// Timeout (node_timeout) bounds connecting to a node, the reply headers of a request (streamed
	// GETs included), and each whole HEAD, DELETE and small GET or PUT. Default 2s.
	Timeout time.Duration
	// TransferTimeout bounds any pause in the body of a streamed GET or in a copy, the reply to a
	// copy's PUT (the node answers once the whole file is on disk), and the wait for a side-channel
	// digest (a node says nothing until it has read the whole file). Default 60s.
	TransferTimeout time.Duration
	// SidePort is the nodes' side-channel (management) port used for digests; 0 or less means none:
	// digests are always computed from an HTTP GET.
	SidePort int
	// IdleConns is the number of idle connections kept per node for small requests; default 2.
	IdleConns int
	// TransferIdleConns is the number of idle connections kept per node for transfers; default 2.
	TransferIdleConns int
}

// Client makes the requests the tracker sends to storage nodes. Its methods are safe for concurrent
// use.
type Client struct {
	cfg   Config
	http  *http.Client // DELETE, small GET and PUT: Timeout on connect and reply headers
	copy  *http.Client // streamed GETs and copies: TransferTimeout on reply headers
	heads headPool     // Size's HEADs to http:// URLs (head.go)
}

// New returns a Client for cfg. Close it when done.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = 60 * time.Second
	}
	return &Client{
		cfg:   cfg,
		http:  newHTTPClient(cfg.Timeout, cfg.Timeout, cfg.IdleConns),
		copy:  newHTTPClient(cfg.Timeout, cfg.TransferTimeout, cfg.TransferIdleConns),
		heads: headPool{max: max(cfg.IdleConns, 2)},
	}
}

func newHTTPClient(connect, reply time.Duration, idlePerHost int) *http.Client {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           d.DialContext,
			ResponseHeaderTimeout: reply,
			MaxIdleConnsPerHost:   max(idlePerHost, 2),
			IdleConnTimeout:       60 * time.Second,
			DisableCompression:    true,
		},
		// Storage nodes never redirect; following one could check, or delete, some other file.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close releases the Client's idle connections. The Client stays usable.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	c.copy.CloseIdleConnections()
	c.heads.closeIdle()
}

func do(ctx context.Context, hc *http.Client, method, url string, body io.Reader, length int64, hdr map[string]string) (*http.Response, error) {
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
	return hc.Do(req)
}

// drain reads a little of what is left of a reply body so the connection can be reused, then closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}

// Size returns the length of the file at url from a HEAD request. A 2xx reply needs a
// Content-Length, except that lighttpd answers HEAD of an empty file without one
// (MogileFS::HTTPFile), which counts as 0. Plain http://host:port/path URLs go over the Client's
// own kept-alive connections (head.go); anything else through net/http.
func (c *Client) Size(ctx context.Context, url string) (int64, error) {
	n, _, err := c.SizeWithin(ctx, url, 0)
	return n, err
}

// SizeWithin is Size waiting at most patience for the node to begin its answer. When the node has
// sent nothing by then, SizeWithin returns a non-nil *LateSize, with n 0 and no error: the HEAD is
// still on its way, and LateSize.Wait waits for the rest of it (within the Timeout counted from
// now). A patience of 0 or less, or one that reaches the Timeout or ctx's deadline, waits as Size
// does; so do URLs other than http://host:port/path, which go through net/http.
func (c *Client) SizeWithin(ctx context.Context, url string, patience time.Duration) (int64, *LateSize, error) {
	if addr, path, ok := splitHTTPURL(url); ok {
		return c.head(ctx, url, addr, path, patience)
	}
	n, err := c.sizeHTTP(ctx, url)
	return n, nil, err
}

// sizeHTTP is Size through net/http.
func (c *Client) sizeHTTP(ctx context.Context, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := do(ctx, c.http, http.MethodHead, url, nil, 0, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	// The reply is judged as head.go judges its own; net/http has already refused conflicting
	// Content-Length values.
	cl := resp.Header.Get("Content-Length")
	return headReply{code: resp.StatusCode, length: cl, hasLength: cl != "",
		lighttpd: strings.HasPrefix(resp.Header.Get("Server"), "lighttpd")}.size(url)
}

// Get fetches url into memory, refusing bodies over limit bytes and short bodies.
func (c *Client) Get(ctx context.Context, url string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := do(ctx, c.http, http.MethodGet, url, nil, 0, nil)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET %s: %w", url, ErrNotFound)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &StatusError{"GET", url, resp.StatusCode}
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

// Put writes body to url with the headers hdr and returns the status code the node answered.
func (c *Client) Put(ctx context.Context, url string, body []byte, hdr map[string]string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := do(ctx, c.http, http.MethodPut, url, bytes.NewReader(body), int64(len(body)), hdr)
	if err != nil {
		return 0, err
	}
	drain(resp)
	return resp.StatusCode, nil
}

// Delete removes the file at url; a 404 counts as success.
func (c *Client) Delete(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := do(ctx, c.http, http.MethodDelete, url, nil, 0, nil)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return &StatusError{"DELETE", url, resp.StatusCode}
}
