package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/gateway"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/purge"
	"github.com/mogway/mogway/storaged"
	"github.com/mogway/mogway/tracker"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

const devAbout = `
Starts a whole local cluster in one process: a tracker on SQLite, two storage nodes on 127.0.0.2 and
127.0.0.3, and a gateway. It registers the nodes, creates the demo domain "demo" with a class "photos"
(two copies), uploads a sample image, and prints the URLs to try. Data lives under --data and is reused
on the next run. Ctrl-C stops everything gracefully.

Example:
  mogway dev --data var/dev
`

// devCluster is what `mogway dev` runs.
type devCluster struct {
	data        string
	gatewayAddr string
	trackerAddr string
	trackerHTTP string // status page and /metrics
	metricsAddr string // the gateway's metrics_listen
	nodeAddrs   [2]string
	log         *slog.Logger
}

func cmdDev(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "dev", "[flags]", devAbout)
	d := devCluster{}
	fs.StringVar(&d.data, "data", "var/dev", "data `directory` (tracker database, storage docroots, gateway cache)")
	fs.StringVar(&d.gatewayAddr, "listen", "127.0.0.1:8080", "gateway HTTP `address`")
	fs.StringVar(&d.trackerAddr, "tracker-listen", "127.0.0.1:7001", "tracker `address`")
	fs.StringVar(&d.trackerHTTP, "tracker-http-listen", "127.0.0.1:7080", "tracker status page and /metrics `address`")
	fs.StringVar(&d.metricsAddr, "metrics-listen", "127.0.0.1:9180", "gateway /metrics `address`")
	node1 := fs.String("node1", "127.0.0.2:7500", "first storage node HTTP `address` (side channel on port 7501 of its host)")
	node2 := fs.String("node2", "127.0.0.3:7500", "second storage node HTTP `address`")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	d.nodeAddrs = [2]string{*node1, *node2}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: write debug, info, warn or error", *logLevel)
	}
	d.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	return d.run(ctx, e)
}

func (d *devCluster) run(ctx context.Context, e *env) error {
	data, err := filepath.Abs(d.data)
	if err != nil {
		return err
	}
	d.data = data
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	defer wg.Wait()

	// Storage nodes.
	for i, addr := range d.nodeAddrs {
		root := filepath.Join(d.data, fmt.Sprintf("node%d", i+1))
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("dev%d", i+1)), 0o755); err != nil {
			return err
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("--node%d %q: %w", i+1, addr, err)
		}
		cfg := storaged.Config{Listen: addr, MgmtListen: net.JoinHostPort(host, "7501"), Docroot: root}
		srv, err := storaged.New(cfg, d.log.With("role", "storaged", "node", i+1))
		if err != nil {
			return err
		}
		httpLn, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("storage node %d: %w", i+1, err)
		}
		mgmtLn, err := net.Listen("tcp", cfg.MgmtListen)
		if err != nil {
			httpLn.Close()
			return fmt.Errorf("storage node %d side channel: %w", i+1, err)
		}
		serve(fmt.Sprintf("storage node %d", i+1), func(ctx context.Context) error { return srv.Serve(ctx, httpLn, mgmtLn) })
	}

	// Tracker on SQLite.
	st, err := sqlite.Open(ctx, filepath.Join(d.data, "tracker.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	tcfg := tracker.Config{Listen: d.trackerAddr}
	tr, err := tracker.New(tcfg, st, d.log.With("role", "tracker"))
	if err != nil {
		return err
	}
	trLn, err := net.Listen("tcp", d.trackerAddr)
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	serve("tracker", func(ctx context.Context) error { return tr.Serve(ctx, trLn) })
	trHTTP, err := net.Listen("tcp", d.trackerHTTP)
	if err != nil {
		return fmt.Errorf("tracker status page: %w", err)
	}
	serve("tracker-http", func(ctx context.Context) error { return tr.ServeHTTPListener(ctx, trHTTP) })

	pool, err := client.NewPool(client.Config{Trackers: []string{d.trackerAddr}}, d.log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := d.register(ctx, pool); err != nil {
		return err
	}
	sample, err := samplePNG()
	if err != nil {
		return err
	}
	if err := d.uploadSample(ctx, pool, sample); err != nil {
		return err
	}

	// Gateway.
	gcfg := d.gatewayConfig()
	gw, err := gateway.New(gcfg, gateway.Deps{AccessLog: e.stdout}, d.log.With("role", "gateway"))
	if err != nil {
		return err
	}
	gwLn, err := net.Listen("tcp", d.gatewayAddr)
	if err != nil {
		gw.Close() //nolint:errcheck // the listen error is the one to report
		return fmt.Errorf("gateway: %w", err)
	}
	serve("gateway", func(ctx context.Context) error { return gw.Serve(ctx, gwLn) })
	mLn, err := net.Listen("tcp", d.metricsAddr)
	if err != nil {
		return fmt.Errorf("gateway metrics: %w", err)
	}
	serve("gateway-metrics", func(ctx context.Context) error { return gw.ServeMetrics(ctx, mLn) })

	d.banner(e)
	select {
	case <-ctx.Done():
	case err := <-errc:
		cancel()
		wg.Wait()
		return err
	}
	fmt.Fprintln(e.stderr, "\nstopping...")
	return nil
}

// register creates hosts, devices, the demo domain and class; on a reused data directory they exist
// already, which is fine.
func (d *devCluster) register(ctx context.Context, pool *client.Pool) error {
	ignore := func(err error, codes ...string) error {
		for _, c := range codes {
			if mogproto.IsCode(err, c) {
				return nil
			}
		}
		return err
	}
	for i, addr := range d.nodeAddrs {
		host, port, _ := net.SplitHostPort(addr)
		name := fmt.Sprintf("node%d", i+1)
		var p int
		fmt.Sscan(port, &p)
		_, err := pool.CreateHost(ctx, client.HostSpec{Name: name, IP: host, Port: p, Status: "alive"})
		if err = ignore(err, "host_exists", "ip_exists"); err != nil {
			return fmt.Errorf("create host %s: %w", name, err)
		}
		if err := ignore(pool.CreateDevice(ctx, name, int64(i+1), "alive"), "existing_devid"); err != nil {
			return fmt.Errorf("create device %d: %w", i+1, err)
		}
	}
	if err := ignore(pool.CreateDomain(ctx, "demo"), "domain_exists"); err != nil {
		return fmt.Errorf("create domain demo: %w", err)
	}
	err := pool.CreateClass(ctx, client.ClassSpec{Domain: "demo", Class: "photos", MinDevCount: 2})
	if err = ignore(err, "class_exists"); err != nil {
		return fmt.Errorf("create class photos: %w", err)
	}
	return nil
}

// uploadSample stores the sample image, retrying while the monitor has not yet found the devices
// writable (a few seconds on a fresh start).
func (d *devCluster) uploadSample(ctx context.Context, pool *client.Pool, img []byte) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := pool.Upload(ctx, "demo", "sample.png", "photos", bytes.NewReader(img), int64(len(img)))
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("upload sample.png: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *devCluster) gatewayConfig() gateway.Config {
	return gateway.Config{
		Listen:        d.gatewayAddr,
		Trackers:      []string{d.trackerAddr},
		MetricsListen: d.metricsAddr,
		// The demo route is cached in memory and on disk under the data directory; /purge takes
		// purges from loopback (the purge default).
		Cache: &cache.Config{
			Memory: 64 * conf.MiB,
			Disk:   cache.DiskConfig{Path: filepath.Join(d.data, "gateway-cache"), MaxSize: conf.GiB},
			Valid:  map[string]conf.Duration{"200": conf.Duration(time.Hour), "404": conf.Duration(10 * time.Second)},
		},
		Purge: &purge.Config{},
		Routes: []gateway.Route{{
			Prefix:  "/demo/",
			Domain:  "demo",
			Class:   "photos",
			Methods: []string{"GET", "HEAD", "PUT", "DELETE"},
			Allow:   []string{"127.0.0.0/8", "::1/128"},
			// Image variants by query (?w=160): each one cached, purged with its original.
			Image: &gateway.RouteImage{},
		}},
	}
}

func (d *devCluster) banner(e *env) {
	gw := "http://" + d.gatewayAddr
	lines := []string{
		"",
		"mogway dev cluster is up (data in " + d.data + ")",
		"",
		"  gateway   " + gw + "        tracker " + d.trackerAddr + "   storage " + d.nodeAddrs[0] + ", " + d.nodeAddrs[1],
		"",
		"Try:",
		"  open " + gw + "/demo/sample.png",
		"  curl -I " + gw + "/demo/sample.png               # X-Cache-Status: MISS, then HIT",
		"  curl -X PURGE " + gw + "/purge/demo/sample.png   # drop the cached copy",
		"  curl -o sample.png '" + gw + "/demo/sample.png?download=1'",
		"  open '" + gw + "/demo/sample.png?w=160'         # a thumbnail made on the fly, cached, purged with the original",
		"  bin/mogway upload --trackers=" + d.trackerAddr + " --domain=demo --class=photos --key=hello.txt --file=README.md",
		"  curl " + gw + "/demo/hello.txt",
		"  curl -T README.md " + gw + "/demo/readme.txt      # PUT through the gateway (allowed from loopback)",
		"  bin/mogway info --trackers=" + d.trackerAddr + " --domain=demo --key=sample.png",
		"  bin/mogway adm --trackers=" + d.trackerAddr + " check",
		"  curl " + gw + "/status                     # JSON; open it in a browser for the page",
		"  open http://" + d.trackerHTTP + "/                # cluster status page",
		"  curl http://" + d.trackerHTTP + "/metrics         # tracker metrics (Prometheus)",
		"  curl " + gw + "/metrics                    # gateway metrics (also on http://" + d.metricsAddr + "/metrics)",
		"  curl http://" + d.nodeAddrs[0] + "/metrics         # storage node metrics",
		"",
		"Ctrl-C stops the cluster; the data stays for the next run.",
		"",
	}
	fmt.Fprintln(e.stderr, strings.Join(lines, "\n"))
}

// samplePNG draws the demo image: a colour gradient with a grid, made here so no binary file ships.
func samplePNG() ([]byte, error) {
	const w, h = 480, 270
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{R: uint8(40 + 200*x/w), G: uint8(60 + 150*y/h), B: uint8(200 - 150*x/w), A: 255}
			if x%40 == 0 || y%40 == 0 {
				c = color.RGBA{R: 255, G: 255, B: 255, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
