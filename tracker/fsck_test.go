package tracker

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// fsckSettings returns the fsck_ server settings.
func fsckSettings(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	all, err := st.Settings(context.Background())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	out := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, "fsck_") {
			out[k] = v
		}
	}
	return out
}

// TestFsckSettings checks the settings fsck_reset, fsck_start and fsck_stop leave behind, each
// written in one transaction, and that fsck_status reports the log's highest logid.
func TestFsckSettings(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	ctx := context.Background()
	d, err := tt.st.CreateDomain(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	var maxFid int64
	for i := range 7 {
		key := fmt.Sprint("k", i)
		fid, err := tt.st.CreateTempfile(ctx, store.Tempfile{DomainID: d.ID, Key: key, DevIDs: []int{1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tt.st.CommitFile(ctx, store.Commit{File: store.File{Fid: fid, DomainID: d.ID, Key: key}, DevIDs: []int{1}}); err != nil {
			t.Fatal(err)
		}
		maxFid = fid
	}
	for _, code := range []string{"MISS", "NOPA", "MISS"} {
		if err := tt.st.AddFsckEvent(ctx, store.FsckEvent{UTime: 100, Fid: 1, EvCode: code}); err != nil {
			t.Fatal(err)
		}
	}
	maxLog, err := tt.st.MaxFsckLogID(ctx)
	if err != nil || maxLog <= 0 {
		t.Fatalf("MaxFsckLogID() = %d, %v, want > 0", maxLog, err)
	}
	sums := map[string]string{"fsck_sum_evcount_MISS": "2", "fsck_sum_evcount_NOPA": "1", "fsck_start_time": "77"}
	if err := tt.st.SetSettings(ctx, sums); err != nil {
		t.Fatal(err)
	}
	if got := lc.ok("fsck_status").Get("max_logid"); got != strconv.FormatInt(maxLog, 10) {
		t.Errorf("fsck_status max_logid = %q, want %d", got, maxLog)
	}

	lc.ok("fsck_reset policy_only=1&startpos=5")
	logid := strconv.FormatInt(maxLog, 10)
	want := map[string]string{
		"fsck_opt_policy_only":     "1",
		"fsck_highest_fid_checked": "5",
		"fsck_fids_checked":        "0",
		"fsck_fid_at_end":          strconv.FormatInt(maxFid, 10),
		"fsck_start_maxlogid":      logid,
		"fsck_logid_processed":     logid,
	}
	if got := fsckSettings(t, tt.st); !reflect.DeepEqual(got, want) {
		t.Fatalf("settings after fsck_reset = %v, want %v", got, want)
	}

	// A run that has not reached its end fid carries on from where it was.
	lc.ok("fsck_start")
	got := fsckSettings(t, tt.st)
	start := got["fsck_start_time"]
	if n, err := strconv.ParseInt(start, 10, 64); err != nil || n < 1600000000 {
		t.Errorf("fsck_start_time after fsck_start = %q, want the current time", start)
	}
	want = maps.Clone(want)
	want["fsck_start_time"] = start
	want["fsck_start_fid"] = "5"
	want["fsck_host"] = "tracker-test"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("settings after fsck_start = %v, want %v", got, want)
	}

	lc.ok("fsck_stop")
	got = fsckSettings(t, tt.st)
	stop := got["fsck_stop_time"]
	if n, err := strconv.ParseInt(stop, 10, 64); err != nil || n < 1600000000 {
		t.Errorf("fsck_stop_time after fsck_stop = %q, want the current time", stop)
	}
	delete(want, "fsck_host")
	want["fsck_stop_time"] = stop
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("settings after fsck_stop = %v, want %v", got, want)
	}

	// A finished run starts over: fsck_start resets first, in the same transaction.
	if err := tt.st.SetSettings(ctx, map[string]string{"fsck_highest_fid_checked": strconv.FormatInt(maxFid, 10), "fsck_sum_evcount_MISS": "4"}); err != nil {
		t.Fatal(err)
	}
	lc.ok("fsck_start")
	got = fsckSettings(t, tt.st)
	want = map[string]string{
		"fsck_opt_policy_only":     "1",
		"fsck_highest_fid_checked": strconv.FormatInt(maxFid, 10),
		"fsck_fids_checked":        "0",
		"fsck_fid_at_end":          strconv.FormatInt(maxFid, 10),
		"fsck_start_maxlogid":      logid,
		"fsck_logid_processed":     logid,
		"fsck_start_time":          got["fsck_start_time"],
		"fsck_start_fid":           strconv.FormatInt(maxFid, 10),
		"fsck_host":                "tracker-test",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("settings after fsck_start of a finished run = %v, want %v", got, want)
	}
}
