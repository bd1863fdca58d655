package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

// The client tools (upload, fetch, info, ls, rm) and adm share these helpers: MogileFS-Utils style
// flags (--trackers=h1:7001,h2 --domain=d --key=k), interspersed positional arguments, --help on
// stdout, and a tracker pool built from the flags.

// trackersEnv names the environment variable read when --trackers is not given.
const trackersEnv = "MOGWAY_TRACKERS"

// cliHelp is what --help prints for one command or subcommand.
type cliHelp struct {
	name     string // "upload", "adm host add"
	synopsis string // "--domain=D --key=K [--file=F]"
	about    string
	examples []string
}

// clientFlags are the flags every client tool takes.
type clientFlags struct {
	trackers string
	timeout  conf.Duration
}

// register adds the flags to fs. Values already set are kept, so adm can register them on its own
// flag set and again on a subcommand's, and both positions work.
func (c *clientFlags) register(fs *flag.FlagSet, defTimeout time.Duration) {
	fs.StringVar(&c.trackers, "trackers", c.trackers, "comma-separated trackers, host[:port] (port 7001 when left out); default $"+trackersEnv+", else 127.0.0.1:7001")
	if c.timeout == 0 {
		c.timeout = conf.Duration(defTimeout)
	}
	fs.Var(&c.timeout, "timeout", "how long to wait for one tracker reply")
}

// trackerList resolves --trackers, then $MOGWAY_TRACKERS, then the "trackers" line of the
// MogileFS-Utils configuration files (mogconf), then the local default.
func (c *clientFlags) trackerList(getenv func(string) string, mogconf map[string]string) []string {
	s := c.trackers
	if s == "" {
		s = getenv(trackersEnv)
	}
	if s == "" {
		s = mogconf["trackers"]
	}
	if t := client.ParseTrackers(s); len(t) > 0 {
		return t
	}
	return []string{"127.0.0.1:" + client.DefaultPort}
}

// pool builds a tracker pool from the flags.
func (c *clientFlags) pool() (*client.Pool, error) {
	return client.NewPool(client.Config{
		Trackers:   c.trackerList(os.Getenv, readMogConf(mogConfPaths()...)),
		Timeout:    c.timeout,
		RetryAfter: conf.Duration(time.Minute), // a one-shot tool tries each tracker once anyway
	}, nil)
}

// newCLIFlags returns a flag set for h. Parse it with parseCLI.
func newCLIFlags(h cliHelp) *flag.FlagSet {
	fs := flag.NewFlagSet("mogway "+h.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printHelp writes h and the flags of fs to w.
func printHelp(w io.Writer, fs *flag.FlagSet, h cliHelp) {
	fmt.Fprintf(w, "Usage: mogway %s %s\n\n%s\n", h.name, h.synopsis, strings.TrimSpace(h.about))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, fs)
	}
	if len(h.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, ex := range h.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}

// parseCLI parses flags anywhere among args (mogadm allows "host add h1 --ip=..."), returning the
// positional arguments. "--" ends flag parsing. --help prints the help on stdout and returns
// flag.ErrHelp; a bad flag prints the problem and the help on stderr and returns errUsage.
func parseCLI(e *env, fs *flag.FlagSet, h cliHelp, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.stdout, fs, h)
			return nil, flag.ErrHelp
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "mogway %s: %v\n\n", h.name, err)
			printHelp(e.stderr, fs, h)
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at the first non-flag; "--" is consumed by Parse, so compare with what was left.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseNoArgs is parseCLI for commands that take flags only: any positional argument is a usage error.
func parseNoArgs(e *env, fs *flag.FlagSet, h cliHelp, args []string) error {
	pos, err := parseCLI(e, fs, h, args)
	if err != nil {
		return err
	}
	return wantArgs(e, fs, h, pos)
}

// usageError prints msg and the help of h on stderr and returns errUsage (exit status 2).
func usageError(e *env, fs *flag.FlagSet, h cliHelp, format string, args ...any) error {
	fmt.Fprintf(e.stderr, "mogway %s: %s\n\n", h.name, fmt.Sprintf(format, args...))
	printHelp(e.stderr, fs, h)
	return errUsage
}

// wantArgs checks the number of positional arguments.
func wantArgs(e *env, fs *flag.FlagSet, h cliHelp, pos []string, names ...string) error {
	if len(pos) < len(names) {
		return usageError(e, fs, h, "missing argument <%s>", names[len(pos)])
	}
	if len(pos) > len(names) {
		return usageError(e, fs, h, "unexpected argument %q", pos[len(names)])
	}
	return nil
}

// required checks that string flags were given.
func required(e *env, fs *flag.FlagSet, h cliHelp, flags ...string) error {
	for _, name := range flags {
		if f := fs.Lookup(name); f != nil && f.Value.String() == "" {
			return usageError(e, fs, h, "--%s is required", name)
		}
	}
	return nil
}

// trackerError turns pool errors into messages for people: ERR replies show their code and text.
func trackerError(what string, err error) error {
	var perr *mogproto.Error
	if errors.As(err, &perr) {
		if perr.Message == "" || perr.Message == perr.Code {
			return fmt.Errorf("%s: %s", what, perr.Code)
		}
		return fmt.Errorf("%s: %s (%s)", what, perr.Message, perr.Code)
	}
	if errors.Is(err, client.ErrUnavailable) {
		msg := strings.TrimPrefix(err.Error(), "client: ")
		return fmt.Errorf("%s: %s; check --trackers or $%s", what, msg, trackersEnv)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: interrupted", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// printFlags lists the flags GNU-style ("--name=VALUE"), as the MogileFS-Utils document them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		typ, doc := flag.UnquoteUsage(f)
		switch {
		case typ == "int" || typ == "int64":
			typ = "N"
		case typ == "":
		case isDuration(f.Value):
			typ = "DURATION"
		default:
			typ = "VALUE"
		}
		name := dash + f.Name
		if typ != "" {
			name += "=" + typ
		}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && !strings.Contains(doc, "default") {
			doc += " (default " + d + ")"
		}
		fmt.Fprintf(w, "  %-22s %s\n", name, doc)
	})
}

func isDuration(v flag.Value) bool {
	_, ok := v.(*conf.Duration)
	return ok
}

// mogConfPaths returns the configuration files MogileFS-Utils read, in the order they are applied:
// /etc/mogilefs/mogilefs.conf, then ~/.mogilefs.conf, which wins.
func mogConfPaths() []string {
	paths := []string{"/etc/mogilefs/mogilefs.conf"}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".mogilefs.conf"))
	}
	return paths
}

// readMogConf reads "key = value" lines as MogileFS-Utils do: '#' starts a comment, keys are word
// characters, later files override earlier ones. Files that cannot be read are skipped.
func readMogConf(paths ...string) map[string]string {
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			k, v, ok := strings.Cut(line, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" || strings.IndexFunc(k, func(r rune) bool {
				return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			}) >= 0 {
				continue
			}
			out[k] = v
		}
	}
	return out
}

// confDefaults fills flags that were not given from the MogileFS-Utils configuration files, as
// mogupload and friends take "domain = photos" there.
func confDefaults(fs *flag.FlagSet, names ...string) {
	mogconf := readMogConf(mogConfPaths()...)
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, n := range names {
		if v := mogconf[n]; v != "" && !given[n] {
			fs.Set(n, v)
		}
	}
}
