package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// maxReseeds bounds the re-seeding loop of fid allocation. Each round moves the counter above
// every taken fid (MaxTakenFidQuery), so a second round is only needed when another tracker
// commits meanwhile.
const maxReseeds = 10

// A fid is taken when it is a file or is still queued for deletion: the delete worker removes the
// paths a queued fid names, and those are derived from the fid alone, so a new upload given that
// fid would lose its bytes between its PUT and create_close, or after create_close checked their
// size. Spec 6.2 guards only file.fid; a counter that went back (InnoDB before MariaDB 10.2 /
// MySQL 8 resets it to MAX+1 of tempfile on restart; a restored or hand-edited database) can
// fall below a deleted file's fid as well. file_to_delete and file_to_delete_later are the legacy
// queue a Perl tracker on the same database still drains.
const (
	// fidTakenQuery returns a row when the fid ? (given four times) is taken: four primary key
	// probes in one round trip.
	fidTakenQuery = `SELECT 1 FROM file WHERE fid = ?
		UNION ALL SELECT 1 FROM file_to_delete2 WHERE fid = ?
		UNION ALL SELECT 1 FROM file_to_delete WHERE fid = ?
		UNION ALL SELECT 1 FROM file_to_delete_later WHERE fid = ? LIMIT 1`
	// MaxTakenFidQuery returns the highest taken fid, or 0: each MAX reads one end of a primary key.
	// The backup package puts it in its own floor (a restored database's first fid).
	MaxTakenFidQuery = `SELECT COALESCE(MAX(m), 0) FROM (
		SELECT MAX(fid) AS m FROM file
		UNION ALL SELECT MAX(fid) FROM file_to_delete2
		UNION ALL SELECT MAX(fid) FROM file_to_delete
		UNION ALL SELECT MAX(fid) FROM file_to_delete_later) AS taken`
)

// fidTaken reports whether fid is a file or queued for deletion (see fidTakenQuery).
func fidTaken(ctx context.Context, q querier, fid int64) (bool, error) {
	var one int
	switch err := q.QueryRowContext(ctx, fidTakenQuery, fid, fid, fid, fid).Scan(&one); {
	case err == nil:
		return true, nil
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	default:
		return false, err
	}
}

// CreateTempfile inserts an open upload. With t.Fid == 0 it allocates a fresh fid (spec 6.2): the
// tempfile auto-increment gives a candidate, and when that candidate is taken (a file, or queued
// for deletion; see fidTakenQuery) or is not above the floor read at open, the counter is
// re-seeded above the highest taken fid and the insert repeated. An explicit fid that is taken or
// a tempfile already, or not above the floor, is ErrFidInUse.
func (s *Store) CreateTempfile(ctx context.Context, t store.Tempfile) (int64, error) {
	if err := s.checkKey(t.Key); err != nil {
		return 0, err
	}
	if t.CreateTime == 0 {
		t.CreateTime = time.Now().Unix()
	}
	devids := store.JoinDevIDs(t.DevIDs)
	if t.Fid > 0 {
		return t.Fid, s.createTempfileAt(ctx, t, devids)
	}
	for i := 0; i < maxReseeds; i++ {
		var fid int64
		fresh := false
		err := s.tx(ctx, "create tempfile", func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, "INSERT INTO tempfile (createtime, classid, dmid, dkey, devids) VALUES (?, ?, ?, ?, ?)",
				t.CreateTime, t.ClassID, t.DomainID, t.Key, devids)
			if err != nil {
				return err
			}
			if fid, err = res.LastInsertId(); err != nil {
				return err
			}
			if fid > s.minFid {
				taken, err := fidTaken(ctx, tx, fid)
				if err != nil {
					return err
				}
				if !taken {
					fresh = true
					return nil
				}
			}
			// Stale candidate: drop it and push the counter above every taken fid by inserting
			// (and removing) a placeholder row at the highest one. Auto-increment counters never
			// go below a value once inserted.
			if _, err := tx.ExecContext(ctx, "DELETE FROM tempfile WHERE fid = ?", fid); err != nil {
				return err
			}
			var max int64
			if err := tx.QueryRowContext(ctx, MaxTakenFidQuery).Scan(&max); err != nil {
				return err
			}
			if s.minFid > max {
				max = s.minFid
			}
			if max <= fid {
				return nil // the counter is already past max; the next insert is fresh
			}
			if _, err := tx.ExecContext(ctx, s.d.InsertIgnore()+" INTO tempfile (fid, createtime, classid, dmid, dkey, devids) VALUES (?, 0, 0, 0, '', '')", max); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, "DELETE FROM tempfile WHERE fid = ? AND createtime = 0 AND dkey = '' AND devids = ''", max)
			return err
		})
		if err != nil {
			return 0, err
		}
		if fresh {
			return fid, nil
		}
		s.log.Info("store: fid counter was behind the file table or the delete queues; re-seeded", "candidate", fid)
	}
	return 0, s.errf("create tempfile", errors.New("could not allocate a fresh fid"))
}

func (s *Store) createTempfileAt(ctx context.Context, t store.Tempfile, devids string) error {
	if t.Fid <= s.minFid {
		return fidInUse(s, t.Fid)
	}
	return s.tx(ctx, "create tempfile", func(tx *sql.Tx) error {
		switch taken, err := fidTaken(ctx, tx, t.Fid); {
		case err != nil:
			return err
		case taken:
			return fidInUse(s, t.Fid)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO tempfile (fid, createtime, classid, dmid, dkey, devids) VALUES (?, ?, ?, ?, ?, ?)",
			t.Fid, t.CreateTime, t.ClassID, t.DomainID, t.Key, devids)
		if err != nil && s.d.IsDup(err) {
			return fidInUse(s, t.Fid)
		}
		return err
	})
}

func fidInUse(s *Store, fid int64) error {
	return &fidErr{name: s.name, fid: fid}
}

type fidErr struct {
	name string
	fid  int64
}

func (e *fidErr) Error() string {
	return e.name + ": fid " + strconv.FormatInt(e.fid, 10) + ": " + store.ErrFidInUse.Error()
}
func (e *fidErr) Unwrap() error { return store.ErrFidInUse }

const tempfileCols = "fid, dmid, classid, dkey, devids, createtime"

func scanTempfile(sc rowScanner) (store.Tempfile, error) {
	var t store.Tempfile
	var key, devids sql.NullString
	if err := sc.Scan(&t.Fid, &t.DomainID, &t.ClassID, &key, &devids, &t.CreateTime); err != nil {
		return t, err
	}
	t.Key = key.String
	t.DevIDs = store.SplitDevIDs(devids.String)
	return t, nil
}

// Tempfile returns an open upload.
func (s *Store) Tempfile(ctx context.Context, fid int64) (store.Tempfile, error) {
	t, err := scanTempfile(s.r.QueryRowContext(ctx, "SELECT "+tempfileCols+" FROM tempfile WHERE fid = ?", fid))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return t, s.notFound("tempfile %d", fid)
	case err != nil:
		return t, s.errf("get tempfile", err)
	}
	return t, nil
}

// DeleteTempfile removes an open upload; a missing row is not an error.
func (s *Store) DeleteTempfile(ctx context.Context, fid int64) error {
	if _, err := s.w.ExecContext(ctx, "DELETE FROM tempfile WHERE fid = ?", fid); err != nil {
		return s.errf("delete tempfile", err)
	}
	return nil
}

// DiscardUpload takes the tempfile row of fid, records copies on devIDs and queues the fid for
// deletion, in one transaction. A fid that is a committed file keeps its copies: only the leftover
// tempfile row goes, and the caller hears ErrExists.
func (s *Store) DiscardUpload(ctx context.Context, fid int64, devIDs ...int) error {
	committed := false
	err := s.filesTx(ctx, "discard upload", s.tx, dropFid(fid), func(tx *sql.Tx) error {
		committed = false
		if err := s.takeTempfile(ctx, tx, fid); err != nil {
			return err
		}
		var one int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM file WHERE fid = ?", fid).Scan(&one); {
		case err == nil:
			committed = true
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		for _, dev := range devIDs {
			if _, err := tx.ExecContext(ctx, s.d.InsertIgnore()+" INTO file_on (fid, devid) VALUES (?, ?)", fid, dev); err != nil {
				return err
			}
		}
		return enqueueDelete(ctx, tx, fid)
	})
	if err != nil {
		return err
	}
	if committed {
		return s.exists("fid %d is a committed file; only its tempfile row was removed", fid)
	}
	return nil
}

// StaleTempfiles returns up to limit uploads created before olderThan, lowest fid first.
func (s *Store) StaleTempfiles(ctx context.Context, olderThan int64, limit int) ([]store.Tempfile, error) {
	if limit <= 0 {
		return nil, nil
	}
	return queryAll(ctx, s, "stale tempfiles", scanTempfile,
		"SELECT "+tempfileCols+" FROM tempfile WHERE createtime < ? ORDER BY fid LIMIT ?", olderThan, limit)
}

// MaxFid returns the highest committed fid (0 when there is none). Fids queued for deletion are
// not counted: callers (fsck's end, the tracker's explicit-fid floor) mean files.
func (s *Store) MaxFid(ctx context.Context) (int64, error) {
	var max int64
	if err := s.w.QueryRowContext(ctx, "SELECT COALESCE(MAX(fid), 0) FROM file").Scan(&max); err != nil {
		return 0, s.errf("max fid", err)
	}
	return max, nil
}

// maxTakenFid returns the highest fid that is a file or queued for deletion (0 when there is
// none): the floor of fid allocation read at open.
func (s *Store) maxTakenFid(ctx context.Context) (int64, error) {
	var max int64
	if err := s.w.QueryRowContext(ctx, MaxTakenFidQuery).Scan(&max); err != nil {
		return 0, s.errf("max taken fid", err)
	}
	return max, nil
}

// takeTempfile deletes the tempfile row of fid inside tx and reports ErrNotFound when there was
// none. It is the first statement of every transaction that ends an upload: the delete
// write-locks the row, so a second transaction for the same fid waits until the first commits and
// then finds the row gone. That makes "closed once" hold across trackers without a named lock.
func (s *Store) takeTempfile(ctx context.Context, tx *sql.Tx, fid int64) error {
	return execOne(ctx, tx, func() error { return s.notFound("tempfile %d", fid) },
		"DELETE FROM tempfile WHERE fid = ?", fid)
}

// CommitFile makes a tempfile the file of its key in one transaction: the tempfile row is taken
// (ErrNotFound when it is gone), the key's previous file row (if any) is removed and its fid queued
// for deletion, the new row and its file_on rows are written with devcount counted from file_on,
// the checksum stored and, when asked, the fid queued for replication.
func (s *Store) CommitFile(ctx context.Context, c store.Commit) (int64, error) {
	f := c.File
	if err := s.checkKey(f.Key); err != nil {
		return 0, err
	}
	var replaced int64
	// A duplicate key on insert means another commit of the same key landed between our read of
	// the key's row and our insert (MySQL reads a snapshot). Running again reads that row and
	// replaces it: the last commit wins and the other fid is queued for deletion, as in MogileFS.
	err := s.filesTx(ctx, "commit file", s.allocate, dropKeys(f.DomainID, f.Key), func(tx *sql.Tx) error {
		replaced = 0
		if err := s.takeTempfile(ctx, tx, f.Fid); err != nil {
			return err
		}
		var old int64
		switch err := tx.QueryRowContext(ctx, "SELECT fid FROM file WHERE dmid = ? AND dkey = ?", f.DomainID, f.Key).Scan(&old); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case old == f.Fid:
			return s.exists("fid %d is already the file of key %q", f.Fid, f.Key)
		default:
			if _, err := tx.ExecContext(ctx, "DELETE FROM file WHERE fid = ?", old); err != nil {
				return err
			}
			if err := enqueueDelete(ctx, tx, old); err != nil {
				return err
			}
			replaced = old
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO file (fid, dmid, dkey, length, classid, devcount) VALUES (?, ?, ?, ?, ?, 0)",
			f.Fid, f.DomainID, f.Key, f.Length, f.ClassID)
		if err != nil {
			if !s.d.IsDup(err) {
				return err
			}
			var one int
			switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM file WHERE fid = ?", f.Fid).Scan(&one); {
			case err == nil:
				return s.exists("fid %d", f.Fid)
			case errors.Is(err, sql.ErrNoRows):
				return errRaced
			default:
				return err
			}
		}
		for _, dev := range c.DevIDs {
			if _, err := tx.ExecContext(ctx, s.d.InsertIgnore()+" INTO file_on (fid, devid) VALUES (?, ?)", f.Fid, dev); err != nil {
				return err
			}
		}
		if err := refreshDevCount(ctx, tx, f.Fid); err != nil {
			return err
		}
		if c.Checksum != nil {
			if _, err := tx.ExecContext(ctx, "REPLACE INTO checksum (fid, hashtype, checksum) VALUES (?, ?, ?)",
				f.Fid, c.Checksum.Type, c.Checksum.Sum); err != nil {
				return err
			}
		}
		if c.Replicate {
			if _, err := tx.ExecContext(ctx, "REPLACE INTO file_to_replicate (fid, nexttry, fromdevid, failcount, flags) VALUES (?, 0, NULL, 0, 0)", f.Fid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return replaced, nil
}

// enqueueDelete puts fid on file_to_delete2, due now.
func enqueueDelete(ctx context.Context, ex execer, fid int64) error {
	_, err := ex.ExecContext(ctx, "REPLACE INTO file_to_delete2 (fid, nexttry, failcount) VALUES (?, 0, 0)", fid)
	return err
}

// lockFileRow write-locks the file row of fid (when there is one) for the rest of tx, so that
// concurrent changes to the fid's copies queue up instead of deadlocking over the file_on rows
// each one counts. It is the portable spelling of SELECT ... FOR UPDATE; in SQLite the
// transaction already holds the database's write lock.
func lockFileRow(ctx context.Context, tx *sql.Tx, fid int64) error {
	_, err := tx.ExecContext(ctx, "UPDATE file SET devcount = devcount WHERE fid = ?", fid)
	return err
}

// refreshDevCount sets file.devcount to the number of file_on rows of fid.
func refreshDevCount(ctx context.Context, ex execer, fid int64) error {
	_, err := ex.ExecContext(ctx, "UPDATE file SET devcount = (SELECT COUNT(*) FROM file_on WHERE fid = ?) WHERE fid = ?", fid, fid)
	return err
}

const fileCols = "fid, dmid, classid, dkey, length, devcount"

func scanFile(sc rowScanner) (store.File, error) {
	var f store.File
	var key sql.NullString
	var length sql.NullInt64
	if err := sc.Scan(&f.Fid, &f.DomainID, &f.ClassID, &key, &length, &f.DevCount); err != nil {
		return f, err
	}
	f.Key, f.Length = key.String, length.Int64
	return f, nil
}

func (s *Store) fileRow(ctx context.Context, q querier, what string, query string, args ...any) (store.File, error) {
	f, err := scanFile(q.QueryRowContext(ctx, query, args...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return f, s.notFound("%s", what)
	case err != nil:
		return f, s.errf("get file", err)
	}
	return f, nil
}

// FileByKey returns the file of a key.
func (s *Store) FileByKey(ctx context.Context, domainID int, key string) (store.File, error) {
	if len(key) > store.MaxKeyLen {
		return store.File{}, s.notFound("key %q in domain %d", key, domainID)
	}
	return s.fileRow(ctx, s.r, "key "+strconv.Quote(key)+" in domain "+strconv.Itoa(domainID),
		"SELECT "+fileCols+" FROM file WHERE dmid = ? AND dkey = ?", domainID, key)
}

// FileByFid returns the file row of a fid.
func (s *Store) FileByFid(ctx context.Context, fid int64) (store.File, error) {
	return s.fileRow(ctx, s.r, "fid "+strconv.FormatInt(fid, 10), "SELECT "+fileCols+" FROM file WHERE fid = ?", fid)
}

// DeleteFile removes the file row of a key and queues its fid for deletion, in one transaction.
func (s *Store) DeleteFile(ctx context.Context, domainID int, key string) (store.File, error) {
	var f store.File
	if len(key) > store.MaxKeyLen {
		return f, s.notFound("key %q in domain %d", key, domainID)
	}
	err := s.filesTx(ctx, "delete file", s.tx, dropKeys(domainID, key), func(tx *sql.Tx) error {
		var err error
		f, err = s.fileRow(ctx, tx, "key "+strconv.Quote(key)+" in domain "+strconv.Itoa(domainID),
			"SELECT "+fileCols+" FROM file WHERE dmid = ? AND dkey = ?", domainID, key)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM file WHERE fid = ?", f.Fid); err != nil {
			return err
		}
		return enqueueDelete(ctx, tx, f.Fid)
	})
	if err != nil {
		return store.File{}, err
	}
	return f, nil
}

// RenameFile moves a file to another key of the same domain. Renaming a key to itself succeeds.
func (s *Store) RenameFile(ctx context.Context, domainID int, from, to string) error {
	if err := s.checkKey(to); err != nil {
		return err
	}
	if len(from) > store.MaxKeyLen {
		return s.notFound("key %q in domain %d", from, domainID)
	}
	err := s.filesTx(ctx, "rename file", s.tx, dropKeys(domainID, from, to), func(tx *sql.Tx) error {
		return execOne(ctx, tx, func() error { return s.notFound("key %q in domain %d", from, domainID) },
			"UPDATE file SET dkey = ? WHERE dmid = ? AND dkey = ?", to, domainID, from)
	})
	if err != nil && !isSentinel(err) && s.d.IsDup(err) {
		return s.exists("key %q in domain %d", to, domainID)
	}
	return err
}

// SetFileClass changes a file's class and queues it for replication (due now) in one transaction.
// Locate does not read the class, so its cache keeps the file.
func (s *Store) SetFileClass(ctx context.Context, fid int64, classID int) error {
	return s.tx(ctx, "set file class", func(tx *sql.Tx) error {
		err := execOne(ctx, tx, func() error { return s.notFound("fid %d", fid) },
			"UPDATE file SET classid = ? WHERE fid = ?", classID, fid)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "REPLACE INTO file_to_replicate (fid, nexttry, fromdevid, failcount, flags) VALUES (?, 0, NULL, 0, 0)", fid)
		return err
	})
}

// ListKeys returns up to limit keys of a domain that start with prefix (taken literally) and sort
// after after, ascending. Keys sharing a prefix are contiguous in key order, so the query reads
// from the first key >= prefix and stops at the first key without it.
func (s *Store) ListKeys(ctx context.Context, domainID int, prefix, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := "SELECT dkey FROM file WHERE dmid = ? AND dkey >= ?"
	args := []any{domainID, prefix}
	if after != "" {
		q += " AND dkey > ?"
		args = append(args, after)
	}
	q += " ORDER BY dkey LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.errf("list keys", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, s.errf("list keys", err)
		}
		if !strings.HasPrefix(k, prefix) {
			break
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("list keys", err)
	}
	return out, nil
}

// ListFids returns up to count files with fid > fromFid, ascending.
func (s *Store) ListFids(ctx context.Context, fromFid int64, count int) ([]store.File, error) {
	if count <= 0 {
		return nil, nil
	}
	return queryAll(ctx, s, "list fids", scanFile, "SELECT "+fileCols+" FROM file WHERE fid > ? ORDER BY fid LIMIT ?", fromFid, count)
}

// FileOn returns the devices holding a copy of fid, ascending.
func (s *Store) FileOn(ctx context.Context, fid int64) ([]int, error) {
	return queryAll(ctx, s, "file_on", scanOne[int], "SELECT devid FROM file_on WHERE fid = ? ORDER BY devid", fid)
}

// AddFileOn records a copy of fid on a device and refreshes the file's devcount.
func (s *Store) AddFileOn(ctx context.Context, fid int64, devID int) error {
	return s.filesTx(ctx, "add file_on", s.tx, dropFid(fid), func(tx *sql.Tx) error {
		if err := lockFileRow(ctx, tx, fid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.InsertIgnore()+" INTO file_on (fid, devid) VALUES (?, ?)", fid, devID); err != nil {
			return err
		}
		return refreshDevCount(ctx, tx, fid)
	})
}

// RemoveFileOn forgets a copy of fid on a device and refreshes the file's devcount.
func (s *Store) RemoveFileOn(ctx context.Context, fid int64, devID int) error {
	return s.filesTx(ctx, "remove file_on", s.tx, dropFid(fid), func(tx *sql.Tx) error {
		if err := lockFileRow(ctx, tx, fid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM file_on WHERE fid = ? AND devid = ?", fid, devID); err != nil {
			return err
		}
		return refreshDevCount(ctx, tx, fid)
	})
}

// FidsOnDevice returns up to limit fids with a copy on devID and fid > afterFid, ascending.
func (s *Store) FidsOnDevice(ctx context.Context, devID int, afterFid int64, limit int) ([]int64, error) {
	if limit <= 0 {
		return nil, nil
	}
	return queryAll(ctx, s, "fids on device", scanOne[int64],
		"SELECT fid FROM file_on WHERE devid = ? AND fid > ? ORDER BY fid LIMIT ?", devID, afterFid, limit)
}

// Checksum returns the stored digest of fid.
func (s *Store) Checksum(ctx context.Context, fid int64) (store.Checksum, error) {
	c := store.Checksum{Fid: fid}
	err := s.r.QueryRowContext(ctx, "SELECT hashtype, checksum FROM checksum WHERE fid = ?", fid).Scan(&c.Type, &c.Sum)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Checksum{}, s.notFound("checksum of fid %d", fid)
	case err != nil:
		return store.Checksum{}, s.errf("get checksum", err)
	}
	return c, nil
}

// SetChecksum stores (or replaces) the digest of a fid.
func (s *Store) SetChecksum(ctx context.Context, c store.Checksum) error {
	if _, err := s.w.ExecContext(ctx, "REPLACE INTO checksum (fid, hashtype, checksum) VALUES (?, ?, ?)", c.Fid, c.Type, c.Sum); err != nil {
		return s.errf("set checksum", err)
	}
	return nil
}

// ForgetFid removes the file_on, checksum and tempfile rows of a deleted fid in one transaction.
func (s *Store) ForgetFid(ctx context.Context, fid int64) error {
	return s.filesTx(ctx, "forget fid", s.tx, dropFid(fid), func(tx *sql.Tx) error {
		for _, q := range []string{
			"DELETE FROM file_on WHERE fid = ?",
			"DELETE FROM checksum WHERE fid = ?",
			"DELETE FROM tempfile WHERE fid = ?",
		} {
			if _, err := tx.ExecContext(ctx, q, fid); err != nil {
				return err
			}
		}
		return nil
	})
}
