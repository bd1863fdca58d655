package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mogway/mogway/tracker/store"
)

// maxRaceAttempts bounds how often a transaction that raced with another tracker is run again.
const maxRaceAttempts = 10

// errRaced signals that a concurrent writer got there first (it took the id allocated, or
// committed the key being written) and the transaction must run again.
var errRaced = errors.New("raced with a concurrent writer")

// nextID returns MAX(col)+1 of table inside tx (1 for an empty table), with an optional filter.
func nextID(ctx context.Context, tx *sql.Tx, table, col, where string, args ...any) (int64, error) {
	q := "SELECT COALESCE(MAX(" + col + "), 0) + 1 FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var id int64
	err := tx.QueryRowContext(ctx, q, args...).Scan(&id)
	return id, err
}

// allocate runs a transaction again, a bounded number of times, while it returns errRaced.
func (s *Store) allocate(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	for i := 0; ; i++ {
		err := s.tx(ctx, what, fn)
		if errors.Is(err, errRaced) && i < maxRaceAttempts {
			if err := pause(ctx, min(i+1, maxTxAttempts)); err != nil {
				return s.errf(what, err)
			}
			continue
		}
		return err
	}
}

// Domains lists every domain by id.
func (s *Store) Domains(ctx context.Context) ([]store.Domain, error) {
	return queryAll(ctx, s, "list domains", func(sc rowScanner) (store.Domain, error) {
		var d store.Domain
		var name sql.NullString
		err := sc.Scan(&d.ID, &name)
		d.Name = name.String
		return d, err
	}, "SELECT dmid, namespace FROM domain ORDER BY dmid")
}

// CreateDomain adds a domain with the next free id.
func (s *Store) CreateDomain(ctx context.Context, name string) (store.Domain, error) {
	d := store.Domain{Name: name}
	err := s.allocate(ctx, "create domain", func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM domain WHERE namespace = ?", name).Scan(&one); {
		case err == nil:
			return s.exists("domain %q", name)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		id, err := nextID(ctx, tx, "domain", "dmid", "")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO domain (dmid, namespace) VALUES (?, ?)", id, name); err != nil {
			if s.d.IsDup(err) {
				return errRaced
			}
			return err
		}
		d.ID = int(id)
		return nil
	})
	if err != nil {
		return store.Domain{}, err
	}
	return d, nil
}

// DeleteDomain removes a domain and its stored default-class row. Whether it still has files or
// classes is the caller's check.
func (s *Store) DeleteDomain(ctx context.Context, id int) error {
	return s.tx(ctx, "delete domain", func(tx *sql.Tx) error {
		err := execOne(ctx, tx, func() error { return s.notFound("domain %d", id) },
			"DELETE FROM domain WHERE dmid = ?", id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM class WHERE dmid = ? AND classid = 0", id)
		return err
	})
}

// Classes lists the stored class rows by domain and class id.
func (s *Store) Classes(ctx context.Context) ([]store.Class, error) {
	return queryAll(ctx, s, "list classes", func(sc rowScanner) (store.Class, error) {
		var c store.Class
		var name, repl sql.NullString
		var hash sql.NullInt64
		err := sc.Scan(&c.DomainID, &c.ID, &name, &c.MinDevCount, &hash, &repl)
		c.Name, c.HashType, c.ReplPolicy = name.String, store.Hash(hash.Int64), repl.String
		return c, err
	}, "SELECT dmid, classid, classname, mindevcount, hashtype, replpolicy FROM class ORDER BY dmid, classid")
}

// maxClassID is the largest classid the schema holds (TINYINT UNSIGNED).
const maxClassID = 255

// CreateClass stores a class. The name "default" always gets id 0; otherwise c.ID > 0 is used as
// given and 0 allocates the next id of the domain.
func (s *Store) CreateClass(ctx context.Context, c store.Class) (store.Class, error) {
	if c.Name == "default" {
		c.ID = 0
	}
	explicit := c.Name == "default" || c.ID > 0
	err := s.allocate(ctx, "create class", func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM class WHERE dmid = ? AND classname = ?", c.DomainID, c.Name).Scan(&one); {
		case err == nil:
			return s.exists("class %q in domain %d", c.Name, c.DomainID)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if !explicit {
			id, err := nextID(ctx, tx, "class", "classid", "dmid = ?", c.DomainID)
			if err != nil {
				return err
			}
			if id > maxClassID {
				return fmt.Errorf("domain %d has no class id left (max %d)", c.DomainID, maxClassID)
			}
			c.ID = int(id)
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO class (dmid, classid, classname, mindevcount, hashtype, replpolicy) VALUES (?, ?, ?, ?, ?, ?)",
			c.DomainID, c.ID, c.Name, c.MinDevCount, nullInt(int64(c.HashType)), nullStr(c.ReplPolicy))
		if err != nil && s.d.IsDup(err) {
			if explicit {
				return s.exists("class %d in domain %d", c.ID, c.DomainID)
			}
			return errRaced
		}
		return err
	})
	if err != nil {
		return store.Class{}, err
	}
	return c, nil
}

// UpdateClass rewrites a class row (name, mindevcount, hashtype, replpolicy).
func (s *Store) UpdateClass(ctx context.Context, c store.Class) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("class %d in domain %d", c.ID, c.DomainID) },
		"UPDATE class SET classname = ?, mindevcount = ?, hashtype = ?, replpolicy = ? WHERE dmid = ? AND classid = ?",
		c.Name, c.MinDevCount, nullInt(int64(c.HashType)), nullStr(c.ReplPolicy), c.DomainID, c.ID)
	switch {
	case err == nil || isSentinel(err):
		return err
	case s.d.IsDup(err):
		return s.exists("class %q in domain %d", c.Name, c.DomainID)
	}
	return s.errf("update class", err)
}

// DeleteClass removes a class row.
func (s *Store) DeleteClass(ctx context.Context, domainID, classID int) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("class %d in domain %d", classID, domainID) },
		"DELETE FROM class WHERE dmid = ? AND classid = ?", domainID, classID)
	if err != nil && !isSentinel(err) {
		return s.errf("delete class", err)
	}
	return err
}

// CountFiles counts the files of a domain, or of one class when classID >= 0.
func (s *Store) CountFiles(ctx context.Context, domainID int, classID int) (int64, error) {
	var n int64
	var err error
	if classID < 0 {
		err = s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM file WHERE dmid = ?", domainID).Scan(&n)
	} else {
		err = s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM file WHERE dmid = ? AND classid = ?", domainID, classID).Scan(&n)
	}
	if err != nil {
		return 0, s.errf("count files", err)
	}
	return n, nil
}

const hostCols = "hostid, status, hostname, hostip, http_port, http_get_port, altip, altmask"

// Hosts lists every host by id.
func (s *Store) Hosts(ctx context.Context) ([]store.Host, error) {
	return queryAll(ctx, s, "list hosts", func(sc rowScanner) (store.Host, error) {
		var h store.Host
		var status, name, ip, altip, altmask sql.NullString
		var port, getport sql.NullInt64
		err := sc.Scan(&h.ID, &status, &name, &ip, &port, &getport, &altip, &altmask)
		h.Status, h.Name, h.IP, h.AltIP, h.AltMask = status.String, name.String, ip.String, altip.String, altmask.String
		h.HTTPPort, h.HTTPGetPort = int(port.Int64), int(getport.Int64)
		return h, err
	}, "SELECT "+hostCols+" FROM host ORDER BY hostid")
}

// CreateHost adds a host, allocating the next id unless h.ID > 0.
func (s *Store) CreateHost(ctx context.Context, h store.Host) (store.Host, error) {
	explicit := h.ID > 0
	err := s.allocate(ctx, "create host", func(tx *sql.Tx) error {
		if !explicit {
			id, err := nextID(ctx, tx, "host", "hostid", "")
			if err != nil {
				return err
			}
			h.ID = int(id)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO host ("+hostCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			h.ID, nullStr(h.Status), h.Name, nullStr(h.IP), h.HTTPPort, nullInt(int64(h.HTTPGetPort)),
			nullStr(h.AltIP), nullStr(h.AltMask))
		if err == nil || !s.d.IsDup(err) {
			return err
		}
		// Tell a name or address clash from a concurrent tracker taking the same id.
		var one int
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM host WHERE hostname = ? OR hostip = ? OR altip = ? OR altip = ? OR hostip = ?",
			h.Name, nullStr(h.IP), nullStr(h.AltIP), nullStr(h.IP), nullStr(h.AltIP)).Scan(&one)
		switch {
		case err == nil || explicit:
			return s.exists("host %q (%s)", h.Name, h.IP)
		case errors.Is(err, sql.ErrNoRows):
			return errRaced
		}
		return err
	})
	if err != nil {
		return store.Host{}, err
	}
	return h, nil
}

// UpdateHost rewrites every column of a host row.
func (s *Store) UpdateHost(ctx context.Context, h store.Host) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("host %d", h.ID) },
		"UPDATE host SET status = ?, hostname = ?, hostip = ?, http_port = ?, http_get_port = ?, altip = ?, altmask = ? WHERE hostid = ?",
		nullStr(h.Status), h.Name, nullStr(h.IP), h.HTTPPort, nullInt(int64(h.HTTPGetPort)), nullStr(h.AltIP), nullStr(h.AltMask), h.ID)
	switch {
	case err == nil || isSentinel(err):
		return err
	case s.d.IsDup(err):
		return s.exists("host %q (%s)", h.Name, h.IP)
	}
	return s.errf("update host", err)
}

// DeleteHost removes a host row. Whether it still has devices is the caller's check.
func (s *Store) DeleteHost(ctx context.Context, id int) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("host %d", id) }, "DELETE FROM host WHERE hostid = ?", id)
	if err != nil && !isSentinel(err) {
		return s.errf("delete host", err)
	}
	return err
}

// Devices lists every device by id.
func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	return queryAll(ctx, s, "list devices", func(sc rowScanner) (store.Device, error) {
		var d store.Device
		var status sql.NullString
		var weight, total, used, asof sql.NullInt64
		err := sc.Scan(&d.ID, &d.HostID, &status, &weight, &total, &used, &asof)
		d.Status, d.Weight = status.String, int(weight.Int64)
		d.MBTotal, d.MBUsed, d.MBAsOf = total.Int64, used.Int64, asof.Int64
		return d, err
	}, "SELECT devid, hostid, status, weight, mb_total, mb_used, mb_asof FROM device ORDER BY devid")
}

// DefaultWeight is the weight CreateDevice stores for a Device with Weight 0, as MogileFS does.
const DefaultWeight = 100

// CreateDevice adds a device with its operator-chosen id. Weight 0 stores DefaultWeight; usage
// columns start unknown (NULL) unless given.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	w := d.Weight
	if w == 0 {
		w = DefaultWeight
	}
	_, err := s.w.ExecContext(ctx,
		"INSERT INTO device (devid, hostid, status, weight, mb_total, mb_used, mb_asof) VALUES (?, ?, ?, ?, ?, ?, ?)",
		d.ID, d.HostID, nullStr(d.Status), w, nullInt(d.MBTotal), nullInt(d.MBUsed), nullInt(d.MBAsOf))
	switch {
	case err == nil:
		return nil
	case s.d.IsDup(err):
		return s.exists("device %d", d.ID)
	}
	return s.errf("create device", err)
}

// UpdateDevice sets a device's status, weight and host.
func (s *Store) UpdateDevice(ctx context.Context, d store.Device) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("device %d", d.ID) },
		"UPDATE device SET status = ?, weight = ?, hostid = ? WHERE devid = ?", nullStr(d.Status), d.Weight, d.HostID, d.ID)
	if err != nil && !isSentinel(err) {
		return s.errf("update device", err)
	}
	return err
}

// UpdateDeviceUsage records a device's size and use in MiB as of a unix time.
func (s *Store) UpdateDeviceUsage(ctx context.Context, devID int, mbTotal, mbUsed, asOf int64) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("device %d", devID) },
		"UPDATE device SET mb_total = ?, mb_used = ?, mb_asof = ? WHERE devid = ?", mbTotal, mbUsed, asOf, devID)
	if err != nil && !isSentinel(err) {
		return s.errf("update device usage", err)
	}
	return err
}

// DeleteDevice removes a device row.
func (s *Store) DeleteDevice(ctx context.Context, id int) error {
	err := execOne(ctx, s.w, func() error { return s.notFound("device %d", id) }, "DELETE FROM device WHERE devid = ?", id)
	if err != nil && !isSentinel(err) {
		return s.errf("delete device", err)
	}
	return err
}
