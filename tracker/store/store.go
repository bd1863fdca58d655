// Package store defines the tracker's metadata contract: domains, classes, hosts, devices, files and
// their copies, open uploads, work queues, fsck log, server settings and cross-tracker locks.
//
// Implementations live in sub-packages (sqlite, mysql) and share the MogileFS schema (version 17), so an
// existing MogileFS database can be used as is. Every implementation passes the one conformance suite in
// storetest.
//
// Contract shared by all methods:
//   - Every method is safe for concurrent use by many goroutines and by several trackers sharing one
//     database.
//   - A missing row is reported as an error wrapping ErrNotFound (check with errors.Is); a uniqueness
//     clash as ErrExists; an explicit fid that is taken or too low as ErrFidInUse; a lock held elsewhere
//     as ErrLocked. Other errors are database failures (the tracker answers `ERR db`).
//   - Keys and names are byte strings compared byte-exactly (no collation, no case folding); keys are at
//     most MaxKeyLen bytes.
//   - Times are unix seconds, as in the MogileFS schema.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them with context; callers test with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrFidInUse = errors.New("store: fid in use")
	ErrLocked   = errors.New("store: lock held elsewhere")
)

// MaxKeyLen is the longest key the schema holds (VARCHAR(255)).
const MaxKeyLen = 255

// NeverRetry is the nexttry value that parks a queue row until an operator acts (MogileFS uses it for
// replication with no source).
const NeverRetry = 2147483647

// Domain is a namespace of keys.
type Domain struct {
	ID   int
	Name string
}

// Class is a replication class of a domain. ID 0 is the implicit "default" class, which has a row only
// when customised.
type Class struct {
	DomainID    int
	ID          int
	Name        string
	MinDevCount int
	HashType    Hash   // digest kept for the class's files; HashNone for none
	ReplPolicy  string // "" means MultipleHosts()
}

// Host is a storage machine.
type Host struct {
	ID          int
	Name        string
	Status      string // alive, dead, down, readonly
	IP          string
	HTTPPort    int
	HTTPGetPort int // 0 = none
	AltIP       string
	AltMask     string
}

// Device is one devN directory on a host.
type Device struct {
	ID      int
	HostID  int
	Status  string // alive, dead, down, readonly, drain
	Weight  int
	MBTotal int64 // 0 with MBAsOf 0 = unknown
	MBUsed  int64
	MBAsOf  int64 // unix time of the last usage update
}

// File is a committed key.
type File struct {
	Fid      int64
	DomainID int
	ClassID  int
	Key      string
	Length   int64
	DevCount int
}

// Location is where a key's bytes are: its fid and length, and the devices holding a copy
// (ascending). It is what get_paths needs, read in one go.
type Location struct {
	Fid    int64
	Length int64
	DevIDs []int // shared with the store's cache: callers must not modify it
}

// Tempfile is an open upload (create_open without create_close yet). Its fid comes from the tempfile
// table, which is the fid allocator.
type Tempfile struct {
	Fid        int64 // 0 in CreateTempfile = allocate
	DomainID   int
	ClassID    int
	Key        string
	DevIDs     []int // the devices offered to the client
	CreateTime int64
}

// Checksum is a stored content digest; Sum holds the raw digest bytes.
type Checksum struct {
	Fid  int64
	Type Hash
	Sum  []byte
}

// Commit describes create_close's atomic change: the tempfile row is taken and becomes the file for
// (DomainID, Key), replacing any previous fid of that key (which is queued for deletion), with copies
// on DevIDs.
type Commit struct {
	File     File  // DevCount is ignored: it is len(DevIDs)
	DevIDs   []int // devices that hold a verified copy
	Checksum *Checksum
	// Replicate queues the fid on the replication queue (nexttry 0) in the same transaction.
	Replicate bool
}

// Queue names a work queue table.
type Queue int

// The queues. Each holds at most one row per fid (per fid and type for the generic queue).
const (
	QueueReplicate Queue = iota + 1 // file_to_replicate
	QueueDelete                     // file_to_delete2
	QueueFsck                       // file_to_queue type 1
	QueueRebalance                  // file_to_queue type 2
)

// Job is a queue row.
type Job struct {
	Fid       int64
	NextTry   int64 // unix time; 0 = now; NeverRetry = parked
	FailCount int
	FromDevID int // replicate: preferred source; fsck/rebalance: the devid column
	Flags     int
	Arg       string // rebalance: destination devids
}

// FsckEvent is a row of fsck_log.
type FsckEvent struct {
	LogID  int64
	UTime  int64
	Fid    int64 // 0 = NULL
	EvCode string
	DevID  int // 0 = NULL
}

// Store is the tracker's metadata store: the full contract every implementation meets and the one
// storetest checks. It is made of roles; a caller that needs only part of the store declares the
// smaller interface it uses, or takes one of the roles.
type Store interface {
	Namespace
	Inventory
	Uploads
	Files
	Queues
	FsckLog
	ServerSettings
	Locker

	Close() error
}

// Namespace is the store's part about domains and classes.
type Namespace interface {
	Domains(ctx context.Context) ([]Domain, error)
	CreateDomain(ctx context.Context, name string) (Domain, error)            // ErrExists
	DeleteDomain(ctx context.Context, id int) error                           // ErrNotFound
	Classes(ctx context.Context) ([]Class, error)                             // stored rows only (no implicit default)
	CreateClass(ctx context.Context, c Class) (Class, error)                  // allocates ID unless c.ID > 0 (default class row); ErrExists
	UpdateClass(ctx context.Context, c Class) error                           // by (DomainID, ID); ErrNotFound
	DeleteClass(ctx context.Context, domainID, classID int) error             // ErrNotFound
	CountFiles(ctx context.Context, domainID int, classID int) (int64, error) // classID < 0 = whole domain
}

// Inventory is the store's part about hosts and devices.
type Inventory interface {
	Hosts(ctx context.Context) ([]Host, error)
	CreateHost(ctx context.Context, h Host) (Host, error) // allocates ID unless h.ID > 0; ErrExists on name/ip clash
	UpdateHost(ctx context.Context, h Host) error         // ErrNotFound, ErrExists
	DeleteHost(ctx context.Context, id int) error         // ErrNotFound
	Devices(ctx context.Context) ([]Device, error)
	CreateDevice(ctx context.Context, d Device) error // ErrExists
	UpdateDevice(ctx context.Context, d Device) error // status, weight, host; ErrNotFound
	UpdateDeviceUsage(ctx context.Context, devID int, mbTotal, mbUsed, asOf int64) error
	DeleteDevice(ctx context.Context, id int) error
}

// Uploads is the store's part about open uploads (tempfile rows) and fid allocation.
type Uploads interface {
	CreateTempfile(ctx context.Context, t Tempfile) (int64, error) // ErrFidInUse for a taken explicit fid
	Tempfile(ctx context.Context, fid int64) (Tempfile, error)     // ErrNotFound
	// DeleteTempfile removes a tempfile row; a missing row is not an error. It does not end an
	// upload safely against a concurrent close: CommitFile and DiscardUpload do.
	DeleteTempfile(ctx context.Context, fid int64) error
	// DiscardUpload aborts an open upload in one transaction: it takes (removes) the tempfile row,
	// records a copy of the fid on each of devIDs and queues the fid for deletion, so the delete
	// worker removes whatever was written (create_close's failure paths, the stale upload reaper).
	// It is ErrNotFound when the tempfile row is gone: the upload was committed, discarded or
	// reaped already, and nothing is changed. It never queues a committed file: when the fid is a
	// file row it only removes the tempfile row and returns ErrExists.
	DiscardUpload(ctx context.Context, fid int64, devIDs ...int) error
	StaleTempfiles(ctx context.Context, olderThan int64, limit int) ([]Tempfile, error)
	MaxFid(ctx context.Context) (int64, error)
}

// Files is the store's part about files, their copies and checksums.
type Files interface {
	// CommitFile makes an open upload the file of its key (see Commit) and returns the fid it
	// replaced (queued for deletion), or 0. It takes the tempfile row of c.File.Fid in the same
	// transaction and is ErrNotFound, changing nothing, when that row is gone (closed, discarded or
	// reaped already): of any number of CommitFile and DiscardUpload calls for one fid, on any
	// number of trackers, exactly one succeeds. ErrExists when the fid is a file already.
	CommitFile(ctx context.Context, c Commit) (replaced int64, err error)
	FileByKey(ctx context.Context, domainID int, key string) (File, error)
	FileByFid(ctx context.Context, fid int64) (File, error)
	// Locate returns the fid, length and copies of a key (ErrNotFound when there is no such key).
	// It may answer from a cache that every write through the same Store updates at once, and
	// that writes through other Store values on the same database reach within the TTL the
	// implementation documents.
	Locate(ctx context.Context, domainID int, key string) (Location, error)
	DeleteFile(ctx context.Context, domainID int, key string) (File, error) // removes the row, queues the fid for deletion
	RenameFile(ctx context.Context, domainID int, from, to string) error    // ErrNotFound, ErrExists
	SetFileClass(ctx context.Context, fid int64, classID int) error         // also queues replication
	ListKeys(ctx context.Context, domainID int, prefix, after string, limit int) ([]string, error)
	ListFids(ctx context.Context, fromFid int64, count int) ([]File, error) // fid > fromFid, ascending
	FileOn(ctx context.Context, fid int64) ([]int, error)                   // devids holding a copy
	AddFileOn(ctx context.Context, fid int64, devID int) error              // idempotent; refreshes devcount
	RemoveFileOn(ctx context.Context, fid int64, devID int) error           // idempotent; refreshes devcount
	FidsOnDevice(ctx context.Context, devID int, afterFid int64, limit int) ([]int64, error)
	Checksum(ctx context.Context, fid int64) (Checksum, error) // ErrNotFound
	SetChecksum(ctx context.Context, c Checksum) error
	// ForgetFid removes every trace of a deleted fid (file_on, checksum, tempfile rows) once its bytes are gone.
	ForgetFid(ctx context.Context, fid int64) error
}

// Queues is the store's part about work queues. Claim atomically leases up to limit due rows
// (nexttry <= now) by moving their nexttry to now+lease, so two trackers never work on the same row
// at once; a tracker that dies leaves the row to come due again after the lease. Done removes a
// row; Retry reschedules it.
type Queues interface {
	Enqueue(ctx context.Context, q Queue, j Job) error // replaces an existing row of the same fid
	Claim(ctx context.Context, q Queue, now int64, lease time.Duration, limit int) ([]Job, error)
	Done(ctx context.Context, q Queue, fid int64) error
	Retry(ctx context.Context, q Queue, j Job) error // sets NextTry, FailCount, FromDevID from j
	QueueLen(ctx context.Context, q Queue) (int64, error)
	QueueJobs(ctx context.Context, q Queue, fid int64) (Job, error) // ErrNotFound
	// ReplicateNow makes every deferred replication row (nexttry > now, parked and leased rows
	// included) due at now and returns how many it changed: the replicate_now command.
	ReplicateNow(ctx context.Context, now int64) (int64, error)
}

// FsckLog is the store's part about the fsck log.
type FsckLog interface {
	AddFsckEvent(ctx context.Context, e FsckEvent) error
	FsckEvents(ctx context.Context, afterLogID int64, limit int) ([]FsckEvent, error)
	ClearFsckLog(ctx context.Context) error
	// MaxFsckLogID returns the highest logid in fsck_log, or 0 when the log is empty.
	MaxFsckLogID(ctx context.Context) (int64, error)
}

// ServerSettings is the store's part about server settings.
type ServerSettings interface {
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, key, value string) error // value "" deletes
	// SetSettings stores several settings in one transaction (a value "" deletes its key): other
	// trackers see all of the changes or none. An empty map changes nothing.
	SetSettings(ctx context.Context, kv map[string]string) error
}

// Locker takes locks shared by every tracker on the database (MySQL GET_LOCK names, §6.4 of the
// spec). The lock is held until unlock is called; ErrLocked after timeout.
type Locker interface {
	Lock(ctx context.Context, name string, timeout time.Duration) (unlock func(), err error)
}
