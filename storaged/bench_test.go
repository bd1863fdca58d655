package storaged

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func benchClient(n *testNode) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: n.addr, MaxConns: 16, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
}

func BenchmarkGet4KiB(b *testing.B) { benchGet(b, 4<<10) }

// BenchmarkGetSize measures GET on either side of smallFileSize (read into the reply below it,
// sendfile above).
func BenchmarkGetSize(b *testing.B) {
	for _, size := range []int{16 << 10, 32 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) { benchGet(b, size) })
	}
}

func benchGet(b *testing.B, size int) {
	n := startNode(b, nil)
	body := bytes.Repeat([]byte{'x'}, size)
	const uri = "/dev1/0/000/000/0000000004.fid"
	n.put(b, uri, body, nil)
	hc := benchClient(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + n.addr + uri)
		for pb.Next() {
			if err := hc.Do(req, resp); err != nil || resp.StatusCode() != http.StatusOK || len(resp.Body()) != len(body) {
				b.Errorf("GET = %d, %d bytes, %v", resp.StatusCode(), len(resp.Body()), err)
				return
			}
		}
	})
}

func BenchmarkPut64KiB(b *testing.B) {
	n := startNode(b, nil)
	body := bytes.Repeat([]byte{'y'}, 64<<10)
	hc := benchClient(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(http.MethodPut)
	req.SetRequestURI("http://" + n.addr + "/dev1/0/000/000/0000000064.fid")
	req.SetBody(body)
	b.ResetTimer()
	for range b.N {
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != http.StatusOK {
			b.Fatalf("PUT = %d, %v", resp.StatusCode(), err)
		}
	}
}
