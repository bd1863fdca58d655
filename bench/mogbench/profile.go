package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pprofAddr is the --pprof address of the mogway daemon listening on port.
func pprofAddr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port+1000) }

// profile captures a CPU profile of the mogway process serving url while wrk loads it (with the
// optional Lua script), and returns the top of `go tool pprof -top` as text. It is taken for rows
// where mogway is slower than the reference, so the results show where the time goes, and for every
// row with -pgo.
func (c *cluster) profile(name, pprof, url, script string) (string, error) {
	return c.profileUnder(name, pprof, func(d time.Duration) error {
		_, err := runWrk(loadCPUs, url, script, c.o.conns, d)
		return err
	})
}

// profileUnder is profile with load, which runs for the duration it is given, as the load.
func (c *cluster) profileUnder(name, pprof string, load func(time.Duration) error) (string, error) {
	secs := int(c.o.profileTime.Seconds())
	type result struct {
		path string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		client := &http.Client{Timeout: time.Duration(secs+20) * time.Second}
		resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprof, secs))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			ch <- result{err: fmt.Errorf("pprof: %s", resp.Status)}
			return
		}
		path := filepath.Join(c.work, "cpu-"+slug(name)+".pb.gz")
		f, err := os.Create(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		_, err = io.Copy(f, resp.Body)
		f.Close()
		ch <- result{path: path, err: err}
	}()
	if err := load(time.Duration(secs+1) * time.Second); err != nil {
		return "", err
	}
	r := <-ch
	if r.err != nil {
		return "", r.err
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", c.o.bin, r.path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	// Keep the summary and the table, drop pprof's preamble lines about files.
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") ||
			strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n")), nil
}

// pgoTime is the shortest profile taken for -pgo: at the profiler's 100 samples a second, a few
// hundred samples of each row.
const pgoTime = 5 * time.Second

// profiles reports whether a row's mogway process is profiled: every row's with -pgo, otherwise
// in full runs where mogway was slower than the reference (or there is no reference).
func (c *cluster) profiles(slower bool) bool {
	return c.o.pgo != "" || slower && !c.o.quick
}

// mergeProfiles writes the CPU profiles at paths merged into one (`go tool pprof -proto`) to out,
// as `go build -pgo` reads it. Each profile weighs by its samples: rows count alike, as each is
// profiled for as long.
func mergeProfiles(out string, paths []string) error {
	if len(paths) == 0 {
		return fmt.Errorf("no profile to merge into %s (no row with a profiled process ran)", out)
	}
	merged, err := exec.Command("go", append([]string{"tool", "pprof", "-proto"}, paths...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("go tool pprof -proto: %v\n%s", err, ee.Stderr)
		}
		return fmt.Errorf("go tool pprof -proto: %w", err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, merged, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
