package worker

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Digests through the storage node's side channel (spec 4.6): `MD5 <uri> fsck` answered by
// `<uri> MD5=<hex>`, so the tracker does not download the file to hash it. Any failure or odd reply
// falls back to an HTTP GET that the tracker hashes itself, as the Perl tracker does.

// errNoSideChannel means the side channel could not give a digest; the caller falls back to HTTP.
var errNoSideChannel = errors.New("worker: side channel gave no digest")

// sideDigest asks the side channel of ip for the digest of path. errMissing reports a file the node
// could not open (`=-1`).
func (w *Workers) sideDigest(ctx context.Context, ip string, path string, hashType int, reason string) ([]byte, error) {
	port := w.cfg.SideChannelPort
	if port <= 0 || hashType == 0 {
		return nil, errNoSideChannel
	}
	d := net.Dialer{Timeout: w.cfg.NodeTimeout.D()}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A digest of a large file takes a while; the node says nothing until it is done.
	c.SetDeadline(time.Now().Add(w.cfg.CopyTimeout.D()))
	cmd := hashName(hashType) + " " + path
	if reason != "" {
		cmd += " " + reason
	}
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	line, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoSideChannel, err)
	}
	return parseDigestLine(line, path, hashType)
}

// parseDigestLine reads a side-channel digest reply: exactly `<uri> <ALG>=<hex>\r\n`, with the hex
// as long as the algorithm's digest, or `<uri> <ALG>=-1\r\n` (errMissing). Anything else is
// errNoSideChannel.
func parseDigestLine(line, path string, hashType int) ([]byte, error) {
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	prefix := path + " " + hashName(hashType) + "="
	v, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return nil, fmt.Errorf("%w: reply %q", errNoSideChannel, line)
	}
	if v == "-1" {
		return nil, errMissing
	}
	size := map[int]int{1: 16, 2: 20}[hashType]
	if len(v) != 2*size || strings.ToLower(v) != v {
		return nil, fmt.Errorf("%w: reply %q", errNoSideChannel, line)
	}
	sum, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: reply %q", errNoSideChannel, line)
	}
	return sum, nil
}

// digest returns the digest of fid's copy on devID, from the side channel when it answers, or by
// reading the copy over HTTP. n is the length read over HTTP, or -1 when the side channel answered.
func (w *Workers) digest(ctx context.Context, v *view, devID int, fid int64, hashType int, reason string) (n int64, sum []byte, err error) {
	_, h, ok := v.host(devID)
	if !ok {
		return 0, nil, fmt.Errorf("device %d has no host", devID)
	}
	sum, err = w.sideDigest(ctx, h.IP, FidPath(devID, fid), hashType, reason)
	if err == nil || errors.Is(err, errMissing) {
		return -1, sum, err
	}
	u, _ := v.url(devID, fid, true)
	return w.fetchDigest(ctx, u, hashType)
}
