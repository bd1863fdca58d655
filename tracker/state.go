package tracker

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/worker"
)

// stateLoader is what the tracker's cached view of domains, classes, hosts and devices reads from
// the store.
type stateLoader interface {
	Domains(ctx context.Context) ([]store.Domain, error)
	Classes(ctx context.Context) ([]store.Class, error)
	Hosts(ctx context.Context) ([]store.Host, error)
	Devices(ctx context.Context) ([]store.Device, error)
}

// Observed device states, as get_devices reports them (spec 5.2).
const (
	observedWriteable   = "writeable"
	observedReadable    = "readable"
	observedUnreachable = "unreachable"
)

// Observation is what the monitor learned about one device in its latest probe (Server.Observe).
type Observation = worker.Observation

// state is the tracker's cached view of the namespace and the cluster: domains, classes, hosts and
// devices loaded from the store (every RefreshInterval, and at once after an admin change made
// through this tracker), plus the monitor's observations of each device. Queries read a snapshot;
// nothing in a snapshot is modified after it is published.
type state struct {
	st stateLoader
	// defaultMinDevCount is the mindevcount of a class-less domain's implicit default class.
	defaultMinDevCount int

	mu   sync.RWMutex // guards snap, obs and hung
	snap *snapshot
	obs  map[int]observation // by devid; written by the monitor through Observe
	// hung is when a query last timed out waiting for a host (markHung), by host id. It outranks
	// the observations of the host's devices made before it.
	hung map[int]hungMark

	reloadMu sync.Mutex // serialises reloads so a slow one cannot overwrite a newer one
}

// snapshot is one load of the store's small tables. It is immutable once published.
type snapshot struct {
	domains      []store.Domain // by name
	domainByName map[string]store.Domain
	domainByID   map[int]store.Domain
	classes      map[int][]store.Class // by domain id, default first then by class id
	hosts        []store.Host          // by id
	hostByID     map[int]store.Host
	hostByName   map[string]store.Host
	devices      []store.Device // by id
	deviceByID   map[int]store.Device
}

func newState(st stateLoader, defaultMinDevCount int) *state {
	return &state{
		st:                 st,
		defaultMinDevCount: defaultMinDevCount,
		snap:               emptySnapshot(),
		obs:                map[int]observation{},
		hung:               map[int]hungMark{},
	}
}

func emptySnapshot() *snapshot {
	return &snapshot{
		domainByName: map[string]store.Domain{},
		domainByID:   map[int]store.Domain{},
		classes:      map[int][]store.Class{},
		hostByID:     map[int]store.Host{},
		hostByName:   map[string]store.Host{},
		deviceByID:   map[int]store.Device{},
	}
}

// reload reads the small tables from the store and publishes a new snapshot.
func (s *state) reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	doms, err := s.st.Domains(ctx)
	if err != nil {
		return fmt.Errorf("load domains: %w", err)
	}
	classes, err := s.st.Classes(ctx)
	if err != nil {
		return fmt.Errorf("load classes: %w", err)
	}
	hosts, err := s.st.Hosts(ctx)
	if err != nil {
		return fmt.Errorf("load hosts: %w", err)
	}
	devs, err := s.st.Devices(ctx)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	n := emptySnapshot()
	sort.Slice(doms, func(i, j int) bool { return doms[i].Name < doms[j].Name })
	n.domains = doms
	for _, d := range doms {
		n.domainByName[d.Name] = d
		n.domainByID[d.ID] = d
	}
	hasDefault := map[int]bool{}
	for _, c := range classes {
		if c.ID == 0 {
			c.Name = "default"
			hasDefault[c.DomainID] = true
		}
		n.classes[c.DomainID] = append(n.classes[c.DomainID], c)
	}
	for _, d := range doms {
		if !hasDefault[d.ID] {
			n.classes[d.ID] = append(n.classes[d.ID], store.Class{DomainID: d.ID, ID: 0, Name: "default", MinDevCount: s.defaultMinDevCount})
		}
		cs := n.classes[d.ID]
		sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	n.hosts = hosts
	for _, h := range hosts {
		n.hostByID[h.ID] = h
		n.hostByName[h.Name] = h
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	n.devices = devs
	for _, d := range devs {
		n.deviceByID[d.ID] = d
	}
	s.mu.Lock()
	s.snap = n
	s.mu.Unlock()
	return nil
}

// current returns the latest snapshot.
func (s *state) current() *snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snap
}

// Observe records the monitor's latest result for a device. Safe for concurrent use.
func (s *state) Observe(devID int, o observation) {
	s.mu.Lock()
	s.obs[devID] = o
	s.mu.Unlock()
}

// hungMark is a query's timeout on a host: when it happened and what failed.
type hungMark struct {
	at  time.Time
	err string
}

// markHung records that a query gave up on host hostID, asked at time at, after node_timeout. Each
// device of the host then counts as unreachable until the monitor observes it in a probe that starts
// after at: get_paths neither verifies nor prefers it, create_open does not choose it, and no other
// query waits out node_timeout on it meanwhile. (MogileFS::HTTPFile size does the
// like with %size_check_retry_after: a host whose HEAD failed is not asked again for a while.)
// Safe for concurrent use.
func (s *state) markHung(hostID int, at time.Time, err error) {
	s.mu.Lock()
	if m, ok := s.hung[hostID]; !ok || m.at.Before(at) {
		s.hung[hostID] = hungMark{at: at, err: "query: " + err.Error()}
	}
	s.mu.Unlock()
}

// observationLocked returns the latest observation of device d, or the host's newer hung mark as an
// unreachable observation. s.mu must be held.
func (s *state) observationLocked(d store.Device) (observation, bool) {
	o, ok := s.obs[d.ID]
	if m, hung := s.hung[d.HostID]; hung && (!ok || o.At.Before(m.at)) {
		return observation{At: m.at, Err: m.err}, true
	}
	return o, ok
}

// observation returns the latest observation of a device and whether there is one.
func (s *state) observation(devID int) (observation, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, known := s.snap.deviceByID[devID]
	if !known {
		o, ok := s.obs[devID]
		return o, ok
	}
	return s.observationLocked(d)
}

// observedState names an observation as get_devices does: writeable, readable, unreachable, or ""
// when the device was never observed.
func observedState(o observation, ok bool) string {
	switch {
	case !ok:
		return ""
	case !o.Reachable:
		return observedUnreachable
	case o.Writable:
		return observedWriteable
	}
	return observedReadable
}

// class returns the class of a domain by name.
func (n *snapshot) class(domainID int, name string) (store.Class, bool) {
	for _, c := range n.classes[domainID] {
		if c.Name == name {
			return c, true
		}
	}
	return store.Class{}, false
}

// classByID returns the class of a domain by id. Class 0 always exists for a known domain.
func (n *snapshot) classByID(domainID, id int) (store.Class, bool) {
	for _, c := range n.classes[domainID] {
		if c.ID == id {
			return c, true
		}
	}
	return store.Class{}, false
}

// className is the class name shown for a file: the class's name, or "" for a class that no longer
// exists (file_info and list_fids print what they can).
func (n *snapshot) className(domainID, id int) string {
	if c, ok := n.classByID(domainID, id); ok {
		return c.Name
	}
	return ""
}

// devInfo is everything selection needs to know about one device at one moment.
type devInfo struct {
	dev      store.Device
	host     store.Host
	obs      observation
	observed bool
}

// usage returns the device's total and used MiB and whether they are known. The monitor's
// observation wins over the database copy when it carries usage.
func (d devInfo) usage() (total, used int64, known bool) {
	if d.observed && d.obs.Reachable && d.obs.MBTotal > 0 {
		return d.obs.MBTotal, d.obs.MBUsed, true
	}
	if d.dev.MBAsOf > 0 && d.dev.MBTotal > 0 {
		return d.dev.MBTotal, d.dev.MBUsed, true
	}
	return 0, 0, false
}

// readable is spec 5.3 "readable now": host alive or readonly, device alive, readonly or drain,
// and the monitor last saw the device reachable.
func (d devInfo) readable() bool {
	switch d.host.Status {
	case "alive", "readonly":
	default:
		return false
	}
	switch d.dev.Status {
	case "alive", "readonly", "drain":
	default:
		return false
	}
	return d.observed && d.obs.Reachable
}

// writable is spec 5.3 "can take new files": device alive, observed writeable, host alive, and
// enough free space when usage is known.
func (d devInfo) writable(minFreeMB int64) bool {
	if d.dev.Status != "alive" || d.host.Status != "alive" {
		return false
	}
	if !d.observed || !d.obs.Reachable || !d.obs.Writable {
		return false
	}
	if total, used, known := d.usage(); known && total-used < minFreeMB {
		return false
	}
	return true
}

// devices returns the known devices with their hosts and observations; devices whose host is
// unknown are left out.
func (s *state) devices() []devInfo {
	n := s.current()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]devInfo, 0, len(n.devices))
	for _, d := range n.devices {
		h, ok := n.hostByID[d.HostID]
		if !ok {
			continue
		}
		o, seen := s.observationLocked(d)
		out = append(out, devInfo{dev: d, host: h, obs: o, observed: seen})
	}
	return out
}

// device returns one device with its host and observation.
func (s *state) device(id int) (devInfo, bool) {
	n := s.current()
	d, ok := n.deviceByID[id]
	if !ok {
		return devInfo{}, false
	}
	h, ok := n.hostByID[d.HostID]
	if !ok {
		return devInfo{}, false
	}
	o, seen := s.observation(id)
	return devInfo{dev: d, host: h, obs: o, observed: seen}, true
}
