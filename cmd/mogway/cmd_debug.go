package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

var debugHelp = cliHelp{
	name:     "debug",
	synopsis: "--domain=D --key=K | --fid=N [--check=false]",
	about: `Dump what the tracker knows about one file, like mogfiledebug: its file row, any tempfile and
queue rows (replication, deletion, rebalance, fsck), its device ids, stored checksum and the URL of
every copy. With --check (the default) each copy is asked for with an HTTP HEAD and its length is
compared with the file row. Exits 1 when the file has no file row or a copy failed the check.`,
	examples: []string{
		"mogway debug --domain=photos --key=albums/2024/beach.jpg",
		"mogway debug --fid=1234",
		"mogway debug --fid=1234 --check=false",
	},
}

// copyCheckTimeout bounds one HEAD request of `debug --check` (mogfiledebug uses 10s per copy).
const copyCheckTimeout = 10 * time.Second

// newCopyChecker returns the HTTP client that sends `debug --check`'s HEAD requests: a copy on a
// node that accepts the connection and never answers is reported after copyCheckTimeout instead of
// holding debug forever.
func newCopyChecker() *http.Client { return &http.Client{Timeout: copyCheckTimeout} }

// errDebugProblems makes debug exit 1 after its report, which already names what is wrong.
var errDebugProblems = errors.New("problems found; see above")

func cmdDebug(ctx context.Context, e *env, args []string) error {
	var f fileFlags
	fs := newCLIFlags(debugHelp)
	f.clientFlags.register(fs, client.DefaultTimeout)
	fs.StringVar(&f.domain, "domain", "", "domain of the key (required with --key)")
	fs.StringVar(&f.key, "key", "", "the key to inspect")
	fid := fs.Int64("fid", 0, "inspect this fid instead of --domain/--key")
	check := fs.Bool("check", true, "HEAD every copy and compare its length with the file row")
	if err := parseNoArgs(e, fs, debugHelp, args); err != nil {
		return err
	}
	var req mogproto.Args
	what := ""
	switch {
	case *fid < 0:
		return usageError(e, fs, debugHelp, "--fid must be a positive number")
	case *fid > 0:
		if f.key != "" {
			return usageError(e, fs, debugHelp, "give --fid or --key, not both")
		}
		req.Add("fid", strconv.FormatInt(*fid, 10))
		what = "fid " + strconv.FormatInt(*fid, 10)
	default:
		confDefaults(fs, "domain")
		if err := required(e, fs, debugHelp, "domain", "key"); err != nil {
			return err
		}
		req.Add("domain", f.domain)
		req.Add("key", f.key)
		what = printable(f.key)
	}
	p, err := f.pool()
	if err != nil {
		return err
	}
	defer p.Close()
	reply, err := p.Do(ctx, mogproto.CmdFileDebug, req)
	if err != nil {
		return trackerError("debug "+what, err)
	}
	d := parseFileDebug(reply)
	var hc *http.Client
	if *check {
		hc = newCopyChecker()
	}
	if problems := printFileDebug(ctx, e.stdout, hc, d); problems > 0 {
		return errDebugProblems
	}
	return nil
}

// fileDebug is a file_debug reply split into its groups.
type fileDebug struct {
	file     map[string]string            // fid_* without the prefix; nil when there is no file row
	groups   map[string]map[string]string // tempfile, replqueue, delqueue, rebqueue, fsckqueue
	copies   []debugCopy                  // devpath_<devid>, by devid
	devids   string
	checksum string
}

// debugCopy is one devpath_<devid> of a file_debug reply.
type debugCopy struct {
	devid int64
	url   string
}

// debugGroups are the row groups of file_debug other than the file row, in the order printed.
var debugGroups = []string{"tempfile", "replqueue", "delqueue", "rebqueue", "fsckqueue"}

// parseFileDebug sorts a file_debug reply into groups. Unknown names are kept under their prefix
// so a newer tracker's extra rows are still shown.
func parseFileDebug(r mogproto.Args) fileDebug {
	d := fileDebug{groups: map[string]map[string]string{}}
	for _, a := range r {
		switch {
		case a.Name == "devids":
			d.devids = a.Value
		case a.Name == "checksum":
			d.checksum = a.Value
		case strings.HasPrefix(a.Name, "devpath_"):
			id, _ := strconv.ParseInt(strings.TrimPrefix(a.Name, "devpath_"), 10, 64)
			d.copies = append(d.copies, debugCopy{devid: id, url: a.Value})
		default:
			group, field, ok := strings.Cut(a.Name, "_")
			if !ok || field == "" {
				group, field = "other", a.Name
			}
			if group == "fid" {
				if d.file == nil {
					d.file = map[string]string{}
				}
				d.file[field] = a.Value
				continue
			}
			if d.groups[group] == nil {
				d.groups[group] = map[string]string{}
			}
			d.groups[group][field] = a.Value
		}
	}
	sort.SliceStable(d.copies, func(i, j int) bool { return d.copies[i].devid < d.copies[j].devid })
	return d
}

// printFileDebug prints d in mogfiledebug's order: copies (checked with HEAD when hc is not nil),
// tempfile and queue rows, the file row, the raw devids and the checksum. It returns how many
// problems it reported.
func printFileDebug(ctx context.Context, w io.Writer, hc *http.Client, d fileDebug) int {
	problems := 0
	length, haveLength := int64(0), false
	if v, ok := d.file["length"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			length, haveLength = n, true
		}
	}
	if len(d.copies) == 0 {
		fmt.Fprintln(w, "No copies found")
	} else if hc != nil {
		fmt.Fprintln(w, "Checking copies...")
		if !haveLength {
			fmt.Fprintln(w, "No length, cannot verify content length")
		}
	} else {
		fmt.Fprintln(w, "Copies (not checked):")
	}
	for _, c := range d.copies {
		fmt.Fprintf(w, "\nResults for path: %s\n", printable(c.url))
		fmt.Fprintf(w, " - Device: %d\n", c.devid)
		if hc == nil {
			continue
		}
		size, status, err := headCopy(ctx, hc, c.url)
		switch {
		case err != nil:
			problems++
			fmt.Fprintf(w, " - ERROR: Request failed: %v\n", err)
			continue
		case status == http.StatusNotFound:
			problems++
			fmt.Fprintf(w, " - ERROR: File copy is missing: %s\n", statusLine(status))
			continue
		case status/100 != 2:
			problems++
			fmt.Fprintf(w, " - ERROR: Copy cannot be read: %s\n", statusLine(status))
			continue
		}
		if size < 0 {
			problems++
			fmt.Fprintln(w, " - ERROR: No Content-Length in the reply")
		} else if haveLength && size != length {
			problems++
			fmt.Fprintln(w, " - ERROR: Length does not match file row!")
		}
		if size >= 0 {
			fmt.Fprintf(w, " - Length: %d (file row: %s)\n", size, printable(d.file["length"]))
		}
		fmt.Fprintf(w, " - HTTP result: %s\n", statusLine(status))
	}

	fmt.Fprintln(w, "\nTempfile and/or queue rows...")
	found := 0
	var names []string
	for g := range d.groups {
		names = append(names, g)
	}
	sort.Slice(names, func(i, j int) bool {
		return groupRank(names[i]) < groupRank(names[j]) || groupRank(names[i]) == groupRank(names[j]) && names[i] < names[j]
	})
	for _, g := range names {
		found++
		fmt.Fprintf(w, "- %12s\n", g)
		for _, k := range slices.Sorted(maps.Keys(d.groups[g])) {
			fmt.Fprintf(w, "  %20s: %20s\n", printable(k), printable(d.groups[g][k]))
		}
	}
	if found == 0 {
		fmt.Fprintln(w, "none.")
	}

	if d.file != nil {
		fmt.Fprintln(w, "\n- File Row:")
		for _, k := range slices.Sorted(maps.Keys(d.file)) {
			fmt.Fprintf(w, "  %8s: %20s\n", printable(k), printable(d.file[k]))
		}
	} else {
		problems++
		fmt.Fprintln(w, "\n- ERROR: No file row was found!")
		fmt.Fprintln(w, "File may have been deleted or never closed.")
		fmt.Fprintln(w, "See above for any matching rows from tempfile or delqueue.")
	}
	if d.devids != "" {
		fmt.Fprintf(w, "\n- Raw devids: %s\n", printable(d.devids))
	}
	if d.checksum != "" {
		fmt.Fprintf(w, "\n- Stored checksum: %s\n", printable(d.checksum))
	}
	return problems
}

// groupRank orders the known row groups as file_debug documents them, unknown ones after.
func groupRank(g string) int {
	for i, k := range debugGroups {
		if k == g {
			return i
		}
	}
	return len(debugGroups)
}

func statusLine(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// headCopy sends HEAD to a copy's URL and returns its Content-Length (-1 when absent) and status.
func headCopy(ctx context.Context, hc *http.Client, url string) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, resp.StatusCode, nil
}
