package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

const (
	serverCPUs  = "0"
	loadCPUs    = "1"
	trackerAddr = "127.0.0.1:17001"
	nodeA       = "127.0.0.2:17500"
	nodeB       = "127.0.0.3:17500"
	domain      = "bench"
)

// gateway ports: one process per configuration so each scenario hits a warm, dedicated instance.
const (
	gwCache       = 18081 // memory cache on, path cache on
	gwNoCache     = 18082 // response cache off, path cache on
	gwNoPathCache = 18083 // response cache off, path cache off
	gwUpload      = 18084 // PUT allowed on the tracker route, uploads into a one-copy class
)

var ngx = nginxPorts{Static: 18091, Proxy: 18092, Cache: 18093, Upload: 18094}

// object is a file stored in the cluster for the benchmark.
type object struct {
	key  string
	size int64
	path string // the URI of its copy on node A's dev1, also present on node B under the same URI
}

type cluster struct {
	o        options
	work     string
	tracker  *proc
	nodes    [2]*proc
	gateways map[int]*proc
	nginx    *proc
	nginx2   *proc // two worker processes on two cores, started by the first two-core scenario
	pool     *client.Pool
	objects  map[string]object
	distinct []object // the distinctGroup's objects, by key number; stored by the first scenario naming the group
}

func (c *cluster) stop() {
	for _, g := range c.gateways {
		g.stop()
	}
	c.nginx.stop()
	c.nginx2.stop()
	for _, n := range c.nodes {
		n.stop()
	}
	c.tracker.stop()
	if c.pool != nil {
		c.pool.Close()
	}
}

func (c *cluster) describe() string {
	var b strings.Builder
	b.WriteString("Set-up: `mogway tracker` on SQLite, two `mogway storaged` nodes (127.0.0.2, 127.0.0.3), objects in a\n")
	b.WriteString("class with mindevcount=2. The reference is Debian's nginx (one worker): (a) static files from the node's\n")
	b.WriteString("docroot, (b) `proxy_pass` to an upstream of both nodes with `proxy_next_upstream`, (c) the same with\n")
	b.WriteString("`proxy_cache`, (d) `proxy_pass` of PUTs to one node with `proxy_request_buffering off`, (e) in the rows\n")
	b.WriteString("\"against nginx asking the tracker\", nginx with its Lua module sending `get_paths` to the same tracker for\n")
	b.WriteString("every request, then `proxy_pass` to the first path's node, as nginx_mogilefs_module does (not packaged by\n")
	b.WriteString("Debian). The other miss-path rows and the upload row compare mogway's tracker round trips + storage\n")
	b.WriteString("transfer against nginx's plain proxy (no tracker): that reference is a ceiling, not a peer. Uploads go\n")
	b.WriteString("into a class with mindevcount=1, so no replication runs between rounds.\n")
	return b.String()
}

func (c *cluster) startNode(i int) error {
	addrs := [2]string{nodeA, nodeB}
	host, _, _ := strings.Cut(addrs[i], ":")
	docroot := filepath.Join(c.work, fmt.Sprintf("node%d", i+1))
	p, err := start(c.work, fmt.Sprintf("storaged%d", i+1), serverCPUs, nil, c.o.bin, "storaged",
		"--listen", addrs[i], "--mgmt-listen", host+":17501", "--docroot", docroot, "--log-level", "warn", "--pprof", pprofAddr(17500+i*1000))
	if err != nil {
		return err
	}
	c.nodes[i] = p
	return waitPort(addrs[i], 10*time.Second)
}

func startCluster(ctx context.Context, o options, work string, logger *slog.Logger) (_ *cluster, err error) {
	c := &cluster{o: o, work: work, gateways: map[int]*proc{}, objects: map[string]object{}}
	defer func() {
		if err != nil {
			c.stop() // whatever was started so far
		}
	}()
	for i := range 2 {
		if err := os.MkdirAll(filepath.Join(work, fmt.Sprintf("node%d", i+1), fmt.Sprintf("dev%d", i+1)), 0o755); err != nil {
			return nil, err
		}
	}
	// Node 2 also holds a dev1 directory so that both nodes answer the same URIs for the
	// upstream-group (FastDFS-style) scenarios, as nginx's upstream needs.
	if err := os.MkdirAll(filepath.Join(work, "node2", "dev1"), 0o755); err != nil {
		return nil, err
	}
	c.tracker, err = start(work, "tracker", serverCPUs, nil, o.bin, "tracker", "--listen", trackerAddr,
		"--http-listen", trackerHTTP, "--db", "sqlite:"+filepath.Join(work, "tracker.db"), "--log-level", "warn", "--pprof", pprofAddr(17001))
	if err != nil {
		return nil, err
	}
	if err := waitPort(trackerAddr, 20*time.Second); err != nil {
		return nil, err
	}
	for i := range 2 {
		if err := c.startNode(i); err != nil {
			return nil, err
		}
	}
	c.pool, err = client.NewPool(client.Config{Trackers: []string{trackerAddr}}, logger)
	if err != nil {
		return nil, err
	}
	if err := c.register(ctx); err != nil {
		return nil, err
	}
	for port, yaml := range map[int]string{
		gwCache:       gatewayYAML(gwCache, true, true),
		gwNoCache:     gatewayYAML(gwNoCache, false, true),
		gwNoPathCache: gatewayYAML(gwNoPathCache, false, false),
		gwUpload:      gatewayYAML(gwUpload, false, true),
	} {
		if err := c.startGateway(port, yaml, serverCPUs, nil); err != nil {
			return nil, err
		}
	}
	conf, err := writeNginxConf(work, filepath.Join(work, "node1"), []string{nodeA, nodeB}, ngx, 1)
	if err != nil {
		return nil, err
	}
	c.nginx, err = start(work, "nginx", serverCPUs, nil, "nginx", "-c", conf, "-p", work)
	if err != nil {
		return nil, err
	}
	for _, p := range []int{ngx.Static, ngx.Proxy, ngx.Cache, ngx.Upload} {
		if err := waitPort(fmt.Sprintf("127.0.0.1:%d", p), 10*time.Second); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startGateway writes yaml to work/gateway-PORT.yaml and starts `mogway gateway` on it pinned to cpus,
// kept in c.gateways (so that cluster.stop stops it), then waits until port listens.
func (c *cluster) startGateway(port int, yaml, cpus string, env []string) error {
	cfg := filepath.Join(c.work, fmt.Sprintf("gateway-%d.yaml", port))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return err
	}
	p, err := start(c.work, fmt.Sprintf("gateway-%d", port), cpus, env, c.o.bin, "gateway", "-c", cfg,
		"--log-level", "warn", "--pprof", pprofAddr(port))
	if err != nil {
		return err
	}
	c.gateways[port] = p
	return waitPort(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
}

// objectSizes are the test objects by key; the scenarios name the ones they read.
func (o options) objectSizes() map[string]int64 {
	return map[string]int64{"4k": 4 << 10, "64k": 64 << 10, "1m": 1 << 20, "big": o.bigSize}
}

// store uploads the named test objects (each once) into the class with two copies; distinctGroup
// names a group of many objects (cluster.distinct).
func (c *cluster) store(ctx context.Context, keys []string) error {
	sizes := c.o.objectSizes()
	for _, key := range keys {
		if key == distinctGroup {
			if c.distinct == nil {
				t0 := time.Now()
				objs, err := c.uploadMany(ctx, distinctKeys(distinctCount), distinctSize)
				if err != nil {
					return err
				}
				c.distinct = objs
				fmt.Fprintf(os.Stderr, "stored %d objects of %d bytes in %v\n", len(objs), distinctSize, time.Since(t0).Round(10*time.Millisecond))
			}
			continue
		}
		if _, ok := c.objects[key]; ok {
			continue
		}
		obj, err := c.upload(ctx, key, sizes[key])
		if err != nil {
			return err
		}
		c.objects[key] = obj
	}
	return nil
}

func gatewayYAML(port int, cache, pathCache bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gateway:\n  listen: 127.0.0.1:%d\n  trackers: [%s]\n  access_log: \"off\"\n", port, trackerAddr)
	if !pathCache {
		b.WriteString("  path_cache: {size: -1}\n")
	}
	if cache {
		b.WriteString("  cache:\n    memory: 1GiB\n    memory_max_object: 2MiB\n")
	}
	fmt.Fprintf(&b, "  routes:\n    - prefix: /%s/\n      domain: %s\n", domain, domain)
	if port == gwUpload {
		b.WriteString("      class: one\n      methods: [GET, PUT]\n      allow: [127.0.0.0/8]\n")
	}
	fmt.Fprintf(&b, "    - prefix: /dev1/\n      servers: [{addr: %q}, {addr: %q}]\n      next_upstream: [error, timeout, http_502, http_503, http_504]\n", nodeA, nodeB)
	return b.String()
}

func (c *cluster) do(ctx context.Context, cmd string, kv ...string) error {
	var a mogproto.Args
	for i := 0; i+1 < len(kv); i += 2 {
		a.Add(kv[i], kv[i+1])
	}
	_, err := c.pool.Do(ctx, cmd, a)
	return err
}

func (c *cluster) register(ctx context.Context) error {
	steps := [][]string{
		{"create_host", "host", "node1", "ip", "127.0.0.2", "port", "17500", "status", "alive"},
		{"create_host", "host", "node2", "ip", "127.0.0.3", "port", "17500", "status", "alive"},
		{"create_device", "hostname", "node1", "devid", "1", "state", "alive"},
		{"create_device", "hostname", "node2", "devid", "2", "state", "alive"},
		{"create_domain", "domain", domain},
		{"create_class", "domain", domain, "class", "two", "mindevcount", "2"},
		// Uploads in the upload scenario: one copy, so no replication runs during the next round.
		{"create_class", "domain", domain, "class", "one", "mindevcount", "1"},
	}
	for _, s := range steps {
		if err := c.do(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("%s: %w", s[0], err)
		}
	}
	return nil
}

// upload stores size random bytes under key, waits for the second replica, and mirrors node 1's copy
// onto node 2 under the same URI for the upstream-group scenarios.
func (c *cluster) upload(ctx context.Context, key string, size int64) (object, error) {
	deadline := time.Now().Add(60 * time.Second)
	if err := c.put(ctx, key, size, deadline); err != nil {
		return object{}, err
	}
	return c.mirror(ctx, key, size, deadline)
}

// put stores size random bytes under key in the class with two copies, trying again until deadline
// while the tracker has no writable device yet.
func (c *cluster) put(ctx context.Context, key string, size int64, deadline time.Time) error {
	var err error
	for time.Now().Before(deadline) {
		_, err = c.pool.Upload(ctx, domain, key, "two", io.LimitReader(rand.Reader, size), size)
		if err == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond) // devices become writable after the first monitor rounds
	}
	return fmt.Errorf("upload %s: %w", key, err)
}

// mirror waits until deadline for key's second replica and hard-links node 1's copy (on dev1) into
// node 2's docroot under the same URI, so that both nodes answer it, as nginx's upstream needs.
func (c *cluster) mirror(ctx context.Context, key string, size int64, deadline time.Time) (object, error) {
	for time.Now().Before(deadline) {
		paths, err := c.pool.GetPaths(ctx, domain, key, client.GetPathsOptions{})
		if err == nil && len(paths) >= 2 {
			for _, p := range paths {
				u, err := url.Parse(p)
				if err != nil || !strings.HasPrefix(u.Path, "/dev1/") {
					continue
				}
				src := filepath.Join(c.work, "node1", filepath.FromSlash(u.Path))
				dst := filepath.Join(c.work, "node2", filepath.FromSlash(u.Path))
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return object{}, err
				}
				_ = os.Remove(dst)
				if err := os.Link(src, dst); err != nil {
					return object{}, err
				}
				return object{key: key, size: size, path: u.Path}, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return object{}, fmt.Errorf("%s: no second replica on dev1/dev2 within 60s", key)
}

// hold starts the lookup rows' nginx, prints the cluster's processes and the URLs of its stored
// objects to w, then waits for SIGINT or SIGTERM; the caller stops the cluster.
func (c *cluster) hold(w io.Writer) error {
	if _, err := c.startLookupNginx(); err != nil {
		return err
	}
	c.addresses(w)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	fmt.Fprintln(w, "holding; Ctrl-C stops the cluster")
	<-sig
	return nil
}

// addresses writes the cluster's processes (pid, CPU list) and the URLs of its stored objects.
func (c *cluster) addresses(w io.Writer) {
	ps := []*proc{c.tracker, c.nodes[0], c.nodes[1], c.nginx}
	for _, port := range slices.Sorted(maps.Keys(c.gateways)) {
		ps = append(ps, c.gateways[port])
	}
	for _, p := range ps {
		if p != nil && p.cmd.Process != nil {
			fmt.Fprintf(w, "%-14s pid %d, pinned to CPU %s\n", p.name, p.cmd.Process.Pid, serverCPUs)
		}
	}
	fmt.Fprintf(w, "tracker        %s (metrics on http://%s/metrics)\n", trackerAddr, trackerHTTP)
	for _, key := range slices.Sorted(maps.Keys(c.objects)) {
		o := c.objects[key]
		fmt.Fprintf(w, "object %-6s  %d bytes\n", key, o.size)
		fmt.Fprintf(w, "  storage node    http://%s%s, nginx static %s\n", nodeA, o.path, localURL(ngx.Static, o.path))
		fmt.Fprintf(w, "  tracker route   %s (cache), port %d (path cache only), port %d (no path cache)\n",
			localURL(gwCache, "/"+domain+"/"+o.key), gwNoCache, gwNoPathCache)
		fmt.Fprintf(w, "  upstream route  %s, nginx proxy_pass %s, nginx proxy_cache port %d\n",
			localURL(gwNoCache, o.path), localURL(ngx.Proxy, o.path), ngx.Cache)
		fmt.Fprintf(w, "  nginx asking the tracker %s\n", localURL(ngxLookup, "/"+domain+"/"+o.key))
	}
	if len(c.distinct) > 0 {
		fmt.Fprintf(w, "%d distinct objects, the first %s\n", len(c.distinct), localURL(gwNoPathCache, "/"+domain+"/"+c.distinct[0].key))
	}
}
