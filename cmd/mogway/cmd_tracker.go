package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mogway/mogway/tracker"
	"github.com/mogway/mogway/tracker/store/dsn"
	"github.com/mogway/mogway/tracker/store/replica/stream"
)

func cmdTracker(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return cmdTrackerBackup(ctx, e, args[1:])
		case "restore":
			return cmdTrackerRestore(ctx, e, args[1:])
		}
	}
	fs := newFlagSet(e, "tracker", "[-c FILE] [-t] [flags] | backup ... | restore ...", `
Run a MogileFS-protocol tracker: the client port (--listen, default :7001) answering every tracker
command that MogileFS clients, mogadm, the MogileFS-Utils tools and the nginx module send, plus the
background workers (device monitor, replication, deletion, dead-device reaper, stale-upload reaper,
fsck). Metadata lives in SQLite or in MySQL/MariaDB with the MogileFS schema (--db). Reads the
tracker: section of the config file; flags win over the file. Under systemd, a socket named
"tracker" is used instead of binding.

"mogway tracker backup --db STORE --out FILE" writes a consistent snapshot of the store while
trackers serve; "mogway tracker restore --from FILE --db STORE [--force]" loads one back. Run
either with --help for details.`)
	var d daemonFlags
	d.register(fs)
	fs.String("listen", "", "client port `address` (default \":7001\")")
	fs.String("http-listen", "", "status page and /metrics `address`, or off (default \"127.0.0.1:7080\")")
	fs.String("db", "", "metadata `store`: sqlite:PATH or mysql://user:pass@tcp(host:3306)/mogilefs (default sqlite:/var/lib/mogway/tracker.db)")
	var cfg tracker.Config
	log, done, err := d.start(e, fs, args, d.loadSection(fs, "tracker", &cfg,
		func(cf *configFile) { cfg = cf.Tracker },
		map[string]*string{"listen": &cfg.Listen, "http-listen": &cfg.HTTPListen, "db": &cfg.DB}))
	if done {
		return err
	}

	if err := checkSQLiteDir(cfg.DBAddr()); err != nil {
		return err
	}
	spec, _ := dsn.Parse(cfg.DBAddr()) // validated above
	st, err := dsn.Open(ctx, cfg.DBAddr(), log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("open %s: %w", spec, err)
	}
	defer st.Close()
	srv, err := tracker.New(cfg, st, log)
	if err != nil {
		return err
	}
	if cfg.Replicate.Enabled() {
		// Started after the store (which creates the file and its schema) and closed before it
		// (deferred later), once Serve has stopped every write: Close ships the last changes.
		rep, err := stream.Start(ctx, spec.Path, cfg.Replicate, log.With("component", "replicate"))
		if err != nil {
			return err
		}
		defer func() {
			if err := rep.Close(context.WithoutCancel(ctx)); err != nil {
				log.Error("replication stopped with an error", "err", err)
			}
		}()
		srv.AddStats(func() []string { return replicaStats(rep.Status(), time.Now()) })
		log.Info("replicating the database", "to", cfg.Replicate.To)
	}
	socks, err := activated()
	if err != nil {
		return err
	}
	ln, err := socks.listen("tracker", cfg.ListenAddr())
	if err != nil {
		return err
	}
	log.Info("tracker starting", "listen", ln.Addr().String(), "db", spec.String())
	waitPprof, err := d.startPprof(ctx, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer waitPprof()
	waitHTTP, err := serveSide(ctx, log, "tracker status page and metrics", cfg.HTTPListenAddr(), "/", srv.ServeHTTPListener)
	if err != nil {
		ln.Close()
		return err
	}
	defer waitHTTP()
	notify(log, daemon.SdNotifyReady)
	err = srv.Serve(ctx, ln)
	notify(log, daemon.SdNotifyStopping)
	return err
}

// replicaStats are the `!stats` lines of the replicator: the last transaction read from the WAL,
// the last one on the replica, the unix time of the last successful sync and how long the replica
// has been behind (0 when up to date).
func replicaStats(st stream.Status, now time.Time) []string {
	last := int64(0)
	if !st.LastSync.IsZero() {
		last = st.LastSync.Unix()
	}
	return []string{
		"replicate_to " + st.To,
		"replicate_local_txid " + strconv.FormatUint(st.LocalTXID, 10),
		"replicate_replica_txid " + strconv.FormatUint(st.ReplicaTXID, 10),
		"replicate_last_sync " + strconv.FormatInt(last, 10),
		"replicate_lag_seconds " + strconv.FormatFloat(st.Lag(now).Seconds(), 'f', 3, 64),
	}
}

// checkSQLiteDir makes sure the directory of a SQLite database can be written before anything
// binds, with an error that says what to do: the default /var/lib/mogway needs root or a user that
// owns it.
func checkSQLiteDir(db string) error {
	spec, err := dsn.Parse(db)
	if err != nil || spec.Driver != dsn.SQLite {
		return err
	}
	dir := filepath.Dir(spec.Path)
	hint := "run as a user that may write there (the systemd unit's StateDirectory=mogway does this), or pass --db sqlite:/some/writable/tracker.db"
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create the SQLite database directory %s: %w; %s", dir, unwrapPath(err), hint)
	}
	f, err := os.CreateTemp(dir, ".mogway-write-test-*")
	if err != nil {
		return fmt.Errorf("cannot write in the SQLite database directory %s: %w; %s", dir, unwrapPath(err), hint)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// serveSide binds addr unless it is "" (off) and runs serve on it until ctx ends: the side
// listeners of the daemons (the tracker's status page, the gateway's metrics). It logs url; the
// returned function waits for serve to return.
func serveSide(ctx context.Context, log *slog.Logger, what, addr, path string, serve func(context.Context, net.Listener) error) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	log.Info(what, "url", "http://"+ln.Addr().String()+path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(ctx, ln); err != nil {
			log.Error(what+" stopped", "err", err)
		}
	}()
	return func() { <-done }, nil
}
