package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/mogway/mogway/tracker/client"
)

// statsLeaf is "adm stats": each tracker's `!stats` lines, such as its query counters and, with
// tracker.replicate on, the replication position and lag.
var statsLeaf = admLeaf{
	verb: "stats",
	help: cliHelp{
		name:     "adm stats",
		synopsis: "[--match=PREFIX]",
		about: `Print each tracker's counters (its !stats answer), one "name value" line each, under the
tracker's address: queries, worker counts and, when tracker.replicate is on, the replication lines
(replicate_lag_seconds, replicate_last_sync, ...). Exits 1 when a tracker does not answer.`,
		examples: []string{"mogway adm --trackers=10.0.0.1:7001,10.0.0.2:7001 stats", "mogway adm stats --match=replicate_"},
	},
	flags: func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
		match := fs.String("match", "", "print only the lines whose name starts with this prefix")
		return func(ctx context.Context, a *admin, _ []string) error {
			return runStats(ctx, a, *match)
		}
	},
}

func runStats(ctx context.Context, a *admin, match string) error {
	failed := 0
	trackers := a.cf.trackerList(os.Getenv, readMogConf(mogConfPaths()...))
	for _, addr := range trackers {
		lines, err := client.AdminCommand(ctx, addr, "!stats", a.cf.timeout.D())
		if err != nil {
			failed++
			fmt.Fprintf(a.e.stderr, "mogway adm stats: %v\n", err)
			continue
		}
		fmt.Fprintf(a.e.stdout, "%s\n", addr)
		for _, l := range lines {
			if strings.HasPrefix(l, match) {
				fmt.Fprintf(a.e.stdout, "  %s\n", l)
			}
		}
	}
	if failed > 0 {
		// Each failure is already on stderr; this line says why the exit status is 1.
		return fmt.Errorf("%d of %d trackers did not answer", failed, len(trackers))
	}
	return nil
}
