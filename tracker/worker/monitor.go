package worker

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
)

// usageRecorder is what the monitor writes to the store: device usage, under the device_update lock.
type usageRecorder interface {
	store.Locker
	UpdateDeviceUsage(ctx context.Context, devID int, mbTotal, mbUsed, asOf int64) error
}

// usageLimit bounds the usage file read by the monitor.
const usageLimit = 64 << 10

// monitorPass is one device round (spec 5.2): for every monitorable device, read its usage file, write
// its usage to the store now and then, and run a test write now and then. Hosts are probed in
// parallel, the devices of one host in turn, so a host that times out costs one timeout per round.
func (w *Workers) monitorPass(ctx context.Context) (bool, error) {
	w.mu.Lock()
	w.roundsStarted++
	w.mu.Unlock()
	defer w.endRound()
	v, err := w.loadView(ctx)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	for id := range w.state {
		if _, ok := v.devs[id]; !ok {
			delete(w.state, id) // the device was deleted
		}
	}
	w.mu.Unlock()
	byHost := make(map[int][]store.Device)
	for _, d := range v.devs {
		h, ok := v.hosts[d.HostID]
		if !ok || !monitorable(h, d) {
			continue
		}
		byHost[h.ID] = append(byHost[h.ID], d)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.MonitorConcurrency)
	for hostID, devs := range byHost {
		sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
		h := v.hosts[hostID]
		g.Go(func() error {
			hostDown := ""
			for _, d := range devs {
				if gctx.Err() != nil {
					return nil
				}
				var o Observation
				if hostDown != "" {
					o = Observation{At: w.now(), Err: hostDown}
				} else {
					var timeout bool
					o, timeout = w.probeDevice(gctx, h, d)
					if gctx.Err() != nil {
						return nil // stopping: what failed was us, not the node
					}
					if timeout {
						hostDown = "host unreachable: " + o.Err
					}
				}
				w.record(d.ID, o)
			}
			return nil
		})
	}
	g.Wait()
	return false, ctx.Err()
}

func (w *Workers) endRound() {
	w.mu.Lock()
	w.roundsDone++
	close(w.round)
	w.round = make(chan struct{})
	w.mu.Unlock()
	w.stats.monitorRounds.Add(1)
	w.doneOnce.Do(func() { close(w.monitorDone) })
}

// monitorable: host alive or readonly, device alive, readonly or drain (spec 5.2).
func monitorable(h store.Host, d store.Device) bool {
	return (h.Status == "alive" || h.Status == "readonly") &&
		(d.Status == "alive" || d.Status == "readonly" || d.Status == "drain")
}

// stateOf returns the monitor state of devID, adding an empty one if there is none. w.mu must be held.
func (w *Workers) stateOf(devID int) *devState {
	s := w.state[devID]
	if s == nil {
		s = &devState{}
		w.state[devID] = s
	}
	return s
}

func (w *Workers) record(devID int, o Observation) {
	w.mu.Lock()
	w.stateOf(devID).obs = o
	w.mu.Unlock()
	w.obs.Observe(devID, o)
}

// probeDevice observes one device. timeout reports a usage read that timed out, which marks the whole
// host unreachable for the rest of the round.
func (w *Workers) probeDevice(ctx context.Context, h store.Host, d store.Device) (Observation, bool) {
	now := w.now()
	dev := "/dev" + strconv.Itoa(d.ID)
	body, err := w.node.Get(ctx, hostURL(h, true)+dev+"/usage", usageLimit)
	if err != nil {
		return Observation{At: now, Err: "usage: " + err.Error()}, node.IsTimeout(err)
	}
	o := Observation{Reachable: true, At: now}
	u, err := parseUsage(body)
	if err != nil {
		o.Err = err.Error()
		return o, false
	}
	o.MBTotal, o.MBUsed = u.total/1024, u.used/1024

	w.mu.Lock()
	s := w.stateOf(d.ID)
	usageDue := s.lastUsage.IsZero() || now.Sub(s.lastUsage) >= w.cfg.UsageUpdateInterval.D()
	probeDue := s.lastProbe.IsZero() || now.Sub(s.lastProbe) >= w.cfg.WriteProbeInterval.D()
	prev := s.obs
	// A device that was unreachable or unwritable last round is probed at once, so a restarted node
	// takes writes again without waiting out the probe interval.
	probeDue = probeDue || !prev.Writable
	md5Due := !s.probedMD5
	w.mu.Unlock()

	if usageDue && w.writeUsage(ctx, d.ID, o.MBTotal, o.MBUsed, now.Unix()) {
		w.mu.Lock()
		s.lastUsage = now
		w.mu.Unlock()
	}

	if d.Status == "readonly" || h.Status != "alive" {
		o.Err = "not writable: device " + d.Status + ", host " + h.Status
		return o, false
	}
	if !probeDue {
		o.Writable, o.Err, o.RejectBadMD5 = prev.Writable, prev.Err, prev.RejectBadMD5
		return o, false
	}
	if err := w.testWrite(ctx, h, d.ID, now.Unix()); err != nil {
		o.Err = "test write: " + err.Error()
	} else {
		o.Writable = true
	}
	if o.Writable && md5Due {
		rejects, err := w.probeBadMD5(ctx, h, d.ID)
		if err == nil {
			w.mu.Lock()
			s.probedMD5, s.rejectsMD5 = true, rejects
			w.mu.Unlock()
		} else {
			w.log.Debug("monitor: reject_bad_md5 unknown; probing again at the next test write", "devid", d.ID, "err", err)
		}
	}
	w.mu.Lock()
	s.lastProbe = now
	o.RejectBadMD5 = s.rejectsMD5
	w.mu.Unlock()
	return o, false
}

// writeUsage stores a device's usage unless another tracker is doing so right now.
func (w *Workers) writeUsage(ctx context.Context, devID int, total, used, asOf int64) bool {
	unlock, err := w.usage.Lock(ctx, "mgfs:device_update", 0)
	if err != nil {
		if !errors.Is(err, store.ErrLocked) {
			w.log.Warn("monitor: device_update lock", "err", err)
		}
		return false
	}
	defer unlock()
	if err := w.usage.UpdateDeviceUsage(ctx, devID, total, used, asOf); err != nil {
		w.log.Warn("monitor: usage update failed", "devid", devID, "err", err)
		return false
	}
	w.stats.usageUpdates.Add(1)
	return true
}

// testWrite PUTs a small file under /dev<N>/test-write/ and reads it back (spec 4.5); a mismatch is
// retried once.
func (w *Workers) testWrite(ctx context.Context, h store.Host, devID int, now int64) error {
	var last error
	for range 2 {
		path := fmt.Sprintf("/dev%d/test-write/test-write-%d", devID, w.randN(100))
		body := []byte(fmt.Sprintf("time=%d rand=%d", now, w.randN(1<<30)))
		code, err := w.node.Put(ctx, hostURL(h, false)+path, body, map[string]string{"Content-Type": "application/octet-stream"})
		if err != nil {
			return err
		}
		if code/100 != 2 {
			return fmt.Errorf("PUT %s: HTTP %d", path, code)
		}
		got, err := w.node.Get(ctx, hostURL(h, true)+path, int64(len(body))+1)
		if err != nil {
			return err
		}
		if bytes.Equal(got, body) {
			return nil
		}
		last = fmt.Errorf("GET %s returned other bytes than were written", path)
	}
	return last
}

// probeBadMD5 PUTs "." with the Content-MD5 of "!" and reports whether the node refused it (spec
// 4.5). Only a 400 is a refusal, the answer of Perlbal and mogway's storaged to a Content-MD5
// mismatch (spec 4.2, 4.7), and only a 2xx an acceptance. Any other answer (a full disk's
// 507, a 500) says nothing about verification and is returned as an error, so that the probe is
// repeated at the next test write. MogileFS takes every non-2xx for a refusal; here the probe runs
// once per device, so one failed probe would turn off the read-back of the device's replicas for
// as long as the tracker runs.
func (w *Workers) probeBadMD5(ctx context.Context, h store.Host, devID int) (bool, error) {
	sum := md5.Sum([]byte("!"))
	path := fmt.Sprintf("/dev%d/test-write/test-md5", devID)
	code, err := w.node.Put(ctx, hostURL(h, false)+path, []byte("."),
		map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(sum[:])})
	switch {
	case err != nil:
		return false, err
	case code == http.StatusBadRequest:
		return true, nil
	case code/100 == 2:
		return false, nil
	}
	return false, fmt.Errorf("PUT %s with a bad Content-MD5: HTTP %d, neither a refusal (400) nor a success", path, code)
}
