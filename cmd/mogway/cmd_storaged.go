package main

import (
	"context"
	"net"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mogway/mogway/storaged"
)

func cmdStoraged(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "storaged", "[-c FILE] [-t] [flags]", `
Run a mogstored-compatible storage node: HTTP PUT/GET/HEAD/DELETE of <docroot>/dev<N>/... on
--listen (default :7500), the size/MD5 side channel on --mgmt-listen (default :7501), and a usage
file per device. Reads the storaged: section of the config file; flags win over the file.
Under systemd, sockets named "http" and "mgmt" are used instead of binding.`)
	var d daemonFlags
	d.register(fs)
	fs.String("listen", "", "HTTP `address` (default \":7500\")")
	fs.String("mgmt-listen", "", "side-channel `address` (default \":7501\"; \"off\" disables it)")
	fs.String("docroot", "", "`directory` holding the dev<N> directories (default /var/mogdata)")
	var cfg storaged.Config
	log, done, err := d.start(e, fs, args, d.loadSection(fs, "storaged", &cfg,
		func(cf *configFile) { cfg = cf.Storaged },
		map[string]*string{"listen": &cfg.Listen, "mgmt-listen": &cfg.MgmtListen, "docroot": &cfg.Docroot}))
	if done {
		return err
	}

	srv, err := storaged.New(cfg, log)
	if err != nil {
		return err
	}
	socks, err := activated()
	if err != nil {
		srv.Close()
		return err
	}
	httpLn, err := socks.listen("http", cfg.ListenAddr())
	if err != nil {
		srv.Close()
		return err
	}
	var mgmtLn net.Listener
	if cfg.MgmtEnabled() {
		if mgmtLn, err = socks.listen("mgmt", cfg.MgmtAddr()); err != nil {
			httpLn.Close()
			srv.Close()
			return err
		}
	}
	waitPprof, err := d.startPprof(ctx, log)
	if err != nil {
		httpLn.Close()
		if mgmtLn != nil {
			mgmtLn.Close()
		}
		srv.Close()
		return err
	}
	defer waitPprof()
	notify(log, daemon.SdNotifyReady)
	err = srv.Serve(ctx, httpLn, mgmtLn)
	notify(log, daemon.SdNotifyStopping)
	return err
}
