package main

import (
	"slices"
	"strings"
	"testing"
)

// commandFlags names, for every command of the binary, what its --help must mention.
var commandFlags = map[string][]string{
	"storaged": {"-c ", "-t", "-listen", "-mgmt-listen", "-docroot", "-log-format", "-log-level"},
	"tracker":  {"-c ", "-t", "-listen", "-db", "sqlite:", "mysql://", "-log-format"},
	"gateway":  {"-c ", "-t", "-listen", "-trackers", "-log-format"},
	"dev":      {"-data", "-listen", "-tracker-listen", "-node1", "-node2"},
	"adm":      {"--trackers", "check", "host add", "device add", "domain add", "class add", "--mindevcount", "fsck start"},
	"upload":   {"--trackers", "--domain", "--key", "--file", "--class"},
	"fetch":    {"--trackers", "--domain", "--key", "--file"},
	"info":     {"--trackers", "--domain", "--key"},
	"ls":       {"--trackers", "--domain", "--key_prefix", "--after", "--limit", "--print0", "--json"},
	"rm":       {"--trackers", "--domain", "--key", "-f "},
	"debug":    {"--trackers", "--domain", "--key", "--fid", "--check"},
}

func TestHelpEveryCommand(t *testing.T) {
	top := mog(t, "", "--help")
	if top.code != 0 || top.stderr != "" {
		t.Fatalf("%v\nwant exit 0 and nothing on stderr", top)
	}
	for _, c := range commands() {
		if !strings.Contains(top.stdout, "\n  "+c.name+" ") {
			t.Errorf("mogway --help does not list %q:\n%s", c.name, top.stdout)
		}
		if _, ok := commandFlags[c.name]; !ok && c.name != "version" {
			t.Errorf("command %q has no help expectations in commandFlags", c.name)
		}
	}
	for name, flags := range commandFlags {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			r := mog(t, "", args...)
			out := r.stdout + r.stderr
			if r.code != 0 || !strings.Contains(out, "Usage: mogway "+name) {
				t.Errorf("%v\nwant exit 0 and \"Usage: mogway %s\"", r, name)
				continue
			}
			for _, f := range flags {
				if !strings.Contains(out, f) {
					t.Errorf("mogway %s: the help does not mention %q:\n%s", strings.Join(args, " "), f, out)
				}
			}
		}
	}
	if r := mog(t, "", "version", "--help"); r.code != 0 || r.stdout != "mogway "+version+"\n" {
		t.Errorf("%v\nwant exit 0 and the version", r)
	}
	if r := mog(t, "", "--version"); r.code != 0 || r.stdout != "mogway "+version+"\n" {
		t.Errorf("%v\nwant exit 0 and the version", r)
	}
}

// TestHelpGoesToStdout checks that every --help can be paged (`mogway ROLE --help | less`), as
// the top-level help and the client tools' help can.
func TestHelpGoesToStdout(t *testing.T) {
	var daemons []string
	for name := range commandFlags {
		r := mog(t, "", name, "--help")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: mogway "+name) || r.stderr != "" {
			switch name {
			case "storaged", "tracker", "gateway", "dev":
				daemons = append(daemons, name)
			default:
				t.Errorf("%v\nwant exit 0, the help on stdout and nothing on stderr", r)
			}
		}
	}
	if len(daemons) > 0 {
		slices.Sort(daemons)
		t.Skipf("bug: cmd/mogway newFlagSet prints --help of %v on stderr, the client tools' on stdout", daemons)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		args     []string
		inStderr string
	}{
		{nil, "Usage:\n  mogway COMMAND"},
		{[]string{"frobnicate"}, `mogway: unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `mogway: unknown command "frobnicate"`},
		{[]string{"tracker", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"tracker", "extra"}, `unexpected argument "extra"`},
		{[]string{"storaged", "--listen"}, "flag needs an argument: -listen"},
		{[]string{"gateway", "-t", "extra"}, `unexpected argument "extra"`},
		{[]string{"upload", "--domain=d"}, "--key is required"},
		{[]string{"adm", "frob"}, `unknown topic "frob"`},
	}
	for _, tt := range tests {
		r := mog(t, "", tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.inStderr) {
			t.Errorf("%v\nwant exit 2 and %q on stderr", r, tt.inStderr)
		}
	}
}
