package tracker

import (
	"context"

	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
)

// hostCommander is what the host and device commands ask of the store; they read hosts and
// devices from the tracker's state.
type hostCommander interface {
	CreateHost(ctx context.Context, h store.Host) (store.Host, error)
	UpdateHost(ctx context.Context, h store.Host) error
	DeleteHost(ctx context.Context, id int) error
	CreateDevice(ctx context.Context, d store.Device) error
	UpdateDevice(ctx context.Context, d store.Device) error
}

func validHostState(s string) bool {
	switch s {
	case "alive", "down", "dead", "readonly":
		return true
	}
	return false
}

func validDeviceState(s string) bool {
	switch s {
	case "alive", "down", "dead", "readonly", "drain":
		return true
	}
	return false
}

func (q *query) createHost() (mogproto.Args, error) { return q.createOrUpdateHost(false) }
func (q *query) updateHost() (mogproto.Args, error) { return q.createOrUpdateHost(true) }

// createOrUpdateHost is create_host and update_host (spec 3.3). Argument names differ from the
// columns: ip is hostip, port http_port, getport http_get_port.
func (q *query) createOrUpdateHost(update bool) (mogproto.Args, error) {
	name := q.args.Get("host")
	if !truthy(name) {
		return nil, perr(mogproto.ErrNoHost)
	}
	if err := q.refresh(); err != nil {
		return nil, err
	}
	h, exists := q.s.state.current().hostByName[name]
	status, hasStatus := q.args.Lookup("status")
	if update {
		if !exists {
			return nil, perr(mogproto.ErrHostNotFound)
		}
	} else {
		if exists {
			return nil, perr(mogproto.ErrHostExists)
		}
		if !truthy(q.args.Get("ip")) {
			return nil, perr(mogproto.ErrNoIP)
		}
		if !truthy(q.args.Get("port")) {
			return nil, perr(mogproto.ErrNoPort)
		}
		if !truthy(status) {
			status, hasStatus = "down", true
		}
		h = store.Host{Name: name}
	}
	if hasStatus && truthy(status) {
		if !validHostState(status) {
			return nil, perr(mogproto.ErrUnknownState)
		}
		h.Status = status
	}
	if v, ok := q.args.Lookup("ip"); ok {
		h.IP = v
	}
	if v, ok := q.args.Lookup("port"); ok {
		h.HTTPPort = int(perlInt(v))
	}
	if v, ok := q.args.Lookup("getport"); ok {
		h.HTTPGetPort = int(perlInt(v))
	}
	if v, ok := q.args.Lookup("altip"); ok {
		h.AltIP = v
	}
	if v, ok := q.args.Lookup("altmask"); ok {
		h.AltMask = v
	}
	var err error
	if update {
		err = q.s.inventory.UpdateHost(q.ctx, h)
	} else {
		h, err = q.s.inventory.CreateHost(q.ctx, h)
	}
	if err := q.saved("create_host", err, mogproto.ErrDup, mogproto.ErrHostNotFound); err != nil {
		return nil, err
	}
	return mogproto.Args{{Name: "hostid", Value: itoa(h.ID)}, {Name: "hostname", Value: name}}, nil
}

func (q *query) deleteHost() (mogproto.Args, error) {
	if err := q.refresh(); err != nil {
		return nil, err
	}
	n := q.s.state.current()
	h, ok := n.hostByName[q.args.Get("host")]
	if !ok {
		return nil, perr(mogproto.ErrUnknownHost)
	}
	for _, d := range n.devices {
		if d.HostID == h.ID {
			return nil, perr(mogproto.ErrHostNotEmpty)
		}
	}
	if err := q.s.inventory.DeleteHost(q.ctx, h.ID); err != nil && !isNotFound(err) {
		return nil, q.dbErr("delete_host", err)
	}
	return nil, q.refresh()
}

func (q *query) getHosts() (mogproto.Args, error) {
	want, filter := q.args.Lookup("hostid")
	res := mogproto.Args{{Name: "hosts", Value: "0"}}
	i := 0
	for _, h := range q.s.state.current().hosts {
		if filter && int64(h.ID) != perlInt(want) {
			continue
		}
		i++
		p := "host" + itoa(i) + "_"
		res.Add(p+"hostid", itoa(h.ID))
		res.Add(p+"status", h.Status)
		res.Add(p+"hostname", h.Name)
		res.Add(p+"hostip", h.IP)
		res.Add(p+"http_port", optInt(h.HTTPPort))
		res.Add(p+"http_get_port", optInt(h.HTTPGetPort))
		res.Add(p+"altip", h.AltIP)
		res.Add(p+"altmask", h.AltMask)
	}
	res.Set("hosts", itoa(i))
	return res, nil
}

func (q *query) createDevice() (mogproto.Args, error) {
	status := q.args.Get("state")
	if !truthy(status) {
		status = "alive"
	}
	if !validDeviceState(status) {
		return nil, perr(mogproto.ErrInvalidState)
	}
	devid := q.args.Get("devid")
	if !isDigits(devid) || perlInt(devid) == 0 || perlInt(devid) > 1<<24-1 {
		return nil, perr(mogproto.ErrInvalidDevid)
	}
	if err := q.refresh(); err != nil {
		return nil, err
	}
	n := q.s.state.current()
	var hostID int
	if hid := q.args.Get("hostid"); truthy(hid) && isDigits(hid) {
		h, ok := n.hostByID[int(perlInt(hid))]
		if !ok {
			return nil, perr(mogproto.ErrUnknownHostid)
		}
		hostID = h.ID
	} else if hn := q.args.Get("hostname"); truthy(hn) {
		h, ok := n.hostByName[hn]
		if !ok {
			return nil, perr(mogproto.ErrUnknownHost)
		}
		hostID = h.ID
	} else {
		return nil, perrMsg(mogproto.ErrBadArgs, "No hostid/hostname parameter")
	}
	err := q.s.inventory.CreateDevice(q.ctx, store.Device{ID: int(perlInt(devid)), HostID: hostID, Status: status, Weight: 100})
	if isExists(err) {
		return nil, perr(mogproto.ErrExistingDevid)
	}
	if err != nil {
		return nil, q.dbErr("create_device", err)
	}
	return nil, q.refresh()
}

// deviceOfHost finds the device named by the `device` argument and checks it is on `host`.
func (q *query) deviceOfHost() (store.Device, error) {
	if err := q.refresh(); err != nil {
		return store.Device{}, err
	}
	n := q.s.state.current()
	d, ok := n.deviceByID[int(perlInt(q.args.Get("device")))]
	if !ok {
		return store.Device{}, perr(mogproto.ErrNoDevice)
	}
	if h, ok := n.hostByID[d.HostID]; !ok || h.Name != q.args.Get("host") {
		return store.Device{}, perr(mogproto.ErrHostMismatch)
	}
	return d, nil
}

func (q *query) setState() (mogproto.Args, error) {
	state := q.args.Get("state")
	if !truthy(q.args.Get("host")) || perlInt(q.args.Get("device")) == 0 || !validDeviceState(state) {
		return nil, perr(mogproto.ErrBadParams)
	}
	d, err := q.deviceOfHost()
	if err != nil {
		return nil, err
	}
	// dead is final: dead -> alive is refused (dead -> down -> alive is the deliberate way back).
	if d.Status == "dead" && state == "alive" {
		return nil, perr(mogproto.ErrStateTooHigh)
	}
	d.Status = state
	if err := q.s.inventory.UpdateDevice(q.ctx, d); err != nil {
		if isNotFound(err) {
			return nil, perr(mogproto.ErrNoDevice)
		}
		return nil, q.dbErr("set_state", err)
	}
	return nil, q.refresh()
}

func (q *query) setWeight() (mogproto.Args, error) {
	weight := perlInt(q.args.Get("weight"))
	if !truthy(q.args.Get("host")) || perlInt(q.args.Get("device")) == 0 || weight < 0 || weight > 1<<23-1 {
		return nil, perr(mogproto.ErrBadParams)
	}
	d, err := q.deviceOfHost()
	if err != nil {
		return nil, err
	}
	d.Weight = int(weight)
	if err := q.s.inventory.UpdateDevice(q.ctx, d); err != nil {
		if isNotFound(err) {
			return nil, perr(mogproto.ErrNoDevice)
		}
		return nil, q.dbErr("set_weight", err)
	}
	return nil, q.refresh()
}

func (q *query) getDevices() (mogproto.Args, error) {
	want, filter := q.args.Lookup("devid")
	res := mogproto.Args{{Name: "devices", Value: "0"}}
	i := 0
	for _, d := range q.s.state.current().devices {
		if filter && int64(d.ID) != perlInt(want) {
			continue
		}
		i++
		p := "dev" + itoa(i) + "_"
		res.Add(p+"devid", itoa(d.ID))
		res.Add(p+"hostid", itoa(d.HostID))
		res.Add(p+"status", d.Status)
		res.Add(p+"weight", itoa(d.Weight))
		known := d.MBAsOf > 0 || d.MBTotal > 0
		if known {
			res.Add(p+"mb_total", i64toa(d.MBTotal))
			res.Add(p+"mb_used", i64toa(d.MBUsed))
			res.Add(p+"mb_asof", i64toa(d.MBAsOf))
			res.Add(p+"mb_free", i64toa(d.MBTotal-d.MBUsed))
		} else {
			res.Add(p+"mb_total", "")
			res.Add(p+"mb_used", "")
			res.Add(p+"mb_asof", "")
			res.Add(p+"mb_free", "")
		}
		o, seen := q.s.state.observation(d.ID)
		res.Add(p+"observed_state", observedState(o, seen))
		res.Add(p+"utilization", "")
		rb := ""
		if seen && o.Writable {
			rb = "0"
			if o.RejectBadMD5 {
				rb = "1"
			}
		}
		res.Add(p+"reject_bad_md5", rb)
	}
	res.Set("devices", itoa(i))
	return res, nil
}
