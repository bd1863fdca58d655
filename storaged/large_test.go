package storaged

import (
	"bufio"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// genReader yields n pseudo-random bytes without holding them: the body is made on the fly.
type genReader struct {
	n     int64
	state uint64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	for i := 0; i < len(p); i += 8 {
		g.state ^= g.state << 13
		g.state ^= g.state >> 7
		g.state ^= g.state << 17
		if len(p)-i >= 8 {
			binary.LittleEndian.PutUint64(p[i:], g.state)
		} else {
			for j := i; j < len(p); j++ {
				p[j] = byte(g.state >> (8 * (j - i)))
			}
		}
	}
	g.n -= int64(len(p))
	return len(p), nil
}

// TestStreamedLargePut stores 256 MiB generated on the fly and reads it back, and checks that the
// node never held the body: the process allocates far less than the body size.
func TestStreamedLargePut(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB round trip")
	}
	n := startNode(t, nil)
	const size = 256 << 20
	const uri = "/dev1/0/000/000/0000000256.fid"

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	c, _ := dialNode(t, n)
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	sum := md5.New()
	fmt.Fprintf(c, "PUT %s HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n", uri, size)
	buf := make([]byte, 64<<10)
	if _, err := io.CopyBuffer(c, io.TeeReader(&genReader{n: size, state: 88172645463325252}, sum), buf); err != nil {
		t.Fatalf("sending body: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading PUT response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %d bytes = %d, want 200", size, resp.StatusCode)
	}

	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("storing %d bytes allocated %d bytes", size, grew)
	if grew > 32<<20 {
		t.Errorf("storing %d bytes allocated %d bytes; want < 32 MiB (the body must stream)", size, grew)
	}
	want := hex.EncodeToString(sum.Sum(nil))

	// Read it back on the same keep-alive connection (sendfile path).
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", uri)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading GET response: %v", err)
	}
	got := md5.New()
	m, err := io.CopyBuffer(got, resp.Body, buf)
	if err != nil || m != size || resp.ContentLength != size {
		t.Fatalf("GET = %d bytes (Content-Length %d), %v; want %d", m, resp.ContentLength, err, size)
	}
	var afterGet runtime.MemStats
	runtime.ReadMemStats(&afterGet)
	if grew := afterGet.TotalAlloc - after.TotalAlloc; grew > 32<<20 {
		t.Errorf("reading %d bytes back allocated %d bytes; want < 32 MiB (the body must stream)", size, grew)
	}
	if h := hex.EncodeToString(got.Sum(nil)); h != want {
		t.Errorf("GET body MD5 = %s, want %s", h, want)
	}
	if r := mgmtSession(t, n.mgmt, "MD5 "+uri+"\n", 1)[0]; r != uri+" MD5="+want+"\r\n" {
		t.Errorf("side channel MD5 = %q, want %q", r, uri+" MD5="+want+"\r\n")
	}
}
