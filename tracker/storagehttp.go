package tracker

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// nodeClient makes the few requests a query sends to storage nodes: HEAD for create_close's size
// check and get_paths' verification, and a digest for create_close checksumverify=1 (the side
// channel first, then an HTTP GET hashed here). Safe for concurrent use.
type nodeClient struct {
	http            *http.Client
	timeout         time.Duration
	checksumTimeout time.Duration
	sidePort        int
}

func newNodeClient(timeout, checksumTimeout time.Duration, sidePort int) *nodeClient {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &nodeClient{
		http: &http.Client{
			Transport: &http.Transport{
				DialContext:           d.DialContext,
				ResponseHeaderTimeout: timeout,
				MaxIdleConnsPerHost:   4,
				IdleConnTimeout:       60 * time.Second,
				DisableCompression:    true,
			},
			// Storage nodes never redirect; following one would check some other file.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:         timeout,
		checksumTimeout: checksumTimeout,
		sidePort:        sidePort,
	}
}

func (n *nodeClient) close() { n.http.CloseIdleConnections() }

// errMissing is a HEAD or GET answered 404.
var errMissing = errors.New("file missing on storage node")

// size returns the length of the file at u from a HEAD request. errMissing means 404; any other
// error means the node could not be asked (or answered without a Content-Length).
func (n *nodeClient) size(ctx context.Context, u string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, errMissing
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return 0, fmt.Errorf("HEAD %s: %s", u, resp.Status)
	}
	cl := resp.Header.Get("Content-Length")
	if cl == "" {
		// lighttpd answers HEAD of an empty file without a Content-Length (MogileFS::HTTPFile).
		if strings.HasPrefix(resp.Header.Get("Server"), "lighttpd") {
			return 0, nil
		}
		return 0, fmt.Errorf("HEAD %s: no Content-Length", u)
	}
	v, err := strconv.ParseInt(cl, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("HEAD %s: bad Content-Length %q", u, cl)
	}
	return v, nil
}

// digest returns the digest (alg "MD5" or "SHA-1") of the file at u. It asks the node's side
// channel first (`MD5 /devN/...`) and falls back to fetching the file and hashing it here.
func (n *nodeClient) digest(ctx context.Context, u, alg string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, n.checksumTimeout)
	defer cancel()
	if sum, err := n.sideDigest(ctx, u, alg); err == nil {
		return sum, nil
	}
	return n.getDigest(ctx, u, alg)
}

// sideReply matches the side channel's digest answer: "<uri> <ALG>=<hex>" or "<uri> <ALG>=-1".
var sideReply = regexp.MustCompile(`^(\S+) (MD5|SHA-1)=([0-9a-f]{32,128}|-1)\r?\n$`)

func (n *nodeClient) sideDigest(ctx context.Context, u, alg string) ([]byte, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(pu.Hostname(), strconv.Itoa(n.sidePort))
	d := net.Dialer{Timeout: n.timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := fmt.Fprintf(c, "%s %s\r\n", alg, pu.EscapedPath()); err != nil {
		return nil, err
	}
	line, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err != nil {
		return nil, err
	}
	m := sideReply.FindStringSubmatch(line)
	if m == nil || m[2] != alg {
		return nil, fmt.Errorf("side channel %s: unexpected reply %q", addr, strings.TrimSpace(line))
	}
	if m[3] == "-1" {
		return nil, errMissing
	}
	return hex.DecodeString(m[3])
}

func (n *nodeClient) getDigest(ctx context.Context, u, alg string) ([]byte, error) {
	var h hash.Hash
	switch alg {
	case "MD5":
		h = md5.New()
	case "SHA-1":
		h = sha1.New()
	default:
		return nil, fmt.Errorf("unknown digest %q", alg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errMissing
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	got, err := io.Copy(h, resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.ContentLength >= 0 && got != resp.ContentLength {
		return nil, fmt.Errorf("GET %s: body ended after %d of %d bytes", u, got, resp.ContentLength)
	}
	return h.Sum(nil), nil
}
