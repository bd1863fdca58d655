package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// queueSQL is how one logical queue maps onto its table. file_to_queue holds two queues told
// apart by its type column, which every statement then filters on.
type queueSQL struct {
	table   string
	typ     int    // file_to_queue type; 0 for the dedicated tables
	devCol  string // column holding Job.FromDevID ("" when the table has none)
	hasMore bool   // flags (and, for file_to_queue, arg) columns exist
}

func queueOf(q store.Queue) (queueSQL, error) {
	switch q {
	case store.QueueReplicate:
		return queueSQL{table: "file_to_replicate", devCol: "fromdevid", hasMore: true}, nil
	case store.QueueDelete:
		return queueSQL{table: "file_to_delete2"}, nil
	case store.QueueFsck:
		return queueSQL{table: "file_to_queue", typ: 1, devCol: "devid", hasMore: true}, nil
	case store.QueueRebalance:
		return queueSQL{table: "file_to_queue", typ: 2, devCol: "devid", hasMore: true}, nil
	}
	return queueSQL{}, fmt.Errorf("store: unknown queue %d", q)
}

// where is the row filter for one fid: "fid = ?" plus the type for file_to_queue.
func (t queueSQL) where(fid int64) (string, []any) {
	if t.typ != 0 {
		return "fid = ? AND type = ?", []any{fid, t.typ}
	}
	return "fid = ?", []any{fid}
}

// cols lists the columns selected into a Job, in scanJob's order.
func (t queueSQL) cols() string {
	c := "fid, nexttry, failcount"
	if t.devCol != "" {
		c += ", " + t.devCol
	}
	if t.hasMore {
		c += ", flags"
	}
	if t.typ != 0 {
		c += ", arg"
	}
	return c
}

func (t queueSQL) scanJob(sc rowScanner) (store.Job, error) {
	var j store.Job
	var dev sql.NullInt64
	var arg sql.NullString
	dst := []any{&j.Fid, &j.NextTry, &j.FailCount}
	if t.devCol != "" {
		dst = append(dst, &dev)
	}
	if t.hasMore {
		dst = append(dst, &j.Flags)
	}
	if t.typ != 0 {
		dst = append(dst, &arg)
	}
	if err := sc.Scan(dst...); err != nil {
		return j, err
	}
	j.FromDevID, j.Arg = int(dev.Int64), arg.String
	return j, nil
}

// Enqueue puts a job on a queue, replacing the row of the same fid.
func (s *Store) Enqueue(ctx context.Context, q store.Queue, j store.Job) error {
	t, err := queueOf(q)
	if err != nil {
		return err
	}
	var query string
	var args []any
	switch {
	case t.typ != 0:
		query = "REPLACE INTO file_to_queue (fid, devid, type, nexttry, failcount, flags, arg) VALUES (?, ?, ?, ?, ?, ?, ?)"
		args = []any{j.Fid, nullInt(int64(j.FromDevID)), t.typ, j.NextTry, j.FailCount, j.Flags, nullStr(j.Arg)}
	case t.devCol != "":
		query = "REPLACE INTO file_to_replicate (fid, nexttry, fromdevid, failcount, flags) VALUES (?, ?, ?, ?, ?)"
		args = []any{j.Fid, j.NextTry, nullInt(int64(j.FromDevID)), j.FailCount, j.Flags}
	default:
		query = "REPLACE INTO file_to_delete2 (fid, nexttry, failcount) VALUES (?, ?, ?)"
		args = []any{j.Fid, j.NextTry, j.FailCount}
	}
	if _, err := s.w.ExecContext(ctx, query, args...); err != nil {
		return s.errf("enqueue on "+t.table, err)
	}
	return nil
}

// leaseEnd is the nexttry a claim sets: now plus the lease rounded up to whole seconds (at least
// one, so a claimed row is never due at the same now), capped below NeverRetry.
func leaseEnd(now int64, lease time.Duration) int64 {
	secs := int64(math.Ceil(lease.Seconds()))
	if secs < 1 {
		secs = 1
	}
	end := now + secs
	if end >= store.NeverRetry {
		end = store.NeverRetry - 1
	}
	return end
}

// Claim leases up to limit due rows (nexttry <= now), earliest first. Each row is taken with a
// compare-and-set on its nexttry (UPDATE ... WHERE fid = ? AND nexttry = <value read>), so when two
// trackers read the same due row only the first update matches and the other skips the row. The
// returned jobs carry the leased nexttry.
func (s *Store) Claim(ctx context.Context, q store.Queue, now int64, lease time.Duration, limit int) ([]store.Job, error) {
	t, err := queueOf(q)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	end := leaseEnd(now, lease)
	var out []store.Job
	err = s.tx(ctx, "claim from "+t.table, func(tx *sql.Tx) error {
		out = out[:0]
		query := "SELECT " + t.cols() + " FROM " + t.table + " WHERE "
		args := []any{}
		if t.typ != 0 {
			query += "type = ? AND "
			args = append(args, t.typ)
		}
		query += "nexttry <= ? ORDER BY nexttry, fid LIMIT ?"
		args = append(args, now, limit)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		var due []store.Job
		for rows.Next() {
			j, err := t.scanJob(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, j := range due {
			w, wargs := t.where(j.Fid)
			res, err := tx.ExecContext(ctx, "UPDATE "+t.table+" SET nexttry = ? WHERE "+w+" AND nexttry = ?",
				append(append([]any{end}, wargs...), j.NextTry)...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n == 1 {
				j.NextTry = end
				out = append(out, j)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Done removes a job's row; a missing row is not an error.
func (s *Store) Done(ctx context.Context, q store.Queue, fid int64) error {
	t, err := queueOf(q)
	if err != nil {
		return err
	}
	w, args := t.where(fid)
	if _, err := s.w.ExecContext(ctx, "DELETE FROM "+t.table+" WHERE "+w, args...); err != nil {
		return s.errf("done on "+t.table, err)
	}
	return nil
}

// Retry reschedules a job: NextTry, FailCount and (where the table has it) FromDevID come from j.
func (s *Store) Retry(ctx context.Context, q store.Queue, j store.Job) error {
	t, err := queueOf(q)
	if err != nil {
		return err
	}
	set := "nexttry = ?, failcount = ?"
	args := []any{j.NextTry, j.FailCount}
	if t.devCol != "" {
		set += ", " + t.devCol + " = ?"
		args = append(args, nullInt(int64(j.FromDevID)))
	}
	w, wargs := t.where(j.Fid)
	err = execOne(ctx, s.w, func() error { return s.notFound("fid %d on %s", j.Fid, t.table) },
		"UPDATE "+t.table+" SET "+set+" WHERE "+w, append(args, wargs...)...)
	if err != nil && !isSentinel(err) {
		return s.errf("retry on "+t.table, err)
	}
	return err
}

// QueueLen counts the rows of a queue, due or not.
func (s *Store) QueueLen(ctx context.Context, q store.Queue) (int64, error) {
	t, err := queueOf(q)
	if err != nil {
		return 0, err
	}
	query := "SELECT COUNT(*) FROM " + t.table
	var args []any
	if t.typ != 0 {
		query += " WHERE type = ?"
		args = append(args, t.typ)
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, s.errf("count "+t.table, err)
	}
	return n, nil
}

// QueueJobs returns the row of fid on a queue.
func (s *Store) QueueJobs(ctx context.Context, q store.Queue, fid int64) (store.Job, error) {
	t, err := queueOf(q)
	if err != nil {
		return store.Job{}, err
	}
	w, args := t.where(fid)
	j, err := t.scanJob(s.r.QueryRowContext(ctx, "SELECT "+t.cols()+" FROM "+t.table+" WHERE "+w, args...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Job{}, s.notFound("fid %d on %s", fid, t.table)
	case err != nil:
		return store.Job{}, s.errf("get from "+t.table, err)
	}
	return j, nil
}

// AddFsckEvent appends a row to fsck_log; LogID is assigned by the database.
func (s *Store) AddFsckEvent(ctx context.Context, e store.FsckEvent) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO fsck_log (utime, fid, evcode, devid) VALUES (?, ?, ?, ?)",
		e.UTime, nullInt(e.Fid), e.EvCode, nullInt(int64(e.DevID)))
	if err != nil {
		return s.errf("add fsck event", err)
	}
	return nil
}

// FsckEvents returns up to limit fsck_log rows with logid > afterLogID, ascending.
func (s *Store) FsckEvents(ctx context.Context, afterLogID int64, limit int) ([]store.FsckEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	return queryAll(ctx, s, "fsck events", func(sc rowScanner) (store.FsckEvent, error) {
		var e store.FsckEvent
		var fid, dev sql.NullInt64
		var code sql.NullString
		err := sc.Scan(&e.LogID, &e.UTime, &fid, &code, &dev)
		e.Fid, e.EvCode, e.DevID = fid.Int64, code.String, int(dev.Int64)
		return e, err
	}, "SELECT logid, utime, fid, evcode, devid FROM fsck_log WHERE logid > ? ORDER BY logid LIMIT ?", afterLogID, limit)
}

// ClearFsckLog empties fsck_log.
func (s *Store) ClearFsckLog(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, "DELETE FROM fsck_log"); err != nil {
		return s.errf("clear fsck log", err)
	}
	return nil
}

// MaxFsckLogID returns the highest fsck_log logid, 0 for an empty log.
func (s *Store) MaxFsckLogID(ctx context.Context) (int64, error) {
	var max int64
	if err := s.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(logid), 0) FROM fsck_log").Scan(&max); err != nil {
		return 0, s.errf("max fsck logid", err)
	}
	return max, nil
}

// Settings returns every server setting.
func (s *Store) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT field, value FROM server_settings")
	if err != nil {
		return nil, s.errf("settings", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, s.errf("settings", err)
		}
		out[k] = v.String
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("settings", err)
	}
	return out, nil
}

// SetSetting stores a server setting; an empty value deletes it.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if err := setSetting(ctx, s.w, key, value); err != nil {
		return s.errf("set setting "+key, err)
	}
	return nil
}

// SetSettings stores several server settings in one transaction, in key order so that two
// trackers writing overlapping sets lock the rows in the same order.
func (s *Store) SetSettings(ctx context.Context, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(kv))
	return s.tx(ctx, "set settings", func(tx *sql.Tx) error {
		for _, k := range keys {
			if err := setSetting(ctx, tx, k, kv[k]); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	})
}

func setSetting(ctx context.Context, ex execer, key, value string) error {
	var err error
	if value == "" {
		_, err = ex.ExecContext(ctx, "DELETE FROM server_settings WHERE field = ?", key)
	} else {
		_, err = ex.ExecContext(ctx, "REPLACE INTO server_settings (field, value) VALUES (?, ?)", key, value)
	}
	return err
}

// ReplicateNow makes every deferred replication row due at now (MogileFS replicate_now).
func (s *Store) ReplicateNow(ctx context.Context, now int64) (int64, error) {
	res, err := s.w.ExecContext(ctx, "UPDATE file_to_replicate SET nexttry = ? WHERE nexttry > ?", now, now)
	if err != nil {
		return 0, s.errf("replicate now", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.errf("replicate now", err)
	}
	return n, nil
}
