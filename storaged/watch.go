package storaged

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/tick"
)

// watchInterval is how often the watch stream reports, like `iostat 1`.
const watchInterval = time.Second

// watch streams device utilisation on w until ctx is done or a write fails (spec §4.6): every
// s.watchInterval one "<devid>\t<util>\n" line per device, util being the percentage of the
// interval the device's block device was busy (iostat's %util, from /proc/diskstats) or "-" when
// unknown, then ".\n". Without /proc/diskstats it answers "ERR iostat unavailable".
func (s *Server) watch(ctx context.Context, w *bufio.Writer) {
	prev, err := readDiskstats()
	if err != nil {
		w.WriteString("ERR iostat unavailable\r\n")
		w.Flush()
		return
	}
	prevAt := time.Now()
	tick.Every(ctx, s.watchInterval, func() bool {
		cur, err := readDiskstats()
		if err != nil {
			return false
		}
		now := time.Now()
		elapsed := now.Sub(prevAt).Milliseconds()
		devs, _ := s.devices()
		for _, d := range devs {
			util := "-"
			if blk := blockDevice(filepath.Join(s.cfg.Docroot, d)); blk != "" {
				a, okA := prev[blk]
				b, okB := cur[blk]
				if okA && okB && elapsed > 0 {
					util = formatUtil(b-a, elapsed)
				}
			}
			fmt.Fprintf(w, "%d\t%s\n", devNum(d), util)
		}
		w.WriteString(".\n")
		if w.Flush() != nil {
			return false
		}
		prev, prevAt = cur, now
		return true
	})
}

// formatUtil turns busy milliseconds over an interval into iostat's %util with two decimals.
func formatUtil(busyMs, elapsedMs int64) string {
	pct := float64(busyMs) * 100 / float64(elapsedMs)
	pct = min(max(pct, 0), 100)
	return strconv.FormatFloat(pct, 'f', 2, 64)
}

// readDiskstats returns the io_ticks (milliseconds spent doing I/O) of every block device.
func readDiskstats() (map[string]int64, error) {
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 13 {
			continue
		}
		ticks, err := strconv.ParseInt(fields[12], 10, 64)
		if err != nil {
			continue
		}
		m[fields[2]] = ticks
	}
	return m, sc.Err()
}

// blockDevice names the /proc/diskstats entry of the filesystem holding dir ("sdb1", "dm-0"),
// or "" when it is not a block device (tmpfs, overlay, NFS).
func blockDevice(dir string) string {
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		dir = p
	}
	_, dev, ok := mountOf(dir)
	if !ok || !strings.HasPrefix(dev, "/dev/") {
		return ""
	}
	if p, err := filepath.EvalSymlinks(dev); err == nil {
		dev = p // /dev/mapper/vg-lv → /dev/dm-0
	}
	return filepath.Base(dev)
}
