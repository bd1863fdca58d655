package cache_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mogway/mogway/cache"
)

func ExampleCache_Get() {
	c, err := cache.New(cache.Config{}, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	fetch := func(ctx context.Context, prev *cache.Meta, w *cache.Writer) error {
		// A real fill asks upstream; prev carries validators for a conditional request.
		body := "hello, world\n"
		if err := w.Start(cache.Meta{Status: 200, Size: int64(len(body)),
			Header: []cache.HeaderField{{Name: "Content-Type", Value: "text/plain"}}}); err != nil {
			return err
		}
		_, err := io.Copy(w, strings.NewReader(body))
		return err
	}
	for i := 0; i < 2; i++ {
		r, status, err := c.Get(context.Background(), cache.Request{Key: "/greeting?lang=en", Group: "/greeting"}, fetch)
		if err != nil {
			panic(err)
		}
		fmt.Print(status, " ", r.Meta().Status, " ")
		if _, err := io.Copy(os.Stdout, r); err != nil {
			panic(err) // a real server aborts the connection here
		}
		r.Close()
	}
	n, _ := c.Purge("/greeting", false)
	fmt.Println("purged", n)
	// Output:
	// MISS 200 hello, world
	// HIT 200 hello, world
	// purged 1
}
