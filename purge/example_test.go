package purge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/mogway/mogway/purge"
)

// cache stands in for the gateway's cache.
type cache struct{ entries map[string]int64 }

func (c *cache) Purge(group string, soft bool) (int, int64) {
	size, ok := c.entries[group]
	if !ok {
		return 0, 0
	}
	delete(c.entries, group)
	return 1, size
}

func (c *cache) PurgePrefix(prefix string, soft bool) (int, int64) { return 0, 0 }
func (c *cache) PurgeAll(soft bool) (int, int64)                   { return 0, 0 }

func ExampleSign() {
	sig := purge.Sign("secret-0123456789abcdef", "PURGE", "/images/a.jpg", time.Unix(1_800_000_000, 0))
	fmt.Println(sig)
	// Output: 1800000000:8d79da286c45d99050fde63642cf6b454f9bf9a5705bc5f5557c7db53ea95cdf
}

func ExampleService_Handle() {
	svc, err := purge.New(purge.Config{Name: "gw1"}, &cache{entries: map[string]int64{"/images/a.jpg": 1234}}, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	// A transport fills a Request from its own request (NewRequest helps) and writes the Response.
	resp := svc.Handle(context.Background(), purge.Request{
		Method: "PURGE", Path: "/images/a.jpg", RemoteIP: netip.MustParseAddr("127.0.0.1"),
	})
	fmt.Println(resp.Status, resp.ContentType)
	fmt.Print(string(resp.Body))
	// Output:
	// 200 application/json
	// {"key":"/images/a.jpg","purged":1,"bytes":1234,"nodes":[{"node":"gw1","status":"ok","purged":1,"bytes":1234}]}
}

func ExampleService_HTTPHandler() {
	svc, err := purge.New(purge.Config{}, &cache{}, nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(svc.Path()+"/", svc.HTTPHandler()) // "/purge/"
	_ = &http.Server{Addr: "127.0.0.1:8080", Handler: mux}
}
