package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/mogway/mogway/internal/conf"
)

// newFlagSet returns a flag set whose --help prints synopsis, a description and the flags.
func newFlagSet(e *env, name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("mogway "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mogway %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, mapping a bad flag to errUsage (already printed on stderr) and --help to
// flag.ErrHelp. Asked-for help goes to stdout, so `mogway tracker --help | less` works.
func parseFlags(e *env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(e.stdout)
			break
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// setFromFlags copies the value of every string flag given on the command line over the config
// field fields maps its name to: flags win over the file.
func setFromFlags(fs *flag.FlagSet, fields map[string]*string) {
	fs.Visit(func(f *flag.Flag) {
		if dst, ok := fields[f.Name]; ok {
			*dst = f.Value.String()
		}
	})
}

// loadSection is the load step of start for a role whose settings are one section of the file:
// pick copies the section into the role's config cfg, the string flags given on the command line
// are copied over the fields of cfg that flags names (flags win over the file), and cfg is
// validated.
func (d *daemonFlags) loadSection(fs *flag.FlagSet, section string, cfg conf.Validator, pick func(*configFile), flags map[string]*string) func() error {
	return func() error {
		cf, err := loadConfig(d.config)
		if err != nil {
			return err
		}
		pick(cf)
		setFromFlags(fs, flags)
		return cf.validate(section, cfg)
	}
}

// isSet reports whether the flag called name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// daemonFlags are the flags every daemon role takes.
type daemonFlags struct {
	config    string
	test      bool
	logFormat string
	logLevel  string
	pprof     string
}

func (d *daemonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.config, "c", "", "YAML config `file` (a section per role; flags win over the file)")
	fs.BoolVar(&d.test, "t", false, "check the configuration and exit 0 if it is valid, 1 if not (like nginx -t)")
	fs.StringVar(&d.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&d.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&d.pprof, "pprof", "", "serve Go profiles (/debug/pprof/) on this `address`, e.g. 127.0.0.1:6060; off by default")
}

// startPprof serves net/http/pprof on --pprof until ctx ends. It returns a function that waits for
// that server to stop. With no --pprof it does nothing.
func (d *daemonFlags) startPprof(ctx context.Context, log *slog.Logger) (wait func(), err error) {
	if d.pprof == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", d.pprof)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("serving profiles", "addr", ln.Addr().String())
	return func() { <-done }, nil
}

// start is the beginning every daemon command shares: parse the command line, build the logger,
// and run load, which reads the file, applies the flags over it and validates the role's section.
// With -t it prints the verdict like nginx -t. done is true when the command has nothing more to do
// (a usage error, -t, or a config error, which err then holds).
func (d *daemonFlags) start(e *env, fs *flag.FlagSet, args []string, load func() error) (log *slog.Logger, done bool, err error) {
	if err := parseFlags(e, fs, args); err != nil {
		return nil, true, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return nil, true, errUsage
	}
	if log, err = d.logger(e.stderr); err != nil {
		return nil, true, err
	}
	if err := load(); err != nil {
		d.testFailed(e)
		return nil, true, err
	}
	if d.test {
		d.testOK(e)
		return nil, true, nil
	}
	return log, false, nil
}

// subject names what -t checked, for its verdict lines.
func (d *daemonFlags) subject() string {
	if d.config == "" {
		return "configuration (defaults and flags, no file)"
	}
	return "configuration file " + d.config
}

// testFailed prints -t's failure line; the caller then returns the error, which main prints.
func (d *daemonFlags) testFailed(e *env) {
	if d.test {
		fmt.Fprintf(e.stderr, "%s test failed:\n", d.subject())
	}
}

// testOK prints -t's success line.
func (d *daemonFlags) testOK(e *env) { fmt.Fprintf(e.stdout, "%s is ok\n", d.subject()) }

// logger builds the process logger writing to w.
func (d *daemonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(d.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: write debug, info, warn or error", d.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch d.logFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: write text or json", d.logFormat)
}

// notify tells systemd about a state change (READY=1, RELOADING=1, STOPPING=1). Outside systemd
// (no NOTIFY_SOCKET) it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// listeners holds sockets passed by systemd socket activation, by FileDescriptorName. A daemon
// takes them once at start-up; with no activation the map is empty and addresses are bound normally.
type listeners map[string][]net.Listener

func activated() (listeners, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return listeners{}, nil
	}
	m, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("systemd socket activation: %w", err)
	}
	return m, nil
}

// listen returns the activated socket named name (or the only unnamed one), else binds addr.
func (l listeners) listen(name, addr string) (net.Listener, error) {
	if ls := l[name]; len(ls) > 0 {
		ln := ls[0]
		l[name] = ls[1:]
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// hangups delivers SIGHUP to reload until ctx ends. It is started by a daemon that supports
// graceful reload; the returned stop function waits for the loop to finish.
func hangups(ctx context.Context, log *slog.Logger, reload func() error) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				notify(log, daemon.SdNotifyReloading)
				if err := reload(); err != nil {
					log.Error("reload failed; still serving the previous configuration", "err", err)
				} else {
					log.Info("configuration reloaded")
				}
				notify(log, daemon.SdNotifyReady)
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		<-done
	}
}
