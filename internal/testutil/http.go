package testutil

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// fetchTimeout bounds one Fetch, so that a server that never answers fails the test instead of
// hanging it. It is a generous bound for a slow, shared machine, never a measure of speed.
const fetchTimeout = time.Minute

// Request sends a method request for u with body (nil for none) and the headers in header, and
// returns the response; the caller closes its Body. It fails the test (Fatalf, then returns nil) when
// no response comes.
func Request(t testing.TB, method, u string, body io.Reader, header map[string]string) *http.Response {
	t.Helper()
	return request(t, context.Background(), method, u, body, header)
}

// Fetch sends a method request for u with body (nil for none) and the headers in header, and
// returns the status code and the whole response body. It fails the test (Fatalf, then returns
// zero values) when no response comes within a minute or its body cannot be read.
func Fetch(t testing.TB, method, u string, body []byte, header map[string]string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	resp := request(t, ctx, method, u, rd, header)
	if resp == nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
		return 0, nil
	}
	return resp.StatusCode, b
}

// ServeBytes answers r with files[r.URL.Path], or with 404 Not Found when files holds no such path:
// the read side of a stand-in origin or storage node. It only reads files; a handler that also
// writes to files holds its lock around the call.
func ServeBytes(w http.ResponseWriter, r *http.Request, files map[string][]byte) {
	b, ok := files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func request(t testing.TB, ctx context.Context, method, u string, body io.Reader, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
		return nil
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
		return nil
	}
	return resp
}
