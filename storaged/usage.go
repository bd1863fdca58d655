package storaged

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mogway/mogway/internal/tick"
)

// devices lists the dev<N> directories of the docroot, sorted.
func (s *Server) devices() ([]string, error) {
	ents, err := os.ReadDir(s.cfg.Docroot)
	if err != nil {
		return nil, fmt.Errorf("storaged: list docroot: %w", err)
	}
	var devs []string
	for _, e := range ents {
		if !isDevName(e.Name()) {
			continue
		}
		fi, err := os.Stat(filepath.Join(s.cfg.Docroot, e.Name())) // a device may be a symlink
		if err != nil || !fi.IsDir() {
			continue
		}
		devs = append(devs, e.Name())
	}
	sort.Slice(devs, func(i, j int) bool { return devNum(devs[i]) < devNum(devs[j]) })
	return devs, nil
}

func devNum(dev string) int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(dev, "dev"), 10, 64)
	return n
}

// tempName returns a fresh name for a temporary file next to name.
func tempName(name string) string {
	var b [8]byte
	rand.Read(b[:])
	return name + "." + hex.EncodeToString(b[:]) + ".tmp"
}

// probeWritable creates and removes a small file in dev.
func (s *Server) probeWritable(dev string) error {
	name := tempName(dev + "/.probe")
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte("ok\n"))
	cerr := f.Close()
	rerr := s.root.Remove(name)
	if werr != nil {
		return werr
	}
	if cerr != nil {
		return cerr
	}
	return rerr
}

// health probes every device; it returns one line per device and whether all are writable.
func (s *Server) health() (string, bool) {
	devs, err := s.devices()
	if err != nil {
		return err.Error() + "\n", false
	}
	var b strings.Builder
	ok := true
	for _, d := range devs {
		if err := s.probeWritable(d); err != nil {
			ok = false
			fmt.Fprintf(&b, "%s: not writable: %v\n", d, err)
			continue
		}
		fmt.Fprintf(&b, "%s: ok\n", d)
	}
	if len(devs) == 0 {
		b.WriteString("no devices\n")
	}
	return b.String(), ok
}

// usageLoop rewrites every device's usage file every usage_interval until ctx is done.
func (s *Server) usageLoop(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("usage writer crashed", "panic", r)
		}
	}()
	tick.Every(ctx, s.cfg.UsageInterval.D(), func() bool {
		s.writeUsageAll()
		return true
	})
}

func (s *Server) writeUsageAll() {
	devs, err := s.devices()
	if err != nil {
		s.log.Warn("usage: cannot list devices", "err", err)
		return
	}
	for _, d := range devs {
		if err := s.writeUsage(d); err != nil {
			s.log.Warn("usage: cannot write usage file", "device", d, "err", err)
		}
	}
}

// usage is the content of one dev<N>/usage file (spec §4.4), sizes in KiB.
type usage struct {
	Available, Total, Used int64
	Use                    string
	Device, Disk           string
	Time                   int64
}

// format renders u in mogstored's format: "key: value" lines in alphabetical key order.
func (u usage) format() string {
	return fmt.Sprintf("available: %d\ndevice: %s\ndisk: %s\ntime: %d\ntotal: %d\nuse: %s\nused: %d\n",
		u.Available, u.Device, u.Disk, u.Time, u.Total, u.Use, u.Used)
}

// measure computes the usage of the filesystem holding dir (an absolute path of a device).
func measure(dir string, now time.Time) (usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return usage{}, err
	}
	u := usageOf(int64(st.Bsize), st.Blocks, st.Bfree, st.Bavail)
	u.Time = now.Unix()
	real := dir
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		real = p // dev<N> may be a symlink to the disk's mount point
	}
	var mounts io.Reader = strings.NewReader("") // without /proc/self/mounts the device is unknown
	if f, err := os.Open(procMounts); err == nil {
		defer f.Close()
		mounts = f
	}
	u.Device, u.Disk = location(mounts, dir, real)
	return u, nil
}

// usageOf computes the sizes of a usage, in KiB, from statfs(2)'s block size and its counts of
// blocks, free blocks and blocks available to non-root users.
func usageOf(bsize int64, blocks, bfree, bavail uint64) usage {
	avail := int64(bavail) * bsize / 1024
	used := (int64(blocks) - int64(bfree)) * bsize / 1024
	// The tracker skips a device whose used or total is zero (an empty tmpfs, say); 1 KiB is the
	// smallest honest non-zero answer.
	used = max(used, 1)
	total := used + avail
	pct := (used*100 + total - 1) / total // df rounds the percentage up
	return usage{Available: avail, Used: used, Total: total, Use: strconv.FormatInt(pct, 10) + "%"}
}

// location returns the device and disk of a usage for the device directory dir (real: dir with
// symlinks resolved), given mounts in the format of /proc/self/mounts: the source of the
// filesystem holding real, or "unknown" when none is found, and the mount point when real is one,
// else dir.
func location(mounts io.Reader, dir, real string) (device, disk string) {
	device, disk = "unknown", dir
	if mnt, dev, ok := mountIn(mounts, real); ok {
		device = dev
		if mnt == real {
			disk = mnt
		}
	}
	return device, disk
}

// procMounts lists the mounts seen by the process.
const procMounts = "/proc/self/mounts"

// mountOf finds the mount point holding path (with symlinks already resolved) and its source
// device in /proc/self/mounts.
func mountOf(path string) (mountPoint, device string, ok bool) {
	f, err := os.Open(procMounts)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	return mountIn(f, path)
}

// mountIn is mountOf reading mounts, a table in the format of /proc/self/mounts.
func mountIn(mounts io.Reader, path string) (mountPoint, device string, ok bool) {
	sc := bufio.NewScanner(mounts)
	best := -1
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		mp := unescapeMount(fields[1])
		if mp != "/" && path != mp && !strings.HasPrefix(path, mp+"/") {
			continue
		}
		if len(mp) >= best {
			best, mountPoint, device, ok = len(mp), mp, unescapeMount(fields[0]), true
		}
	}
	return mountPoint, device, ok
}

// unescapeMount decodes the octal escapes (\040 for space) of /proc/self/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writeUsage rewrites dev/usage atomically (temp file, fsync, rename).
func (s *Server) writeUsage(dev string) error {
	u, err := measure(filepath.Join(s.cfg.Docroot, dev), time.Now())
	if err != nil {
		return err
	}
	return s.writeFileAtomic(dev+"/usage", []byte(u.format()))
}

// writeFileAtomic writes a small file through a temp file and rename.
func (s *Server) writeFileAtomic(name string, data []byte) error {
	tmp := tempName(name)
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		s.root.Remove(tmp)
	}
	return err
}
