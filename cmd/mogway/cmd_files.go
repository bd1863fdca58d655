package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mogway/mogway/internal/fsutil"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

// fileFlags are the flags of the per-key tools, named as in MogileFS-Utils.
type fileFlags struct {
	clientFlags
	domain string
	key    string
}

// newFileFlags returns the flag set of h with the tracker, --domain and --key flags registered,
// and the values they set.
func newFileFlags(h cliHelp) (*fileFlags, *flag.FlagSet) {
	f, fs := &fileFlags{}, newCLIFlags(h)
	f.clientFlags.register(fs, client.DefaultTimeout)
	fs.StringVar(&f.domain, "domain", "", "domain of the key (required)")
	fs.StringVar(&f.key, "key", "", "the key (required)")
	return f, fs
}

// parseAndConnect parses args for a command on one key (no positional arguments; --domain from the
// MogileFS-Utils configuration when not given; --domain and --key required) and opens the tracker
// pool, which the caller closes.
func (f *fileFlags) parseAndConnect(e *env, fs *flag.FlagSet, h cliHelp, args []string) (*client.Pool, error) {
	if err := parseNoArgs(e, fs, h, args); err != nil {
		return nil, err
	}
	confDefaults(fs, "domain")
	if err := required(e, fs, h, "domain", "key"); err != nil {
		return nil, err
	}
	return f.pool()
}

var uploadHelp = cliHelp{
	name:     "upload",
	synopsis: "--domain=D --key=K [--file=PATH|-] [--class=C]",
	about: `Store a file under a key, like mogupload: create_open, an HTTP PUT to a storage node (the next
one offered when it fails), then create_close with the size. --file=- or no --file reads stdin.
A progress bar is drawn on stderr for large files when stderr is a terminal.`,
	examples: []string{
		"mogway upload --trackers=10.0.0.1:7001 --domain=photos --key=a/b.jpg --file=b.jpg",
		"tar c dir | mogway upload --domain=backup --key=dir.tar --class=twocopies",
	},
}

func cmdUpload(ctx context.Context, e *env, args []string) error {
	f, fs := newFileFlags(uploadHelp)
	file := fs.String("file", "-", "file to upload; - for stdin")
	class := fs.String("class", "", "class of the new file; default: the domain's default class")
	if err := parseNoArgs(e, fs, uploadHelp, args); err != nil {
		return err
	}
	confDefaults(fs, "domain", "class")
	if *file == "-" && isTerminal(e.stdin) {
		return usageError(e, fs, uploadHelp, "give --file, or pipe the data to stdin")
	}
	if err := required(e, fs, uploadHelp, "domain", "key"); err != nil {
		return err
	}
	src, size, cleanup, err := openUpload(e, *file)
	if err != nil {
		return err
	}
	defer cleanup()
	p, err := f.pool()
	if err != nil {
		return err
	}
	defer p.Close()
	ur := &uploadReader{f: src, pb: newProgress(e.stderr, size, "upload")}
	if ur.pb != nil {
		defer ur.pb.done()
	}
	if _, err := p.Upload(ctx, f.domain, f.key, *class, ur, size); err != nil {
		return trackerError("upload "+printable(f.key), err)
	}
	return nil
}

// uploadReader reads the file to upload, feeding the progress bar. It stays an io.Seeker so that the
// pool can replay the body to the next storage node; a rewind restarts the bar.
type uploadReader struct {
	f  *os.File
	pb *progress
}

func (u *uploadReader) Read(b []byte) (int, error) {
	n, err := u.f.Read(b)
	if u.pb != nil {
		u.pb.Write(b[:n])
	}
	return n, err
}

func (u *uploadReader) Seek(off int64, whence int) (int64, error) {
	if u.pb != nil {
		u.pb.n = 0
	}
	return u.f.Seek(off, whence)
}

// openUpload opens the file to upload and returns its size. stdin is spooled to a temporary file
// first: the storage node needs the length up front and a failed PUT must be replayable.
func openUpload(e *env, path string) (*os.File, int64, func(), error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, nil, err
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			if err == nil {
				err = fmt.Errorf("%s is not a regular file", path)
			}
			return nil, 0, nil, err
		}
		return f, st.Size(), func() { f.Close() }, nil
	}
	tmp, err := os.CreateTemp("", "mogway-upload-*")
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	size, err := io.Copy(tmp, e.stdin)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("reading stdin: %w", err)
	}
	return tmp, size, cleanup, nil
}

var fetchHelp = cliHelp{
	name:     "fetch",
	synopsis: "--domain=D --key=K [--file=PATH|-]",
	about: `Fetch a key's bytes, like mogfetch. Each copy is tried in turn until one answers; a copy that
breaks off midway is an error, never a short file. --file is written to a temporary file in the same
directory, synced and renamed into place only when complete. --file=- or no --file writes stdout.`,
	examples: []string{
		"mogway fetch --domain=photos --key=a/b.jpg --file=b.jpg",
		"mogway fetch --domain=backup --key=dir.tar | tar x",
	},
}

func cmdFetch(ctx context.Context, e *env, args []string) error {
	f, fs := newFileFlags(fetchHelp)
	file := fs.String("file", "-", "where to write; - for stdout")
	p, err := f.parseAndConnect(e, fs, fetchHelp, args)
	if err != nil {
		return err
	}
	defer p.Close()
	var pb *progress
	if isTerminal(e.stderr) {
		if fi, err := p.FileInfo(ctx, f.domain, f.key); err == nil {
			pb = newProgress(e.stderr, fi.Length, "fetch")
		}
	}
	fetch := func(w io.Writer) error {
		if pb != nil {
			w = io.MultiWriter(w, pb)
			defer pb.done()
		}
		if _, err := p.Fetch(ctx, f.domain, f.key, w); err != nil {
			return trackerError("fetch "+printable(f.key), err)
		}
		return nil
	}
	if *file == "-" {
		return fetch(e.stdout)
	}
	return writeAtomic(*file, fetch)
}

// writeAtomic writes path through a temporary file in its directory: write, fsync, close, rename,
// fsync the directory. On any failure the temporary file is removed and path is untouched.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	_ = fsutil.SyncDir(dir) // best effort: the file is complete; the rename may yet be lost in a crash
	return nil
}

var infoHelp = cliHelp{
	name:     "info",
	synopsis: "--domain=D --key=K",
	about:    `Show a key's fid, class, length, device count and the URLs of its copies, like mogfileinfo.`,
	examples: []string{"mogway info --domain=photos --key=a/b.jpg"},
}

func cmdInfo(ctx context.Context, e *env, args []string) error {
	f, fs := newFileFlags(infoHelp)
	p, err := f.parseAndConnect(e, fs, infoHelp, args)
	if err != nil {
		return err
	}
	defer p.Close()
	fi, err := p.FileInfo(ctx, f.domain, f.key)
	if err != nil {
		return trackerError("info "+printable(f.key), err)
	}
	paths, err := p.GetPaths(ctx, f.domain, f.key, client.GetPathsOptions{NoVerify: true, PathCount: 99})
	if err != nil && !mogproto.IsCode(err, mogproto.ErrUnknownKey) {
		return trackerError("info "+printable(f.key), err)
	}
	printFileInfo(e.stdout, fi, paths)
	return nil
}

// printFileInfo prints in mogfileinfo's layout: the key, the sorted fields right-aligned, then one
// line per path.
func printFileInfo(w io.Writer, fi *client.FileInfo, paths []string) {
	fmt.Fprintf(w, "- file: %s\n", printable(fi.Key))
	fields := [][2]string{
		{"class", printable(fi.Class)},
		{"devcount", fmt.Sprint(fi.DevCount)},
		{"domain", printable(fi.Domain)},
		{"fid", fmt.Sprint(fi.Fid)},
		{"key", printable(fi.Key)},
		{"length", fmt.Sprint(fi.Length)},
	}
	if fi.Checksum != "" {
		fields = append(fields, [2]string{"checksum", fi.Checksum})
	}
	if len(fi.DevIDs) > 0 {
		ids := make([]string, len(fi.DevIDs))
		for i, id := range fi.DevIDs {
			ids[i] = fmt.Sprint(id)
		}
		fields = append(fields, [2]string{"devids", strings.Join(ids, ",")})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i][0] < fields[j][0] })
	for _, kv := range fields {
		fmt.Fprintf(w, "%10s %20s\n", kv[0]+":", kv[1])
	}
	if len(paths) == 0 {
		fmt.Fprintf(w, " - (no usable copy right now)\n")
	}
	for _, u := range paths {
		fmt.Fprintf(w, " - %s\n", u)
	}
}

var lsHelp = cliHelp{
	name:     "ls",
	synopsis: "--domain=D [--key_prefix=P] [--after=K] [--limit=N] [--print0|--json]",
	about: `List keys of a domain in ascending order, one per line, like moglistkeys. It pages through
list_keys 1000 keys at a time until the list ends or --limit keys were printed.
A key with a control character, invalid UTF-8 or a leading double quote is printed Go-quoted
("a\nb"), so each key stays on one line. For scripts, --print0 prints the exact bytes of each key
followed by a NUL (as find -print0), and --json prints one JSON object per line: {"key":"..."},
or {"key_base64":"..."} for a key that is not valid UTF-8.`,
	examples: []string{
		"mogway ls --domain=photos --key_prefix=albums/2024/",
		"mogway ls --domain=photos --limit=10",
		"mogway ls --domain=photos --print0 | xargs -0 -n1 echo",
	},
}

func cmdLs(ctx context.Context, e *env, args []string) error {
	var f clientFlags
	fs := newCLIFlags(lsHelp)
	f.register(fs, client.DefaultTimeout)
	domain := fs.String("domain", "", "domain to list (required)")
	prefix := fs.String("key_prefix", "", "list only keys starting with this prefix")
	fs.StringVar(prefix, "prefix", "", "same as --key_prefix")
	after := fs.String("after", "", "start after this key")
	limit := fs.Int("limit", 0, "print at most this many keys; 0 for all")
	print0 := fs.Bool("print0", false, "print each key's exact bytes followed by a NUL instead of a line")
	asJSON := fs.Bool("json", false, `print one JSON object per key and line: {"key":K} ({"key_base64":K} when K is not UTF-8)`)
	if err := parseNoArgs(e, fs, lsHelp, args); err != nil {
		return err
	}
	if *print0 && *asJSON {
		return usageError(e, fs, lsHelp, "give --print0 or --json, not both")
	}
	confDefaults(fs, "domain")
	if err := required(e, fs, lsHelp, "domain"); err != nil {
		return err
	}
	if *limit < 0 {
		return usageError(e, fs, lsHelp, "--limit must be 0 or more")
	}
	p, err := f.pool()
	if err != nil {
		return err
	}
	defer p.Close()
	out := bufio.NewWriter(e.stdout)
	var print func(key string)
	switch {
	case *print0:
		print = func(k string) { out.WriteString(k); out.WriteByte(0) }
	case *asJSON:
		print = func(k string) { writeKeyJSON(out, k) }
	default:
		print = func(k string) { out.WriteString(printable(k)); out.WriteByte('\n') }
	}
	err = listKeys(ctx, p, func(keys []string) error {
		for _, k := range keys {
			print(k)
		}
		return out.Flush() // each page reaches a pipe as soon as it is listed
	}, *domain, *prefix, *after, *limit)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// writeKeyJSON writes {"key":K} and a newline, or {"key_base64":K} when K is not valid UTF-8 (a JSON
// string cannot carry such bytes).
func writeKeyJSON(w io.Writer, key string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if utf8.ValidString(key) {
		return enc.Encode(struct {
			Key string `json:"key"`
		}{key})
	}
	return enc.Encode(struct {
		Key []byte `json:"key_base64"`
	}{[]byte(key)})
}

// listKeys hands the keys to emit page by page. The loop ends when a page is short or empty, when the
// tracker does not move forward, at limit, or when emit fails.
func listKeys(ctx context.Context, p *client.Pool, emit func(keys []string) error, domain, prefix, after string, limit int) error {
	const page = 1000
	printed := 0
	for {
		n := page
		if limit > 0 {
			n = min(page, limit-printed)
		}
		keys, next, err := p.ListKeys(ctx, domain, prefix, after, n)
		if err != nil {
			return trackerError("ls", err)
		}
		if len(keys) > n {
			keys = keys[:n]
		}
		if err := emit(keys); err != nil {
			return err
		}
		printed += len(keys)
		if len(keys) < n || (limit > 0 && printed >= limit) || next == "" || next <= after && after != "" {
			return nil
		}
		after = next
	}
}

var rmHelp = cliHelp{
	name:     "rm",
	synopsis: "--domain=D --key=K [-f]",
	about: `Delete a key, like mogdelete. The key disappears at once; the tracker removes its copies in
the background. A missing key is an error unless -f is given.`,
	examples: []string{"mogway rm --domain=photos --key=a/b.jpg"},
}

func cmdRm(ctx context.Context, e *env, args []string) error {
	f, fs := newFileFlags(rmHelp)
	force := fs.Bool("f", false, "succeed when the key does not exist")
	p, err := f.parseAndConnect(e, fs, rmHelp, args)
	if err != nil {
		return err
	}
	defer p.Close()
	err = p.Delete(ctx, f.domain, f.key)
	if *force && mogproto.IsCode(err, mogproto.ErrUnknownKey) {
		return nil
	}
	if err != nil {
		return trackerError("rm "+printable(f.key), err)
	}
	return nil
}
