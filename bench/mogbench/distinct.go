package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The distinct-keys row reads many objects, each asked rarely, as long-tail traffic does: with the
// gateway's path cache off every request is its own tracker lookup, since no two requests in flight
// ask the same key and so none shares a tracker call. wrk goes through the keys with a Lua script.

const (
	distinctGroup = "distinct" // the object group of the row, in a scenario's objects
	distinctCount = 256        // objects in the group
	distinctSize  = 4 << 10    // bytes of each
	distinctName  = "miss path 4 KiB, 256 distinct keys (tracker get_paths every request + storage fetch)"
	// spreadStep is the stride of spreadOrder; a prime, so it is coprime with any count it does not divide.
	spreadStep = 7919
	// uploadGate bounds the uploads of a group that run at once.
	uploadGate = 4
)

// distinctKeys returns the n keys of the group, "distinct-000" and on, the same in every run.
func distinctKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("distinct-%03d", i)
	}
	return keys
}

// spreadOrder returns 0..n-1 in the order i*spreadStep mod n, so that neighbouring requests, which
// are in flight together, ask keys far apart. It is a permutation as long as n is not a multiple of
// spreadStep.
func spreadOrder(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i * spreadStep % n
	}
	return out
}

// rotationScript returns a wrk Lua script whose requests go through paths in turn, over and over.
// With one wrk thread all connections share the script, so each new request takes the next path (wrk
// calls request once before the run to check the script, so the run begins with the second). A
// path must be printable ASCII without quotes or backslashes, which the script quotes as it is.
func rotationScript(paths []string) (string, error) {
	if len(paths) == 0 {
		return "", errors.New("wrk script: no paths")
	}
	var b strings.Builder
	b.WriteString("local paths = {\n")
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("wrk script: path %q does not begin with /", p)
		}
		for i := 0; i < len(p); i++ {
			if p[i] <= ' ' || p[i] > '~' || p[i] == '"' || p[i] == '\\' {
				return "", fmt.Errorf("wrk script: path %q holds %q", p, p[i])
			}
		}
		fmt.Fprintf(&b, "  \"%s\",\n", p)
	}
	b.WriteString("}\nlocal i = 0\n\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n")
	return b.String(), nil
}

// sideURLs returns the URLs a side's wrk requests: base itself, or with paths each of them on base's
// scheme and host.
func sideURLs(base string, paths []string) []string {
	if len(paths) == 0 {
		return []string{base}
	}
	u, err := url.Parse(base)
	if err != nil {
		return []string{base} // warm reports the bad URL
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = u.Scheme + "://" + u.Host + p
	}
	return out
}

// writeScripts writes the rotation script of each side of a that has paths into the work directory
// and returns their files ("" for a side without).
func (c *cluster) writeScripts(a abRun) ([2]string, error) {
	var files [2]string
	for side, paths := range a.paths {
		if len(paths) == 0 {
			continue
		}
		script, err := rotationScript(paths)
		if err != nil {
			return files, fmt.Errorf("%s: %w", a.name, err)
		}
		files[side] = filepath.Join(c.work, fmt.Sprintf("wrk-%s-%s.lua", slug(a.name), [2]string{"mog", "ref"}[side]))
		if err := os.WriteFile(files[side], []byte(script), 0o644); err != nil {
			return files, err
		}
	}
	return files, nil
}

// uploadMany stores size random bytes under each key in the class with two copies: all uploads first,
// uploadGate at a time, then, as the tracker replicates them meanwhile, the wait for each second copy
// and the link of node 1's copy into node 2's docroot (cluster.mirror). The objects are in keys' order.
func (c *cluster) uploadMany(ctx context.Context, keys []string, size int64) ([]object, error) {
	deadline := time.Now().Add(60 * time.Second)
	errs := make([]error, len(keys))
	gate := make(chan struct{}, uploadGate)
	var wg sync.WaitGroup
	for i, key := range keys {
		gate <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-gate }()
			errs[i] = c.put(ctx, key, size, deadline)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	objs := make([]object, len(keys))
	for i, key := range keys {
		obj, err := c.mirror(ctx, key, size, deadline)
		if err != nil {
			return nil, err
		}
		objs[i] = obj
	}
	return objs, nil
}

// distinctRow compares the path-cache-off gateway with nginx proxy_pass over the distinct objects:
// the gateway's wrk asks their keys on its tracker route and nginx's their URIs on both nodes, in
// the same spread order.
func (c *cluster) distinctRow() (row, error) {
	mogPaths, refPaths, err := c.distinctPaths()
	if err != nil {
		return row{}, err
	}
	return c.ab(abRun{name: distinctName, mogURL: localURL(gwNoPathCache, mogPaths[0]),
		refURL: localURL(ngx.Proxy, refPaths[0]), refName: "nginx proxy_pass",
		mog: c.mogSide(c.gateways[gwNoPathCache]), ref: c.refSide(c.nginx), pprof: pprofAddr(gwNoPathCache),
		lookups: [2]bool{true, false}, paths: [2][]string{mogPaths, refPaths}})
}

// distinctPaths returns the request paths of the distinct objects in spread order: their keys on the
// tracker route, and their URIs on the storage nodes.
func (c *cluster) distinctPaths() (keys, uris []string, err error) {
	if len(c.distinct) == 0 {
		return nil, nil, errors.New("no distinct objects stored")
	}
	for _, i := range spreadOrder(len(c.distinct)) {
		keys = append(keys, "/"+domain+"/"+c.distinct[i].key)
		uris = append(uris, c.distinct[i].path)
	}
	return keys, uris, nil
}
