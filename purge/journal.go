package purge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mogway/mogway/internal/fsutil"
)

// JournalFile is the name of the journal inside journal_dir.
const JournalFile = "purge-journal.jsonl"

// entry is a purge not yet accepted by one peer.
type entry struct {
	ID   uint64    `json:"id"`
	Peer string    `json:"peer"`
	Key  string    `json:"key"`
	Soft bool      `json:"soft,omitempty"`
	At   time.Time `json:"at"`
}

// record is one line of the journal file: an entry added, or the ID of an entry delivered.
type record struct {
	Add  *entry `json:"add,omitempty"`
	Done uint64 `json:"done,omitempty"`
}

// compactAfter is how many delivered records may accumulate before the file is rewritten while
// entries are still pending (it is rewritten as soon as nothing is pending).
const compactAfter = 256

// journal is the durable list of purges owed to peers: one file of JSON lines, appended and fsynced
// per change, rewritten (temp file, fsync, rename, fsync of the directory) to compact it.
type journal struct {
	path  string
	limit int // pending purges per peer before they collapse into one "/*"; 0 means no limit
	log   *slog.Logger

	mu      sync.Mutex // guards the fields below and every write to the file
	nextID  uint64
	pending []entry // in ID order
	done    int     // delivered records in the file since the last rewrite
	torn    bool    // the last append failed and may have left part of a line at the end of the file
}

// openJournal loads dir/JournalFile (creating dir if needed), drops entries for peers that known
// rejects, and rewrites the file compacted, which also removes a line torn by a crash.
func openJournal(dir string, limit int, known func(peer string) bool, log *slog.Logger) (*journal, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("purge: journal: %w", err)
	}
	j := &journal{path: filepath.Join(dir, JournalFile), limit: limit, log: log, nextID: 1}
	data, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("purge: journal: %w", err)
	}
	pending, maxID, bad := parseJournal(data)
	if bad > 0 {
		log.Warn("purge journal: skipped unreadable lines", "file", j.path, "lines", bad)
	}
	j.nextID = maxID + 1
	for _, e := range pending {
		if !known(e.Peer) {
			log.Warn("purge journal: dropping purge for a peer no longer configured", "peer", e.Peer, "key", e.Key)
			continue
		}
		j.pending = append(j.pending, e)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.rewriteLocked(); err != nil {
		return nil, err
	}
	return j, nil
}

// parseJournal replays the lines of a journal file. It returns the entries still pending in ID
// order, the highest ID seen and how many lines could not be read.
func parseJournal(data []byte) (pending []entry, maxID uint64, bad int) {
	var order []uint64
	byID := map[uint64]entry{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil || (r.Add == nil) == (r.Done == 0) {
			bad++
			continue
		}
		if r.Add != nil {
			if _, err := ParseKey(r.Add.Key); err != nil || r.Add.ID == 0 || r.Add.Peer == "" {
				bad++
				continue
			}
			if _, dup := byID[r.Add.ID]; !dup {
				order = append(order, r.Add.ID)
			}
			byID[r.Add.ID] = *r.Add
			maxID = max(maxID, r.Add.ID)
			continue
		}
		delete(byID, r.Done)
		maxID = max(maxID, r.Done)
	}
	if sc.Err() != nil {
		bad++
	}
	for _, id := range order {
		if e, ok := byID[id]; ok {
			pending = append(pending, e)
			delete(byID, id) // a re-added ID is listed once
		}
	}
	return pending, maxID, bad
}

// add records a purge owed to peer. A purge already covered by one pending for that peer is not
// added (added is false): the pending one, delivered later, does its work. Pending purges the new
// one covers are dropped for the same reason. When limit purges are already pending for peer, the
// new one is recorded as a purge of everything ("/*"), which covers and replaces them all, so the
// journal stays small however long a peer is down.
func (j *journal) add(peer, key string, soft bool, at time.Time) (added bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, anyHard := 0, !soft
	for _, e := range j.pending {
		if e.Peer != peer {
			continue
		}
		if covers(e.Key, e.Soft, key, soft) {
			return false, nil
		}
		n++
		anyHard = anyHard || !e.Soft
	}
	if j.limit > 0 && n >= j.limit {
		j.log.Warn("purge journal: too many purges pending for a peer; replacing them with a purge of everything",
			"peer", peer, "pending", n)
		key, soft = "/*", !anyHard
	}
	e := entry{ID: j.nextID, Peer: peer, Key: key, Soft: soft, At: at.UTC()}
	if err := j.appendLocked(record{Add: &e}); err != nil {
		return false, err
	}
	j.nextID++
	kept := j.pending[:0]
	for _, old := range j.pending {
		if old.Peer == peer && covers(key, soft, old.Key, old.Soft) {
			if err := j.appendLocked(record{Done: old.ID}); err == nil {
				j.done++
				continue
			}
			// Keeping it only means it is delivered once more than needed.
		}
		kept = append(kept, old)
	}
	j.pending = append(kept, e)
	if j.done > compactAfter && j.done > 2*len(j.pending) {
		if err := j.rewriteLocked(); err != nil {
			j.log.Warn("purge journal: compaction failed", "err", err)
		}
	}
	return true, nil
}

// covers reports whether purge a, applied after purge b was requested, does all that b does: a
// selects every entry b selects, and a is hard or b is soft.
func covers(aKey string, aSoft bool, bKey string, bSoft bool) bool {
	if aSoft && !bSoft {
		return false
	}
	a, errA := ParseKey(aKey)
	b, errB := ParseKey(bKey)
	if errA != nil || errB != nil {
		return aKey == bKey
	}
	switch a.Kind {
	case KindAll:
		return true
	case KindPrefix:
		return (b.Kind == KindURI || b.Kind == KindPrefix) && strings.HasPrefix(b.Arg, a.Arg)
	}
	return b.Kind == a.Kind && b.Arg == a.Arg
}

// delivered records that the entry with id was accepted by its peer.
func (j *journal) delivered(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := j.indexLocked(id)
	if i < 0 {
		return nil
	}
	j.pending = append(j.pending[:i:i], j.pending[i+1:]...)
	if len(j.pending) == 0 || (j.done+1 > compactAfter && j.done+1 > 2*len(j.pending)) {
		return j.rewriteLocked()
	}
	if err := j.appendLocked(record{Done: id}); err != nil {
		return err
	}
	j.done++
	return nil
}

func (j *journal) indexLocked(id uint64) int {
	for i, e := range j.pending {
		if e.ID == id {
			return i
		}
	}
	return -1
}

// forPeer returns a copy of the entries pending for peer, oldest first.
func (j *journal) forPeer(peer string) []entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []entry
	for _, e := range j.pending {
		if e.Peer == peer {
			out = append(out, e)
		}
	}
	return out
}

// hasPending reports whether any entry is pending for peer, without copying them as forPeer does.
func (j *journal) hasPending(peer string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.pending {
		if e.Peer == peer {
			return true
		}
	}
	return false
}

// len returns the number of pending entries.
func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// appendLocked writes one record and fsyncs it. After a failed append it starts with a newline:
// a write cut short (a full disk) leaves part of a line, and a record glued to it would be
// unreadable at the next start, so the fragment must stay on a line of its own, to be skipped.
func (j *journal) appendLocked(r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	var buf []byte
	if j.torn {
		buf = append(buf, '\n')
	}
	buf = append(append(buf, line...), '\n')
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		j.torn = true
		return fmt.Errorf("purge: journal %s: %w", j.path, err)
	}
	j.torn = false
	return nil
}

// rewriteLocked replaces the file with the pending entries only.
func (j *journal) rewriteLocked() (err error) {
	var buf bytes.Buffer
	for i := range j.pending {
		line, err := json.Marshal(record{Add: &j.pending[i]})
		if err != nil {
			return fmt.Errorf("purge: journal: %w", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	dir := filepath.Dir(j.path)
	tmp, err := os.CreateTemp(dir, JournalFile+".tmp*")
	if err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	if err = os.Rename(tmp.Name(), j.path); err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	if err = fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("purge: journal: %w", err)
	}
	j.done, j.torn = 0, false
	return nil
}
