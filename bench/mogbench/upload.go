package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// uploadPath is where the reference side PUTs: a fid path far above the fids the benchmark's tracker
// hands out, on node A's dev1, overwritten every round.
const uploadPath = "/dev1/0/000/900/0000900000.fid"

// uploadRow PUTs o.upSize bytes from one client, alternating round after round between
//   - mogway: the upload gateway's tracker route (create_open, the PUT streamed to the storage node
//     the tracker offers, create_close with the tracker's size check), key "upload", one-copy class;
//   - the reference: nginx proxy_pass with proxy_request_buffering off to storage node A, at a
//     fixed fid path (no tracker),
//
// and reports the median MB/s, the servers' CPU µs per MiB and each server's peak RSS (VmHWM) during
// these uploads. Both sides end in the same `mogway storaged` nodes, which fsync the file before
// they answer.
func (c *cluster) uploadRow() (row, error) {
	size := c.o.upSize
	gw := c.gateways[gwUpload]
	block := make([]byte, 1<<20)
	if _, err := rand.Read(block); err != nil {
		return row{}, err
	}
	urls := []string{localURL(gwUpload, "/"+domain+"/upload"), localURL(ngx.Upload, uploadPath)}
	// Warm both sides with a small PUT; the gateway's answers 503 until the tracker has seen the
	// devices writable (the first monitor rounds), which may not have happened when no test object
	// was uploaded before this scenario.
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range urls {
		for {
			_, err := putAll(u, block, int64(len(block)))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return row{}, err
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	for _, pid := range pids(gw, c.nginx) {
		// Earlier scenarios raised the servers' high-water marks; count only the uploads.
		if err := resetPeakRSS(pid); err != nil {
			return row{}, err
		}
	}
	t, err := transfers([2]string(urls), [2][]*proc{c.mogSide(gw), c.refSide(c.nginx)}, size, c.o.rounds,
		func(u string) (float64, error) { return putAll(u, block, size) })
	if err != nil {
		return row{}, err
	}
	return t.row(fmt.Sprintf("upload %d MiB through the gateway (one client)", size>>20),
		"nginx proxy_pass, proxy_request_buffering off", [2]int64{gw.peakRSS(), nginxRSS(c.nginx)}), nil
}

// putAll PUTs size bytes (block repeated) to url with a Content-Length and returns the bytes per
// second, from the first byte sent to the answer.
func putAll(url string, block []byte, size int64) (float64, error) {
	req, err := http.NewRequest(http.MethodPut, url, repeated(block, size))
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("PUT %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("PUT %s: %s %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return float64(size) / time.Since(t0).Seconds(), nil
}

// repeated returns a reader of size bytes: block over and over.
func repeated(block []byte, size int64) io.Reader {
	rs := make([]io.Reader, 0, size/int64(len(block))+1)
	for left := size; left > 0; left -= int64(len(block)) {
		rs = append(rs, bytes.NewReader(block[:min(left, int64(len(block)))]))
	}
	return io.MultiReader(rs...)
}

// nginxWorkers returns the pids of the nginx master's children (the worker).
func nginxWorkers(p *proc) []int {
	pid := p.cmd.Process.Pid
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if child, err := strconv.Atoi(f); err == nil {
			out = append(out, child)
		}
	}
	return out
}

// resetPeakRSS resets the process's VmHWM to its current RSS (proc(5), /proc/pid/clear_refs "5").
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting the peak RSS of pid %d: %w", pid, err)
	}
	return nil
}
