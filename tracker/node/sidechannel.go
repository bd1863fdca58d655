package node

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// Digests through the storage node's side channel (spec 4.6): `MD5 <uri> fsck` answered by
// `<uri> MD5=<hex>`, so the tracker does not download the file to hash it. Any failure or odd reply
// falls back to an HTTP GET that the tracker hashes itself, as the Perl tracker does.

// errNoSideChannel means the side channel could not give a digest; Digest falls back to HTTP.
var errNoSideChannel = errors.New("node: side channel gave no digest")

// Digest returns the digest of the file at url. It asks the side channel of url's host first and,
// when that gives no digest, fetches the file and hashes it (Fetch). n is the length read over HTTP,
// or -1 when the side channel answered. As in MogileFS::HTTPFile digest, a side channel that cannot
// open the file (`=-1`, which may also mean the node ran out of file descriptors) is not trusted:
// the HTTP fetch decides, and its 404 is ErrNotFound. reason, when not empty, is sent after the
// path (mogstored logs it, e.g. "fsck").
func (c *Client) Digest(ctx context.Context, url string, h store.Hash, reason string) (n int64, sum []byte, err error) {
	if sum, err = c.sideDigest(ctx, url, h, reason); err == nil {
		return -1, sum, nil
	}
	return c.Fetch(ctx, url, h)
}

// sideDigest asks the side channel of rawURL's host for the digest of its path.
func (c *Client) sideDigest(ctx context.Context, rawURL string, h store.Hash, reason string) ([]byte, error) {
	if c.cfg.SidePort <= 0 || h.Size() == 0 { // no side channel, or no digest to ask for
		return nil, errNoSideChannel
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	path := u.EscapedPath()
	d := net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), strconv.Itoa(c.cfg.SidePort)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A digest of a large file takes a while; the node says nothing until it is done.
	conn.SetDeadline(time.Now().Add(c.cfg.TransferTimeout))
	cmd := h.String() + " " + path
	if reason != "" {
		cmd += " " + reason
	}
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	line, err := bufio.NewReaderSize(conn, 512).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	return parseDigestReply(line, path, h)
}

// parseDigestReply reads a side-channel digest reply: exactly `<path> <ALG>=<hex>\r\n` (or `\n`),
// with lower-case hex as long as h's digest, or `<path> <ALG>=-1\r\n` (ErrNotFound). Anything else
// is errNoSideChannel.
func parseDigestReply(line, path string, h store.Hash) ([]byte, error) {
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if h.Size() == 0 {
		return nil, fmt.Errorf("%w: no digest for hash type %d", errNoSideChannel, int(h))
	}
	v, ok := strings.CutPrefix(line, path+" "+h.String()+"=")
	if !ok {
		return nil, fmt.Errorf("%w: reply %q", errNoSideChannel, line)
	}
	if v == "-1" {
		return nil, fmt.Errorf("side channel %s: %w", path, ErrNotFound)
	}
	if len(v) != 2*h.Size() || strings.ToLower(v) != v {
		return nil, fmt.Errorf("%w: reply %q", errNoSideChannel, line)
	}
	sum, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: reply %q", errNoSideChannel, line)
	}
	return sum, nil
}
