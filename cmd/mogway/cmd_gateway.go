package main

import (
	"context"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mogway/mogway/gateway"
)

func cmdGateway(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "gateway", "[-c FILE] [-t] [flags]", `
Run the HTTP gateway that replaces nginx with the MogileFS module: routes map URI prefixes to a
tracker domain (GET/HEAD through get_paths with failover across copies; PUT and DELETE when
enabled) or to an upstream group of HTTP servers (nginx proxy_pass with max_fails/fail_timeout).
With a cache: block it caches answers (memory and disk) and serves purges under /purge.
Reads the gateway: section of the config file; flags win over the file. SIGHUP re-reads the file
and swaps the routes (with their cache settings) without dropping connections, and reopens the
access log; cache and purge settings take effect at the next start.
Under systemd, a socket named "http" is used instead of binding --listen.`)
	var d daemonFlags
	d.register(fs)
	fs.String("listen", "", "HTTP `address` (default \":8080\")")
	trackers := fs.String("trackers", "", "comma-separated tracker `addresses` (host:port)")
	load := func() (gateway.Config, error) {
		cf, err := loadConfig(d.config)
		if err != nil {
			return gateway.Config{}, err
		}
		cfg := cf.Gateway
		setFromFlags(fs, map[string]*string{"listen": &cfg.Listen})
		if isSet(fs, "trackers") {
			cfg.Trackers = nil
			for t := range strings.SplitSeq(*trackers, ",") {
				if t = strings.TrimSpace(t); t != "" {
					cfg.Trackers = append(cfg.Trackers, t)
				}
			}
		}
		if err := cf.validate("gateway", &cfg); err != nil {
			return gateway.Config{}, err
		}
		return cfg, nil
	}
	var cfg gateway.Config
	log, done, err := d.start(e, fs, args, func() (err error) {
		cfg, err = load()
		return err
	})
	if done {
		return err
	}

	// New opens the cache (rebuilding a disk tier's index) and the purge journal before anything
	// listens; Serve closes them when it returns.
	srv, err := gateway.New(cfg, gateway.Deps{}, log)
	if err != nil {
		return err
	}
	socks, err := activated()
	if err != nil {
		srv.Close() //nolint:errcheck // the activation error is the one to report
		return err
	}
	ln, err := socks.listen("http", cfg.ListenAddr())
	if err != nil {
		srv.Close() //nolint:errcheck // the listen error is the one to report
		return err
	}
	waitPprof, err := d.startPprof(ctx, log)
	if err != nil {
		ln.Close()
		srv.Close() //nolint:errcheck // the pprof error is the one to report
		return err
	}
	defer waitPprof()
	waitMetrics, err := serveSide(ctx, log, "gateway metrics", cfg.MetricsListen, "/metrics", srv.ServeMetrics)
	if err != nil {
		ln.Close()
		srv.Close() //nolint:errcheck // the listen error is the one to report
		return err
	}
	defer waitMetrics()
	stop := hangups(ctx, log, func() error {
		cfg, err := load()
		if err != nil {
			return err
		}
		return srv.Reload(cfg)
	})
	defer stop()
	log.Info("gateway listening", "addr", ln.Addr().String(), "routes", len(cfg.Routes),
		"cache", cfg.Cache != nil, "purge", cfg.Purge != nil)
	notify(log, daemon.SdNotifyReady)
	err = srv.Serve(ctx, ln)
	notify(log, daemon.SdNotifyStopping)
	return err
}
