package tracker

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"

	"strings"
	"time"

	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
)

// miscCommander is what the fsck, settings and replicate_now commands ask of the store.
type miscCommander interface {
	FsckEvents(ctx context.Context, afterLogID int64, limit int) ([]store.FsckEvent, error)
	ClearFsckLog(ctx context.Context) error
	MaxFsckLogID(ctx context.Context) (int64, error)
	MaxFid(ctx context.Context) (int64, error)
	ReplicateNow(ctx context.Context, now int64) (int64, error)
	Settings(ctx context.Context) (map[string]string, error)
	SetSettings(ctx context.Context, kv map[string]string) error
}

func (q *query) noop() (mogproto.Args, error) { return nil, nil }

// test answers OK, or fails on purpose with crash=1 (the Perl test suite's check that a failing
// command leaves the connection usable).
func (q *query) test() (mogproto.Args, error) {
	if truthy(q.args.Get("crash")) {
		return nil, fmt.Errorf("crashed on purpose")
	}
	return nil, nil
}

// maxSleep caps the sleep command, as the Perl query worker's 30 s watchdog does.
const maxSleep = 30 * time.Second

// sleep answers OK after `duration` seconds (default 10, at most 30): a test aid of the Perl client.
func (q *query) sleep() (mogproto.Args, error) {
	d := time.Duration(perlInt(q.args.Get("duration"))) * time.Second
	if d <= 0 {
		d = 10 * time.Second
	}
	d = min(d, maxSleep)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, nil
	case <-q.ctx.Done():
		return nil, q.ctx.Err()
	}
}

// monitorRoundTimeout bounds how long clear_cache and do_monitor_round wait for a monitor round.
const monitorRoundTimeout = 30 * time.Second

// clearCache forces a monitor round and a reload of the cached tables, then echoes the request's
// arguments (the Perl Admin library sends all=1 and expects all=1 back).
func (q *query) clearCache() (mogproto.Args, error) {
	if err := q.waitMonitor(); err != nil {
		return nil, err
	}
	if err := q.refresh(); err != nil {
		return nil, err
	}
	res := make(mogproto.Args, 0, len(q.args))
	for _, a := range q.args {
		if a.Name != "callid" {
			res = append(res, a)
		}
	}
	return res, nil
}

func (q *query) doMonitorRound() (mogproto.Args, error) {
	if err := q.waitMonitor(); err != nil {
		return nil, err
	}
	return nil, nil
}

func (q *query) waitMonitor() error {
	bg := q.s.background()
	if bg == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(q.ctx, monitorRoundTimeout)
	defer cancel()
	if err := bg.MonitorRound(ctx); err != nil {
		return fmt.Errorf("waiting for a monitor round: %w", err)
	}
	return nil
}

// replicateNow makes every deferred replication due now and says how many rows it changed.
func (q *query) replicateNow() (mogproto.Args, error) {
	n, err := q.s.misc.ReplicateNow(q.ctx, time.Now().Unix())
	if err != nil {
		return nil, q.dbErr("replicate_now", err)
	}
	q.s.kick(jobReplicate)
	return mogproto.Args{{Name: "count", Value: i64toa(n)}}, nil
}

func (q *query) serverSetting() (mogproto.Args, error) {
	key := q.args.Get("key")
	if !truthy(key) {
		return nil, perr(mogproto.ErrBadParams)
	}
	settings, err := q.s.misc.Settings(q.ctx)
	if err != nil {
		return nil, q.dbErr("server_setting", err)
	}
	return mogproto.Args{{Name: "key", Value: key}, {Name: "value", Value: settings[key]}}, nil
}

// serverSettings lists the settings, hiding fsck state except fsck_checksum.
func (q *query) serverSettings() (mogproto.Args, error) {
	settings, err := q.s.misc.Settings(q.ctx)
	if err != nil {
		return nil, q.dbErr("server_settings", err)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		if strings.HasPrefix(k, "fsck_") && k != "fsck_checksum" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var res mogproto.Args
	if len(keys) > 0 {
		res.Add("key_count", itoa(len(keys)))
	}
	for i, k := range keys {
		res.Add("key_"+itoa(i+1), k)
		res.Add("value_"+itoa(i+1), settings[k])
	}
	return res, nil
}

var digitsRE = regexp.MustCompile(`^\d+$`)

// settingValue validates a value for a writable server setting (MogileFS::Config
// server_setting_is_writable). It returns the value to store ("" deletes the row), whether the key
// is writable at all, and a validation error message.
func settingValue(key, v string) (clean string, writable bool, problem string) {
	boolean := func() (string, bool, string) {
		lv := strings.ToLower(v)
		switch {
		case v == "":
			return "0", true, ""
		case lv == "0" || strings.HasPrefix(lv, "f") || strings.HasPrefix(lv, "off") || strings.HasPrefix(lv, "n"):
			return "0", true, ""
		case strings.HasPrefix(lv, "1") || strings.HasPrefix(lv, "t") || strings.HasPrefix(lv, "on") || strings.HasPrefix(lv, "y"):
			return "1", true, ""
		}
		return "", true, "Unknown format"
	}
	switch {
	case strings.HasPrefix(key, "slave_"):
		return v, true, ""
	case key == "skip_devcount", key == "skip_mkcol", key == "case_sensitive_list_keys":
		return boolean()
	case key == "memcache_servers", key == "network_zones", strings.HasPrefix(key, "queue_"):
		return v, true, ""
	case key == "memcache_ttl", key == "internal_queue_limit":
		if v == "" {
			return "0", true, ""
		}
		if !digitsRE.MatchString(v) {
			return "", true, "Doesn't match acceptable format."
		}
		return v, true, ""
	case strings.HasPrefix(key, "zone_"):
		for _, m := range strings.Split(v, ",") {
			if _, _, err := net.ParseCIDR(strings.TrimSpace(m)); err != nil {
				return "", true, "Doesn't match acceptable format."
			}
		}
		return v, true, ""
	case key == "fsck_checksum":
		if _, ok := store.ParseHash(v); ok || v == "off" {
			return v, true, ""
		}
		if v == "class" {
			return "", true, ""
		}
		return "", true, "Doesn't match acceptable format."
	}
	return "", false, ""
}

func (q *query) setServerSetting() (mogproto.Args, error) {
	key := q.args.Get("key")
	if !truthy(key) {
		return nil, perr(mogproto.ErrBadParams)
	}
	clean, writable, problem := settingValue(key, q.args.Get("value"))
	if !writable {
		return nil, perr(mogproto.ErrNotWritable)
	}
	if problem != "" {
		return nil, perrMsg(mogproto.ErrInvalidFormat, problem)
	}
	set := map[string]string{key: clean}
	if strings.HasPrefix(key, "slave_") {
		// A slave change bumps slave_version, in the same transaction as the change itself.
		settings, err := q.s.misc.Settings(q.ctx)
		if err != nil {
			return nil, q.dbErr("set_server_setting", err)
		}
		set["slave_version"] = i64toa(perlInt(settings["slave_version"]) + 1)
	}
	if err := q.s.misc.SetSettings(q.ctx, set); err != nil {
		return nil, q.dbErr("set_server_setting", err)
	}
	return nil, nil
}

// fsck control. The fsck worker does the checking; these commands record its settings in
// server_settings exactly as the Perl tracker does, so `mogadm fsck` works unchanged. Each command
// writes its settings in one transaction, so another tracker never sees half a start or reset.

func (q *query) fsckStart() (mogproto.Args, error) {
	ss, err := q.s.misc.Settings(q.ctx)
	if err != nil {
		return nil, q.dbErr("fsck_start", err)
	}
	if ss["fsck_host"] != "" {
		return nil, perrMsg(mogproto.ErrFsckRunning, "fsck is already running")
	}
	if ss["rebal_host"] != "" {
		return nil, perrMsg(mogproto.ErrRebalRunning, "rebalance running; cannot run fsck at same time")
	}
	set := map[string]string{}
	checked, final := perlInt(ss["fsck_highest_fid_checked"]), perlInt(ss["fsck_fid_at_end"])
	if (checked != 0 && final != 0 && checked >= final) || (final == 0 && checked == 0) {
		// The last run finished (or none ran): start over. The reset keeps
		// fsck_highest_fid_checked, so the start values below still read it from ss.
		if set, err = q.fsckResetSettings(ss); err != nil {
			return nil, q.dbErr("fsck_start", err)
		}
	}
	set["fsck_start_time"] = i64toa(time.Now().Unix())
	set["fsck_stop_time"] = ""
	set["fsck_fids_checked"] = "0"
	set["fsck_start_fid"] = i64toa(perlInt(ss["fsck_highest_fid_checked"]))
	set["fsck_host"] = q.s.hostname
	if err := q.s.misc.SetSettings(q.ctx, set); err != nil {
		return nil, q.dbErr("fsck_start", err)
	}
	q.s.kick(jobFsck)
	return nil, nil
}

func (q *query) fsckStop() (mogproto.Args, error) {
	set := map[string]string{"fsck_host": "", "fsck_stop_time": i64toa(time.Now().Unix())}
	if err := q.s.misc.SetSettings(q.ctx, set); err != nil {
		return nil, q.dbErr("fsck_stop", err)
	}
	return nil, nil
}

func (q *query) fsckReset() (mogproto.Args, error) {
	policy := ""
	if truthy(q.args.Get("policy_only")) {
		policy = "1"
	}
	start := "0"
	if v := q.args.Get("startpos"); truthy(v) {
		start = i64toa(perlInt(v))
	}
	ss, err := q.s.misc.Settings(q.ctx)
	if err != nil {
		return nil, q.dbErr("fsck_reset", err)
	}
	set, err := q.fsckResetSettings(ss)
	if err != nil {
		return nil, q.dbErr("fsck_reset", err)
	}
	set["fsck_opt_policy_only"] = policy
	set["fsck_highest_fid_checked"] = start
	if err := q.s.misc.SetSettings(q.ctx, set); err != nil {
		return nil, q.dbErr("fsck_reset", err)
	}
	return nil, nil
}

// fsckResetSettings returns the settings that reset an fsck run, given the current ones ss: its
// times, counters and event sums cleared, and where the run ends (the highest fid and fsck_log
// logid now).
func (q *query) fsckResetSettings(ss map[string]string) (map[string]string, error) {
	maxFid, err := q.s.misc.MaxFid(q.ctx)
	if err != nil {
		return nil, err
	}
	maxLog, err := q.s.misc.MaxFsckLogID(q.ctx)
	if err != nil {
		return nil, err
	}
	set := map[string]string{
		"fsck_start_time":      "",
		"fsck_stop_time":       "",
		"fsck_fids_checked":    "0",
		"fsck_fid_at_end":      i64toa(maxFid),
		"fsck_start_maxlogid":  i64toa(maxLog),
		"fsck_logid_processed": i64toa(maxLog),
	}
	for k := range ss {
		if strings.HasPrefix(k, "fsck_sum_evcount_") {
			set[k] = ""
		}
	}
	return set, nil
}

func (q *query) fsckClearLog() (mogproto.Args, error) {
	if err := q.s.misc.ClearFsckLog(q.ctx); err != nil {
		return nil, q.dbErr("fsck_clearlog", err)
	}
	return nil, nil
}

func (q *query) fsckGetLog() (mogproto.Args, error) {
	evs, err := q.s.misc.FsckEvents(q.ctx, perlInt(q.args.Get("after_logid")), 100)
	if err != nil {
		return nil, q.dbErr("fsck_getlog", err)
	}
	var res mogproto.Args
	for i, e := range evs {
		p := "row_" + itoa(i+1) + "_"
		res.Add(p+"logid", i64toa(e.LogID))
		res.Add(p+"utime", i64toa(e.UTime))
		if e.Fid != 0 {
			res.Add(p+"fid", i64toa(e.Fid))
		}
		res.Add(p+"evcode", e.EvCode)
		if e.DevID != 0 {
			res.Add(p+"devid", itoa(e.DevID))
		}
	}
	res.Add("row_count", itoa(len(evs)))
	return res, nil
}

func (q *query) fsckStatus() (mogproto.Args, error) {
	ss, err := q.s.misc.Settings(q.ctx)
	if err != nil {
		return nil, q.dbErr("fsck_status", err)
	}
	maxLog, err := q.s.misc.MaxFsckLogID(q.ctx)
	if err != nil {
		return nil, q.dbErr("fsck_status", err)
	}
	num := func(k string) string { return i64toa(perlInt(ss[k])) }
	running := "0"
	if ss["fsck_host"] != "" {
		running = "1"
	}
	res := mogproto.Args{
		{Name: "running", Value: running},
		{Name: "host", Value: ss["fsck_host"]},
		{Name: "max_fid_checked", Value: num("fsck_highest_fid_checked")},
		{Name: "policy_only", Value: num("fsck_opt_policy_only")},
		{Name: "end_fid", Value: num("fsck_fid_at_end")},
		{Name: "start_time", Value: num("fsck_start_time")},
		{Name: "stop_time", Value: num("fsck_stop_time")},
		{Name: "current_time", Value: i64toa(time.Now().Unix())},
		{Name: "max_logid", Value: i64toa(maxLog)},
	}
	var codes []string
	for k := range ss {
		if strings.HasPrefix(k, "fsck_sum_evcount_") {
			codes = append(codes, k)
		}
	}
	sort.Strings(codes)
	for _, k := range codes {
		res.Add("num_"+strings.TrimPrefix(k, "fsck_sum_evcount_"), num(k))
	}
	return res, nil
}

func (q *query) rebalanceStatus() (mogproto.Args, error) {
	ss, err := q.s.misc.Settings(q.ctx)
	if err != nil {
		return nil, q.dbErr("rebalance_status", err)
	}
	if ss["rebal_state"] == "" {
		return nil, perr(mogproto.ErrNoRebalState)
	}
	return mogproto.Args{{Name: "state", Value: ss["rebal_state"]}}, nil
}
