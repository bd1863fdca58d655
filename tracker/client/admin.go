package client

import (
	"context"
	"strconv"
	"strings"

	"github.com/mogway/mogway/tracker/mogproto"
)

// Host is one row of get_hosts.
type Host struct {
	ID          int64  `json:"hostid"`
	Name        string `json:"hostname"`
	Status      string `json:"status"`
	IP          string `json:"hostip"`
	HTTPPort    int    `json:"http_port"`
	HTTPGetPort int    `json:"http_get_port,omitempty"`
	AltIP       string `json:"altip,omitempty"`
	AltMask     string `json:"altmask,omitempty"`
}

// GetHosts lists every host, in the tracker's order.
func (p *Pool) GetHosts(ctx context.Context) ([]Host, error) {
	return rows(ctx, p, mogproto.CmdGetHosts, nil, "hosts", "host", func(f func(string) string) Host {
		return Host{
			ID: atoi64(f("hostid")), Name: f("hostname"), Status: f("status"), IP: f("hostip"),
			HTTPPort: int(atoi64(f("http_port"))), HTTPGetPort: int(atoi64(f("http_get_port"))),
			AltIP: f("altip"), AltMask: f("altmask"),
		}
	})
}

// Device is one row of get_devices. Sizes are in MiB; MBTotal, MBUsed and MBFree are -1 when the
// tracker does not know them yet.
type Device struct {
	ID            int64   `json:"devid"`
	HostID        int64   `json:"hostid"`
	Status        string  `json:"status"`
	Weight        int     `json:"weight"`
	MBTotal       int64   `json:"mb_total"`
	MBUsed        int64   `json:"mb_used"`
	MBFree        int64   `json:"mb_free"`
	MBAsOf        int64   `json:"mb_asof"`
	ObservedState string  `json:"observed_state"`
	Utilization   float64 `json:"utilization"`
	RejectBadMD5  string  `json:"reject_bad_md5"`
}

// GetDevices lists every device, in the tracker's order.
func (p *Pool) GetDevices(ctx context.Context) ([]Device, error) {
	return rows(ctx, p, mogproto.CmdGetDevices, nil, "devices", "dev", func(f func(string) string) Device {
		mb := func(s string) int64 {
			v, err := strconv.ParseInt(f(s), 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
		util, _ := strconv.ParseFloat(f("utilization"), 64)
		return Device{
			ID: atoi64(f("devid")), HostID: atoi64(f("hostid")), Status: f("status"),
			Weight: int(atoi64(f("weight"))), MBTotal: mb("mb_total"), MBUsed: mb("mb_used"),
			MBFree: mb("mb_free"), MBAsOf: atoi64(f("mb_asof")), ObservedState: f("observed_state"),
			Utilization: util, RejectBadMD5: f("reject_bad_md5"),
		}
	})
}

// Class is a file class of a domain, as get_domains reports it.
type Class struct {
	Name        string `json:"name"`
	MinDevCount int    `json:"mindevcount"`
	ReplPolicy  string `json:"replpolicy"`
	HashType    string `json:"hashtype"`
}

// Domain is a domain with its classes (the implicit class "default" included).
type Domain struct {
	Name    string  `json:"domain"`
	Classes []Class `json:"classes"`
}

// GetDomains lists every domain and its classes, in the tracker's order.
func (p *Pool) GetDomains(ctx context.Context) ([]Domain, error) {
	r, err := p.Do(ctx, mogproto.CmdGetDomains, nil)
	if err != nil {
		return nil, err
	}
	n := count(r, "domains")
	out := make([]Domain, 0, n)
	for i := 1; i <= n; i++ {
		name, _ := r.Indexed("domain", i, "")
		d := Domain{Name: name}
		pre := "domain" + strconv.Itoa(i)
		m := count(r, pre+"classes")
		for j := 1; j <= m; j++ {
			f := func(s string) string { v, _ := r.Indexed(pre+"class", j, s); return v }
			d.Classes = append(d.Classes, Class{
				Name: f("name"), MinDevCount: int(atoi64(f("mindevcount"))),
				ReplPolicy: f("replpolicy"), HashType: f("hashtype"),
			})
		}
		out = append(out, d)
	}
	return out, nil
}

// HostSpec describes a host for CreateHost and UpdateHost. Empty strings and zero ports are not
// sent, so UpdateHost changes only the fields that are set.
type HostSpec struct {
	Name    string
	IP      string
	Port    int
	GetPort int
	AltIP   string
	AltMask string
	// Status is alive, down, dead or readonly; the tracker's default for a new host is down.
	Status string
}

func (h HostSpec) args() mogproto.Args {
	a := mogproto.Args{{Name: "host", Value: h.Name}}
	add := func(k, v string) {
		if v != "" {
			a.Add(k, v)
		}
	}
	add("ip", h.IP)
	if h.Port > 0 {
		a.Add("port", strconv.Itoa(h.Port))
	}
	if h.GetPort > 0 {
		a.Add("getport", strconv.Itoa(h.GetPort))
	}
	add("altip", h.AltIP)
	add("altmask", h.AltMask)
	add("status", h.Status)
	return a
}

// CreateHost adds a host and returns its new hostid.
func (p *Pool) CreateHost(ctx context.Context, h HostSpec) (int64, error) {
	r, err := p.Do(ctx, mogproto.CmdCreateHost, h.args())
	if err != nil {
		return 0, err
	}
	id, _ := r.Int("hostid")
	return id, nil
}

// UpdateHost changes the set fields of an existing host.
func (p *Pool) UpdateHost(ctx context.Context, h HostSpec) error {
	_, err := p.Do(ctx, mogproto.CmdUpdateHost, h.args())
	return err
}

// DeleteHost removes a host that has no devices left.
func (p *Pool) DeleteHost(ctx context.Context, name string) error {
	_, err := p.Do(ctx, mogproto.CmdDeleteHost, mogproto.Args{{Name: "host", Value: name}})
	return err
}

// CreateDevice adds device devid on the named host; an empty state means alive.
func (p *Pool) CreateDevice(ctx context.Context, hostname string, devid int64, state string) error {
	a := mogproto.Args{{Name: "hostname", Value: hostname}, {Name: "devid", Value: strconv.FormatInt(devid, 10)}}
	if state != "" {
		a.Add("state", state)
	}
	_, err := p.Do(ctx, mogproto.CmdCreateDevice, a)
	return err
}

// SetState changes a device's state (alive, down, dead, readonly, drain).
func (p *Pool) SetState(ctx context.Context, hostname string, devid int64, state string) error {
	_, err := p.Do(ctx, mogproto.CmdSetState, mogproto.Args{
		{Name: "host", Value: hostname}, {Name: "device", Value: strconv.FormatInt(devid, 10)}, {Name: "state", Value: state},
	})
	return err
}

// SetWeight changes a device's read weight.
func (p *Pool) SetWeight(ctx context.Context, hostname string, devid int64, weight int) error {
	_, err := p.Do(ctx, mogproto.CmdSetWeight, mogproto.Args{
		{Name: "host", Value: hostname}, {Name: "device", Value: strconv.FormatInt(devid, 10)}, {Name: "weight", Value: strconv.Itoa(weight)},
	})
	return err
}

// CreateDomain adds a domain.
func (p *Pool) CreateDomain(ctx context.Context, domain string) error {
	_, err := p.Do(ctx, mogproto.CmdCreateDomain, mogproto.Args{{Name: "domain", Value: domain}})
	return err
}

// DeleteDomain removes a domain that has no files and no classes besides default.
func (p *Pool) DeleteDomain(ctx context.Context, domain string) error {
	_, err := p.Do(ctx, mogproto.CmdDeleteDomain, mogproto.Args{{Name: "domain", Value: domain}})
	return err
}

// ClassSpec describes a class for CreateClass and ModifyClass.
type ClassSpec struct {
	Domain, Class string
	// MinDevCount is required by the tracker (at least 1); it is rewritten on every modify.
	MinDevCount int
	// ReplPolicy such as "MultipleHosts(3)"; empty leaves it unchanged.
	ReplPolicy string
	// HashType is MD5, SHA-1 or NONE; empty leaves it unchanged.
	HashType string
}

func (c ClassSpec) args() mogproto.Args {
	a := mogproto.Args{
		{Name: "domain", Value: c.Domain}, {Name: "class", Value: c.Class},
		{Name: "mindevcount", Value: strconv.Itoa(c.MinDevCount)},
	}
	if c.ReplPolicy != "" {
		a.Add("replpolicy", c.ReplPolicy)
	}
	if c.HashType != "" {
		a.Add("hashtype", c.HashType)
	}
	return a
}

// CreateClass adds a class to a domain (create_class).
func (p *Pool) CreateClass(ctx context.Context, c ClassSpec) error {
	_, err := p.Do(ctx, mogproto.CmdCreateClass, c.args())
	return err
}

// ModifyClass changes a class definition (update_class). It is named for mogadm's "class modify"
// to keep it apart from UpdateClass, which moves one file to another class.
func (p *Pool) ModifyClass(ctx context.Context, c ClassSpec) error {
	_, err := p.Do(ctx, mogproto.CmdUpdateClassDef, c.args())
	return err
}

// DeleteClass removes a class that has no files.
func (p *Pool) DeleteClass(ctx context.Context, domain, class string) error {
	_, err := p.Do(ctx, mogproto.CmdDeleteClass, mogproto.Args{{Name: "domain", Value: domain}, {Name: "class", Value: class}})
	return err
}

// Setting is one server setting.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ServerSettings lists the server settings, in the tracker's order.
func (p *Pool) ServerSettings(ctx context.Context) ([]Setting, error) {
	r, err := p.Do(ctx, mogproto.CmdServerSettings, nil)
	if err != nil {
		return nil, err
	}
	n := count(r, "key_count")
	out := make([]Setting, 0, n)
	for i := 1; i <= n; i++ {
		k, _ := r.Indexed("key_", i, "")
		v, _ := r.Indexed("value_", i, "")
		out = append(out, Setting{k, v})
	}
	return out, nil
}

// ServerSetting returns one server setting; an unset key gives "".
func (p *Pool) ServerSetting(ctx context.Context, key string) (string, error) {
	r, err := p.Do(ctx, mogproto.CmdServerSetting, mogproto.Args{{Name: "key", Value: key}})
	if err != nil {
		return "", err
	}
	return r.Get("value"), nil
}

// SetServerSetting writes a server setting; the tracker validates key and value.
func (p *Pool) SetServerSetting(ctx context.Context, key, value string) error {
	_, err := p.Do(ctx, mogproto.CmdSetServerSetting, mogproto.Args{{Name: "key", Value: key}, {Name: "value", Value: value}})
	return err
}

// FsckStart starts or resumes the background fsck.
func (p *Pool) FsckStart(ctx context.Context) error { return p.simple(ctx, mogproto.CmdFsckStart) }

// FsckStop pauses the background fsck.
func (p *Pool) FsckStop(ctx context.Context) error { return p.simple(ctx, mogproto.CmdFsckStop) }

// FsckClearLog empties the fsck log.
func (p *Pool) FsckClearLog(ctx context.Context) error {
	return p.simple(ctx, mogproto.CmdFsckClearLog)
}

// FsckReset moves the fsck position back to startFid (0 for the beginning) and clears its counters;
// policyOnly makes the next run check replication policy only, without contacting storage nodes.
func (p *Pool) FsckReset(ctx context.Context, policyOnly bool, startFid int64) error {
	po := "0"
	if policyOnly {
		po = "1"
	}
	_, err := p.Do(ctx, mogproto.CmdFsckReset, mogproto.Args{{Name: "policy_only", Value: po}, {Name: "startpos", Value: strconv.FormatInt(startFid, 10)}})
	return err
}

// FsckStatus returns the fsck_status reply as it came: running, host, max_fid_checked, policy_only,
// end_fid, start_time, stop_time, current_time, max_logid and num_<EVCODE> counters.
func (p *Pool) FsckStatus(ctx context.Context) (mogproto.Args, error) {
	return p.Do(ctx, mogproto.CmdFsckStatus, nil)
}

// FsckLogRow is one fsck log entry. DevID is 0 when the entry has none.
type FsckLogRow struct {
	LogID  int64  `json:"logid"`
	UTime  int64  `json:"utime"`
	Fid    int64  `json:"fid"`
	EvCode string `json:"evcode"`
	DevID  int64  `json:"devid,omitempty"`
}

// FsckLog returns up to 100 fsck log rows after the given log id.
func (p *Pool) FsckLog(ctx context.Context, afterLogID int64) ([]FsckLogRow, error) {
	args := mogproto.Args{{Name: "after_logid", Value: strconv.FormatInt(afterLogID, 10)}}
	return rows(ctx, p, mogproto.CmdFsckGetLog, args, "row_count", "row_", func(f func(string) string) FsckLogRow {
		return FsckLogRow{
			LogID: atoi64(f("logid")), UTime: atoi64(f("utime")), Fid: atoi64(f("fid")),
			EvCode: f("evcode"), DevID: atoi64(f("devid")),
		}
	})
}

func (p *Pool) simple(ctx context.Context, cmd string) error {
	_, err := p.Do(ctx, cmd, nil)
	return err
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

// rows sends cmd and decodes the numbered rows of its reply: countKey holds how many there are,
// and row builds one from a lookup of its fields (field f of row i is <prefix><i>_<f>).
func rows[T any](ctx context.Context, p *Pool, cmd string, args mogproto.Args, countKey, prefix string, row func(field func(string) string) T) ([]T, error) {
	r, err := p.Do(ctx, cmd, args)
	if err != nil {
		return nil, err
	}
	n := count(r, countKey)
	out := make([]T, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, row(func(s string) string { v, _ := r.Indexed(prefix, i, "_"+s); return v }))
	}
	return out, nil
}

// count reads a reply's item count, bounded by the number of pairs so that a garbled count cannot
// make a huge allocation.
func count(r mogproto.Args, key string) int {
	n, _ := r.Int(key)
	return int(max(0, min(n, int64(len(r)))))
}
