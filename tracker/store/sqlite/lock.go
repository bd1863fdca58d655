package sqlite

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mogway/mogway/tracker/store"
)

// staleLockAge is when a lock row is broken whatever its holder (MogileFS::Store::SQLite: 1 h).
const staleLockAge = time.Hour

// Poll interval bounds while waiting for a lock held elsewhere.
const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 200 * time.Millisecond
)

// locker implements named locks with the `lock` table, as MogileFS::Store::SQLite does: a row per
// held lock, keyed by the first four bytes of the name's MD5 masked to 31 bits, naming the holder's
// host and pid. A row is broken as stale when it is older than staleLockAge, or when it names this
// host and its process is gone.
//
// The hostname column holds "<hostname> <incarnation>", where the incarnation is the holder's
// start time from /proc/<pid>/stat. A tracker restarted in a container usually gets the pid it had
// before, so a pid check alone would take the rows its previous run left behind for live ones; the
// incarnation tells them apart.
//
// Waiters poll the table, since the holder may be another process. Waiters in this Store are also
// woken as soon as a holder in this Store unlocks, through the released channels.
type locker struct {
	db     *sql.DB
	host   string // os.Hostname()
	holder string // what this Store writes into the hostname column
	pid    int
	log    *slog.Logger

	mu       sync.Mutex              // guards released and held
	released map[int64]chan struct{} // closed when this Store unlocks the lock id; created by waiters
	held     map[int64]int64         // lock ids this Store holds, with their acquiredat
}

func newLocker(db *sql.DB, log *slog.Logger) *locker {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	pid := os.Getpid()
	holder := host
	if inc := incarnation(pid); inc != "" {
		holder += " " + inc
	}
	return &locker{db: db, host: host, holder: holder, pid: pid, log: log}
}

// releasedCh returns the channel closed at the next unlock of id in this Store.
func (l *locker) releasedCh(id int64) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released == nil {
		l.released = map[int64]chan struct{}{}
	}
	ch, ok := l.released[id]
	if !ok {
		ch = make(chan struct{})
		l.released[id] = ch
	}
	return ch
}

// forget drops the released channel of id when a waiter stops waiting, so ids waited on once do
// not pile up. Other waiters on the same channel make a new one on their next round and meanwhile
// still poll.
func (l *locker) forget(id int64, ch <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.released[id]; ok && (<-chan struct{})(cur) == ch {
		delete(l.released, id)
	}
}

// wake closes the released channel of id, if any waiter made one.
func (l *locker) wake(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.released[id]; ok {
		close(ch)
		delete(l.released, id)
	}
}

// LockID returns the lock table key of a lock name: the first 4 bytes of its MD5, big-endian,
// masked to 31 bits.
func LockID(name string) int64 {
	sum := md5.Sum([]byte(name))
	return int64(binary.BigEndian.Uint32(sum[:4]) & 0x7fffffff)
}

func (l *locker) lock(ctx context.Context, name string, timeout time.Duration) (func(), error) {
	id := LockID(name)
	deadline := time.Now().Add(timeout)
	poll := lockPollMin
	for {
		// Taken before trying, so an unlock between the try and the wait is not missed.
		released := l.releasedCh(id)
		acquired, err := l.try(ctx, id)
		if err != nil {
			l.forget(id, released)
			return nil, fmt.Errorf("sqlite: lock %q: %w", name, err)
		}
		if acquired != 0 {
			l.forget(id, released)
			var once sync.Once
			return func() { once.Do(func() { l.unlock(id, acquired) }) }, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			l.forget(id, released)
			return nil, fmt.Errorf("sqlite: lock %q: %w", name, store.ErrLocked)
		}
		t := time.NewTimer(min(poll, left))
		select {
		case <-ctx.Done():
			t.Stop()
			l.forget(id, released)
			return nil, fmt.Errorf("sqlite: lock %q: %w", name, ctx.Err())
		case <-t.C:
		case <-released:
			t.Stop()
		}
		poll = min(poll*2, lockPollMax)
	}
}

// try inserts the lock row, breaking a stale one first. It returns the row's acquiredat (which
// identifies this holding for unlock) or 0 when the lock is held elsewhere.
func (l *locker) try(ctx context.Context, id int64) (int64, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := time.Now().Unix()
	var host string
	var pid, at int64
	err = tx.QueryRowContext(ctx, "SELECT hostname, pid, acquiredat FROM lock WHERE lockid = ?", id).Scan(&host, &pid, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, err
	case l.stale(host, pid, at, now):
		if _, err := tx.ExecContext(ctx, "DELETE FROM lock WHERE lockid = ?", id); err != nil {
			return 0, err
		}
	default:
		return 0, nil
	}
	// acquiredat is unix seconds; keep it unique per holding so that an unlock after the row was
	// broken as stale and taken again cannot remove the new holder's row.
	if at >= now {
		now = at + 1
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO lock (lockid, hostname, pid, acquiredat) VALUES (?, ?, ?, ?)",
		id, l.holder, l.pid, now); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	if l.held == nil {
		l.held = map[int64]int64{}
	}
	l.held[id] = now
	l.mu.Unlock()
	return now, nil
}

// stale reports whether a lock row may be broken: it is older than staleLockAge, or it names this
// host and a process that is gone or is a later process with a recycled pid.
func (l *locker) stale(holder string, pid, acquiredAt, now int64) bool {
	if now-acquiredAt > int64(staleLockAge/time.Second) {
		return true
	}
	host, inc, _ := strings.Cut(holder, " ")
	if host != l.host {
		return false // another machine: only age tells
	}
	if !processAlive(int(pid)) {
		return true
	}
	if inc == "" {
		return false
	}
	cur := incarnation(int(pid))
	return cur != "" && cur != inc
}

func (l *locker) unlock(id, acquired int64) {
	// A background context: unlock must happen even when the caller's context is done.
	ctx, cancel := context.WithTimeout(context.Background(), DefaultBusyTimeout)
	defer cancel()
	l.mu.Lock()
	if l.held[id] == acquired {
		delete(l.held, id)
	}
	l.mu.Unlock()
	if err := l.deleteRow(ctx, id, acquired); err != nil {
		// The row stays until it is broken as stale (holder gone or older than staleLockAge).
		l.log.Warn("sqlite: releasing lock failed", "lockid", id, "err", err)
	}
	l.wake(id)
}

// releaseAll deletes the rows of every lock this Store still holds; Close calls it so that a
// tracker stopped with a lock held does not leave it to the staleness rules.
func (l *locker) releaseAll() error {
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultBusyTimeout)
	defer cancel()
	var errs []error
	for id, at := range held {
		errs = append(errs, l.deleteRow(ctx, id, at))
	}
	return errors.Join(errs...)
}

// deleteRow deletes this Store's row of lock id taken at acquired; a row broken as stale and taken
// by another holder since is left alone.
func (l *locker) deleteRow(ctx context.Context, id, acquired int64) error {
	_, err := l.db.ExecContext(ctx, "DELETE FROM lock WHERE lockid = ? AND hostname = ? AND pid = ? AND acquiredat = ?",
		id, l.holder, l.pid, acquired)
	return err
}

// processAlive reports whether a process with this pid exists on this machine.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// incarnation identifies one run of process pid: its start time in clock ticks since boot, field
// 22 of /proc/<pid>/stat. It is "" where /proc is not available.
func incarnation(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may itself contain spaces and ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 20 {
		return ""
	}
	return "t" + f[19]
}
