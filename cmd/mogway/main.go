// Command mogway is the MogileFS-compatible tracker, storage node, HTTP gateway and admin CLI in one
// binary. The first argument names the role or tool; `mogway help` lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a subcommand may touch of the process: its streams. Keeping them here lets tests run
// subcommands in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"storaged", "run a mogstored-compatible storage node (HTTP on :7500, side channel on :7501)", cmdStoraged},
		{"tracker", "run a MogileFS-protocol tracker (:7001) on SQLite or MySQL/MariaDB", cmdTracker},
		{"gateway", "run the HTTP gateway: routes, tracker pool, failover, cache, /purge", cmdGateway},
		{"dev", "run a whole local cluster in one process (tracker, 2 storage nodes, gateway, demo data)", cmdDev},
		{"adm", "administer a cluster: check, host, device, domain, class, settings, fsck (like mogadm)", cmdAdm},
		{"upload", "store a file under a key (like mogupload)", cmdUpload},
		{"fetch", "fetch a key's bytes to a file or stdout (like mogfetch)", cmdFetch},
		{"info", "show a key's fid, class, length and copies (like mogfileinfo)", cmdInfo},
		{"ls", "list keys of a domain by prefix (like moglistkeys)", cmdLs},
		{"rm", "delete a key (like mogdelete)", cmdRm},
		{"debug", "show a file's rows, queues and copies, and check the copies (like mogfiledebug)", cmdDebug},
		{"version", "print the version", cmdVersion},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func cmdVersion(_ context.Context, e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "mogway", version)
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "mogway %s: a MogileFS-compatible tracker, storage node and HTTP gateway in one binary.\n\n", version)
	fmt.Fprintf(w, "Usage:\n  mogway COMMAND [flags]\n  mogway COMMAND --help\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nDaemons read one YAML file (-c FILE) with a section per role; flags win over the file.\n")
	fmt.Fprintf(w, "`mogway ROLE -t -c FILE` checks a config file and exits 0 or 1, like `nginx -t`.\n")
}

// errUsage marks an error already explained to the user (a bad flag, --help); main exits 2 for it.
var errUsage = errors.New("usage")

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return run(ctx, e, []string{args[1], "--help"})
		}
		usage(e.stdout)
		return 0
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(e.stderr, "mogway %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(e.stderr, "mogway: unknown command %q\n\n", name)
	usage(e.stderr)
	return 2
}

func main() {
	// SIGINT/SIGTERM cancel the context; daemons stop gracefully and return.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}
