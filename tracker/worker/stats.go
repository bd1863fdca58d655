package worker

import "sync/atomic"

// Stats is a snapshot of the workers' counters since New.
type Stats struct {
	MonitorRounds     uint64 `json:"monitor_rounds"`     // full device rounds finished
	UsageUpdates      uint64 `json:"usage_updates"`      // device usage rows written
	Replicated        uint64 `json:"replicated"`         // copies made by replication
	ReplicatedBytes   uint64 `json:"replicated_bytes"`   // bytes written by those copies
	ReplicateDone     uint64 `json:"replicate_done"`     // fids whose policy became satisfied
	ReplicateRetries  uint64 `json:"replicate_retries"`  // fids rescheduled after a failure
	ReplicateParked   uint64 `json:"replicate_parked"`   // fids parked with no source (nexttry never)
	CopyErrors        uint64 `json:"copy_errors"`        // failed copies (source or destination)
	SurplusRemoved    uint64 `json:"surplus_removed"`    // copies removed from over-replicated fids
	DeletedCopies     uint64 `json:"deleted_copies"`     // copies deleted from storage nodes (2xx or 404)
	DeleteDone        uint64 `json:"delete_done"`        // fids with every copy gone
	DeleteRetries     uint64 `json:"delete_retries"`     // fids deferred (node down, readonly, error)
	Reaped            uint64 `json:"reaped"`             // copies dropped from dead devices
	TempfilesReaped   uint64 `json:"tempfiles_reaped"`   // stale uploads removed
	FsckChecked       uint64 `json:"fsck_checked"`       // fids checked by fsck
	FsckEvents        uint64 `json:"fsck_events"`        // fsck_log rows written
	Panics            uint64 `json:"panics"`             // recovered panics in worker passes
	LockBusy          uint64 `json:"lock_busy"`          // fids skipped because another tracker held their lock
	ClaimedReplicates uint64 `json:"claimed_replicates"` // replication rows claimed
	ClaimedDeletes    uint64 `json:"claimed_deletes"`    // delete rows claimed
	Rebalanced        uint64 `json:"rebalanced"`         // copies moved by rebalance
}

type counters struct {
	monitorRounds, usageUpdates                              atomic.Uint64
	replicated, replicatedBytes, replicateDone               atomic.Uint64
	replicateRetries, replicateParked, copyErrors            atomic.Uint64
	surplusRemoved, deletedCopies, deleteDone, deleteRetries atomic.Uint64
	reaped, tempfilesReaped, fsckChecked, fsckEvents, panics atomic.Uint64
	lockBusy, claimedReplicates, claimedDeletes, rebalanced  atomic.Uint64
}

// Stats returns a snapshot of the counters. It is safe to call at any time.
func (w *Workers) Stats() Stats {
	c := &w.stats
	return Stats{
		MonitorRounds:     c.monitorRounds.Load(),
		UsageUpdates:      c.usageUpdates.Load(),
		Replicated:        c.replicated.Load(),
		ReplicatedBytes:   c.replicatedBytes.Load(),
		ReplicateDone:     c.replicateDone.Load(),
		ReplicateRetries:  c.replicateRetries.Load(),
		ReplicateParked:   c.replicateParked.Load(),
		CopyErrors:        c.copyErrors.Load(),
		SurplusRemoved:    c.surplusRemoved.Load(),
		DeletedCopies:     c.deletedCopies.Load(),
		DeleteDone:        c.deleteDone.Load(),
		DeleteRetries:     c.deleteRetries.Load(),
		Reaped:            c.reaped.Load(),
		TempfilesReaped:   c.tempfilesReaped.Load(),
		FsckChecked:       c.fsckChecked.Load(),
		FsckEvents:        c.fsckEvents.Load(),
		Panics:            c.panics.Load(),
		LockBusy:          c.lockBusy.Load(),
		ClaimedReplicates: c.claimedReplicates.Load(),
		ClaimedDeletes:    c.claimedDeletes.Load(),
		Rebalanced:        c.rebalanced.Load(),
	}
}
