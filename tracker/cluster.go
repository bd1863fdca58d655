package tracker

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// ClusterView is what the status page and the metrics show of the cluster at one moment: the
// cached hosts and devices with the monitor's observations, and counts read from the store.
type ClusterView struct {
	Tracker  string    `json:"tracker"` // this tracker's host name
	Version  string    `json:"version"`
	Uptime   string    `json:"uptime"`
	At       time.Time `json:"at"`
	Hosts    []HostView
	Devices  []DeviceView
	Domains  []DomainView
	Queues   QueueView
	Fsck     FsckView
	Queries  QueryView
	Workers  []WorkerView
	Errors   []string // store reads that failed while building the view
	DBReadIn time.Duration
}

// HostView is one storage host.
type HostView struct {
	ID       int
	Name     string
	Addr     string // ip:port of its HTTP server
	Status   string // alive, down, dead, readonly
	Devices  int
	DevsUp   int // devices the monitor reached in its last probe
	Observed bool
}

// DeviceView is one device.
type DeviceView struct {
	ID       int
	Name     string // dev<ID>
	Host     string
	Status   string // the administrative state: alive, down, dead, readonly, drain
	Observed string // the monitor's view: writeable, readable, unreachable, or "" before the first probe
	Err      string // why it is not writeable
	Weight   int
	TotalMB  int64 // 0 when unknown
	UsedMB   int64
	UsePct   int // 0..100
	LastSeen time.Time
}

// DomainView is one domain with its classes.
type DomainView struct {
	Name    string
	Files   int64 // -1 when the count failed
	Classes []ClassView
}

// ClassView is one class of a domain.
type ClassView struct {
	Name        string
	MinDevCount int
	Files       int64 // -1 when the count failed
}

// QueueView holds the lengths of the work queues (rows in the store, due or not).
type QueueView struct {
	Replicate, Delete, Fsck, Rebalance int64
}

// FsckView is the progress of fsck, from the server settings fsck_status reads.
type FsckView struct {
	Running       bool
	Host          string // the tracker running it
	MaxFidChecked int64
	EndFid        int64 // the highest fid when it started
	Percent       int   // MaxFidChecked of EndFid, 0..100
}

// QueryView is the query workers' state.
type QueryView struct {
	Workers, Processing, Pending int64
}

// WorkerView is one background worker.
type WorkerView struct {
	Name    string
	Count   int
	Runs    uint64
	LastRun time.Time
	LastErr string
}

// View builds the ClusterView. Store failures are listed in Errors; the rest is still filled.
func (s *Server) View(ctx context.Context) ClusterView {
	now := time.Now()
	v := ClusterView{Tracker: s.hostname, Version: Version, At: now,
		Uptime: now.Sub(s.started).Truncate(time.Second).String()}
	st := s.Stats()
	v.Queries = QueryView{Workers: int64(s.cfg.QueryWorkers), Processing: st.Processing, Pending: st.Pending}

	snap := s.state.current()
	hostIdx := map[int]int{}
	for _, h := range snap.hosts {
		hostIdx[h.ID] = len(v.Hosts)
		v.Hosts = append(v.Hosts, HostView{ID: h.ID, Name: h.Name, Status: h.Status,
			Addr: h.IP + ":" + strconv.Itoa(h.HTTPPort)})
	}
	for _, d := range s.state.devices() {
		dv := DeviceView{ID: d.dev.ID, Name: devLabel(d.dev.ID), Host: d.host.Name,
			Status: d.dev.Status, Observed: observedState(d.obs, d.observed), Weight: d.dev.Weight}
		if d.observed {
			dv.LastSeen, dv.Err = d.obs.At, d.obs.Err
		}
		if total, used, ok := d.usage(); ok {
			dv.TotalMB, dv.UsedMB = total, used
			dv.UsePct = int(min(100, max(0, used*100/total)))
		}
		v.Devices = append(v.Devices, dv)
		h := &v.Hosts[hostIdx[d.host.ID]]
		h.Devices++
		if d.observed {
			h.Observed = true
			if d.obs.Reachable {
				h.DevsUp++
			}
		}
	}
	fail := func(what string, err error) { v.Errors = append(v.Errors, what+": "+err.Error()) }
	t0 := time.Now()
	for _, d := range snap.domains {
		dv := DomainView{Name: d.Name, Files: -1}
		if n, err := s.st.CountFiles(ctx, d.ID, -1); err == nil {
			dv.Files = n
		} else {
			fail("count files of "+d.Name, err)
		}
		for _, c := range snap.classes[d.ID] {
			cv := ClassView{Name: c.Name, MinDevCount: c.MinDevCount, Files: -1}
			if n, err := s.st.CountFiles(ctx, d.ID, c.ID); err == nil {
				cv.Files = n
			} else {
				fail("count files of "+d.Name+"/"+c.Name, err)
			}
			dv.Classes = append(dv.Classes, cv)
		}
		v.Domains = append(v.Domains, dv)
	}
	for _, q := range []struct {
		q   store.Queue
		dst *int64
	}{
		{store.QueueReplicate, &v.Queues.Replicate}, {store.QueueDelete, &v.Queues.Delete},
		{store.QueueFsck, &v.Queues.Fsck}, {store.QueueRebalance, &v.Queues.Rebalance},
	} {
		n, err := s.st.QueueLen(ctx, q.q)
		if err != nil {
			fail("queue length", err)
			n = -1
		}
		*q.dst = n
	}
	if ss, err := s.st.Settings(ctx); err == nil {
		v.Fsck = FsckView{Running: ss["fsck_host"] != "", Host: ss["fsck_host"],
			MaxFidChecked: perlInt(ss["fsck_highest_fid_checked"]), EndFid: perlInt(ss["fsck_fid_at_end"])}
		if v.Fsck.EndFid > 0 {
			v.Fsck.Percent = int(min(100, max(0, v.Fsck.MaxFidChecked*100/v.Fsck.EndFid)))
		}
	} else {
		fail("server settings", err)
	}
	v.DBReadIn = time.Since(t0)
	if bg := s.background(); bg != nil {
		for name, j := range bg.Jobs() {
			v.Workers = append(v.Workers, WorkerView{Name: name, Count: j.Count, Runs: j.Runs, LastRun: j.LastRun, LastErr: j.LastErr})
		}
		sort.Slice(v.Workers, func(i, j int) bool { return v.Workers[i].Name < v.Workers[j].Name })
	}
	return v
}
