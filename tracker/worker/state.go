package worker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// viewLoader is what loadView reads from the store.
type viewLoader interface {
	Hosts(ctx context.Context) ([]store.Host, error)
	Devices(ctx context.Context) ([]store.Device, error)
}

// devState is the monitor's memory of one device.
type devState struct {
	obs        Observation
	lastProbe  time.Time // last test write
	lastUsage  time.Time // last usage row written
	probedMD5  bool      // the bad Content-MD5 probe has run
	rejectsMD5 bool      // its result
}

// view is one consistent picture of the cluster for a pass: the store's hosts and devices plus this
// tracker's observations.
type view struct {
	hosts   map[int]store.Host
	devs    map[int]store.Device
	obs     map[int]Observation
	minFree int64 // MiB
	hung    *hungHosts
}

// hungHosts is the set of hosts a request of one pass gave up on after node_timeout (noteErr); the
// pass's jobs share it, since its view's observations were copied before.
type hungHosts struct {
	mu  sync.Mutex // guards ids
	ids map[int]bool
}

// noteErr handles err from a request to devID made during the pass of view v. When it says the node
// did not answer in time while ctx was live, every device of the host is observed unreachable: the
// rest of the pass, later passes and the tracker's selection skip the host instead of each waiting
// out node_timeout, until the monitor's next probe of it (asked for now) says otherwise.
func (w *Workers) noteErr(ctx context.Context, v *view, devID int, err error) {
	d, ok := v.devs[devID]
	if !ok || ctx.Err() != nil || !node.IsTimeout(err) {
		return
	}
	v.hung.add(d.HostID)
	o := Observation{At: w.now(), Err: "host unreachable: " + err.Error()}
	var marked []int
	w.mu.Lock()
	for id, dd := range v.devs {
		if s := w.state[id]; dd.HostID == d.HostID && s != nil && !s.obs.At.After(o.At) {
			s.obs = o
			marked = append(marked, id)
		}
	}
	w.mu.Unlock()
	for _, id := range marked {
		w.obs.Observe(id, o)
	}
	w.Kick(JobMonitor) // a round now confirms the mark, or lifts it
}

// isHung reports whether a request of this pass gave up on devID's host.
func (v *view) isHung(devID int) bool {
	d, ok := v.devs[devID]
	return ok && v.hung.has(d.HostID)
}

func (h *hungHosts) add(hostID int) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.ids[hostID] = true
	h.mu.Unlock()
}

// has reports whether hostID is in h; a nil h (a view built without loadView) holds nothing.
func (h *hungHosts) has(hostID int) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[hostID]
}

func (w *Workers) loadView(ctx context.Context) (*view, error) {
	hosts, err := w.views.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	devs, err := w.views.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("load devices: %w", err)
	}
	v := &view{
		hosts:   make(map[int]store.Host, len(hosts)),
		devs:    make(map[int]store.Device, len(devs)),
		obs:     make(map[int]Observation, len(devs)),
		minFree: int64(w.cfg.MinFreeSpace) >> 20,
		hung:    &hungHosts{ids: map[int]bool{}},
	}
	for _, h := range hosts {
		v.hosts[h.ID] = h
	}
	for _, d := range devs {
		v.devs[d.ID] = d
	}
	w.mu.Lock()
	for id, s := range w.state {
		if !s.obs.At.IsZero() {
			v.obs[id] = s.obs
		}
	}
	w.mu.Unlock()
	return v, nil
}

func (v *view) host(devID int) (store.Device, store.Host, bool) {
	d, ok := v.devs[devID]
	if !ok {
		return d, store.Host{}, false
	}
	h, ok := v.hosts[d.HostID]
	return d, h, ok
}

// readable reports "readable now" (spec 5.3): the device is monitorable (host alive or readonly, device
// alive, readonly or drain), the monitor reached it, and no request of this pass gave up on its host.
func (v *view) readable(devID int) bool {
	d, h, ok := v.host(devID)
	return ok && monitorable(h, d) && v.obs[devID].Reachable && !v.isHung(devID)
}

// writable reports "can take new files or replicas" (spec 5.3).
func (v *view) writable(devID int) bool {
	d, h, ok := v.host(devID)
	if !ok || d.Status != "alive" || h.Status != "alive" || !v.obs[devID].Writable || v.isHung(devID) {
		return false
	}
	free, known := v.freeMB(devID)
	return !known || free >= v.minFree
}

// canDelete reports "can delete from" (spec 5.3).
func (v *view) canDelete(devID int) bool {
	d, h, ok := v.host(devID)
	return ok && h.Status == "alive" && (d.Status == "alive" || d.Status == "drain")
}

// usageMB returns the device's total and used MiB from the freshest usage known: this tracker's
// observation, else the device row. total <= 0 means none is known.
func (v *view) usageMB(devID int) (total, used int64) {
	if o := v.obs[devID]; o.MBTotal > 0 {
		return o.MBTotal, o.MBUsed
	}
	d := v.devs[devID]
	return d.MBTotal, d.MBUsed
}

// freeMB returns the device's free space in MiB from the freshest usage known, and whether any is.
func (v *view) freeMB(devID int) (int64, bool) {
	total, used := v.usageMB(devID)
	if total <= 0 {
		return 0, false
	}
	return total - used, true
}

// percentFree returns 1 - used/total, or 0 when usage is unknown.
func (v *view) percentFree(devID int) float64 {
	total, used := v.usageMB(devID)
	if total <= 0 {
		return 0
	}
	return 1 - float64(used)/float64(total)
}

// url returns the URL of fid on devID: the write port, or the GET port when get is set and the host has
// one.
func (v *view) url(devID int, fid int64, get bool) (string, bool) {
	_, h, ok := v.host(devID)
	if !ok {
		return "", false
	}
	return hostURL(h, get) + FidPath(devID, fid), true
}

func hostURL(h store.Host, get bool) string {
	port := h.HTTPPort
	if get && h.HTTPGetPort > 0 {
		port = h.HTTPGetPort
	}
	return "http://" + net.JoinHostPort(h.IP, strconv.Itoa(port))
}

// FidPath is the path of a fid on a device (spec 4.1): the fid in decimal, left-padded with zeros to
// 10 digits, split as /dev<N>/<b>/<mmm>/<ttt>/<fid>.fid. Longer fids are not padded or truncated;
// their directories come from their first 7 digits.
func FidPath(devID int, fid int64) string {
	var buf [64]byte
	return string(AppendFidPath(buf[:0], devID, fid))
}

// AppendFidPath appends FidPath(devID, fid) to dst.
func AppendFidPath(dst []byte, devID int, fid int64) []byte {
	var num, padded [20]byte
	s := strconv.AppendInt(num[:0], fid, 10)
	if len(s) < 10 {
		k := copy(padded[:], "0000000000"[len(s):])
		s = padded[:k+copy(padded[k:], s)]
	}
	dst = append(dst, "/dev"...)
	dst = strconv.AppendInt(dst, int64(devID), 10)
	dst = append(dst, '/')
	dst = append(dst, s[0:1]...)
	dst = append(dst, '/')
	dst = append(dst, s[1:4]...)
	dst = append(dst, '/')
	dst = append(dst, s[4:7]...)
	dst = append(dst, '/')
	dst = append(dst, s...)
	return append(dst, ".fid"...)
}
