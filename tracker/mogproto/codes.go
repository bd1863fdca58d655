package mogproto

// Command names in wire spelling.
const (
	CmdCreateOpen         = "create_open"
	CmdCreateClose        = "create_close"
	CmdGetPaths           = "get_paths"
	CmdDelete             = "delete"
	CmdRename             = "rename"
	CmdUpdateClass        = "updateclass"
	CmdFileInfo           = "file_info"
	CmdFileDebug          = "file_debug"
	CmdListKeys           = "list_keys"
	CmdListFids           = "list_fids"
	CmdEditFile           = "edit_file"
	CmdCreateDomain       = "create_domain"
	CmdDeleteDomain       = "delete_domain"
	CmdGetDomains         = "get_domains"
	CmdCreateClass        = "create_class"
	CmdUpdateClassDef     = "update_class"
	CmdDeleteClass        = "delete_class"
	CmdCreateHost         = "create_host"
	CmdUpdateHost         = "update_host"
	CmdDeleteHost         = "delete_host"
	CmdGetHosts           = "get_hosts"
	CmdCreateDevice       = "create_device"
	CmdSetState           = "set_state"
	CmdSetWeight          = "set_weight"
	CmdGetDevices         = "get_devices"
	CmdServerSetting      = "server_setting"
	CmdServerSettings     = "server_settings"
	CmdSetServerSetting   = "set_server_setting"
	CmdNoop               = "noop"
	CmdTest               = "test"
	CmdSleep              = "sleep"
	CmdClearCache         = "clear_cache"
	CmdDoMonitorRound     = "do_monitor_round"
	CmdReplicateNow       = "replicate_now"
	CmdHTTPCopy           = "httpcopy"
	CmdFsckStart          = "fsck_start"
	CmdFsckStop           = "fsck_stop"
	CmdFsckReset          = "fsck_reset"
	CmdFsckClearLog       = "fsck_clearlog"
	CmdFsckGetLog         = "fsck_getlog"
	CmdFsckStatus         = "fsck_status"
	CmdRebalanceStatus    = "rebalance_status"
	CmdRebalanceStart     = "rebalance_start"
	CmdRebalanceTest      = "rebalance_test"
	CmdRebalanceStop      = "rebalance_stop"
	CmdRebalanceReset     = "rebalance_reset"
	CmdRebalanceSetPolicy = "rebalance_set_policy"
)

// ERR codes in wire spelling (spec 3.0 and the command tables of section 3).
const (
	ErrAfterMismatch         = "after_mismatch"
	ErrBadArgs               = "bad_args"
	ErrBadParams             = "bad_params"
	ErrBadRebalPol           = "bad_rebal_pol"
	ErrBogusArgs             = "bogus_args"
	ErrChecksumMismatch      = "checksum_mismatch"
	ErrClassExists           = "class_exists"
	ErrClassHasFiles         = "class_has_files"
	ErrClassNotFound         = "class_not_found"
	ErrCopyErr               = "copy_err"
	ErrDB                    = "db"
	ErrDomainExists          = "domain_exists"
	ErrDomainHasClasses      = "domain_has_classes"
	ErrDomainHasFiles        = "domain_has_files"
	ErrDomainNotFound        = "domain_not_found"
	ErrDup                   = "dup"
	ErrExistingDevid         = "existing_devid"
	ErrFailure               = "failure"
	ErrFidExists             = "fid_exists"
	ErrFidInUse              = "fid_in_use"
	ErrFsckRunning           = "fsck_running"
	ErrHostExists            = "host_exists"
	ErrHostMismatch          = "host_mismatch"
	ErrHostNotEmpty          = "host_not_empty"
	ErrHostNotFound          = "host_not_found"
	ErrInvalidChecksumFormat = "invalid_checksum_format"
	ErrInvalidDestdev        = "invalid_destdev"
	ErrInvalidDevid          = "invalid_devid"
	ErrInvalidFormat         = "invalid_format"
	ErrInvalidHashtype       = "invalid_hashtype"
	ErrInvalidKey            = "invalid_key"
	ErrInvalidMindevcount    = "invalid_mindevcount"
	ErrInvalidReplpolicy     = "invalid_replpolicy"
	ErrInvalidState          = "invalid_state"
	ErrKeyExists             = "key_exists"
	ErrNoClass               = "no_class"
	ErrNoDevice              = "no_device"
	ErrNoDevices             = "no_devices"
	ErrNoDevid               = "no_devid"
	ErrNoDomain              = "no_domain"
	ErrNoFid                 = "no_fid"
	ErrNoHost                = "no_host"
	ErrNoIP                  = "no_ip"
	ErrNoKey                 = "no_key"
	ErrNoPath                = "no_path"
	ErrNoPort                = "no_port"
	ErrNoRebalPolicy         = "no_rebal_policy"
	ErrNoRebalState          = "no_rebal_state"
	ErrNoSetRebal            = "no_set_rebal"
	ErrNoTempFile            = "no_temp_file"
	ErrNodelDefaultClass     = "nodel_default_class"
	ErrNoneMatch             = "none_match"
	ErrNotWritable           = "not_writable"
	ErrPluginAborted         = "plugin_aborted"
	ErrRebalNotStarted       = "rebal_not_started"
	ErrRebalRunning          = "rebal_running"
	ErrSizeMismatch          = "size_mismatch"
	ErrSizeVerifyError       = "size_verify_error"
	ErrStateTooHigh          = "state_too_high"
	ErrUnknownCommand        = "unknown_command"
	ErrUnknownFid            = "unknown_fid"
	ErrUnknownHost           = "unknown_host"
	ErrUnknownHostid         = "unknown_hostid"
	ErrUnknownKey            = "unknown_key"
	ErrUnknownState          = "unknown_state"
	ErrUnregClass            = "unreg_class"
	ErrUnregDomain           = "unreg_domain"
)

// Message returns the tracker's fixed English message for code (spec 3.0), or code itself for codes
// without one, which is what the tracker sends for them.
func Message(code string) string {
	switch code {
	case ErrAfterMismatch:
		return "Pattern does not match the after-value?"
	case ErrBadParams:
		return "Invalid parameters to command; please see documentation"
	case ErrClassExists:
		return "That class already exists in that domain"
	case ErrClassHasFiles:
		return "Class still has files, unable to delete"
	case ErrClassNotFound:
		return "Class not found"
	case ErrDB:
		return "Database error"
	case ErrDomainExists:
		return "That domain already exists"
	case ErrDomainHasFiles:
		return "Domain still has files, unable to delete"
	case ErrDomainNotFound:
		return "Domain not found"
	case ErrDup:
		return "Duplicate name/number used."
	case ErrFailure:
		return "Operation failed"
	case ErrHostExists:
		return "That host already exists"
	case ErrHostMismatch:
		return "The device specified doesn't belong to the host specified"
	case ErrHostNotEmpty:
		return "Unable to delete host; it contains devices still"
	case ErrHostNotFound:
		return "Host not found"
	case ErrInvalidMindevcount:
		return "The mindevcount must be at least 1"
	case ErrKeyExists:
		return "Target key name already exists; can't overwrite."
	case ErrNoClass:
		return "No class provided"
	case ErrNoDevices:
		return "No devices found to store file"
	case ErrNoDevice:
		return "Device not found"
	case ErrNoDomain:
		return "No domain provided"
	case ErrNoHost:
		return "No host provided"
	case ErrNoIP:
		return "IP required to create host"
	case ErrNoPort:
		return "Port required to create host"
	case ErrNoTempFile:
		return "No tempfile or file already closed"
	case ErrNoneMatch:
		return "No keys match that pattern and after-value (if any)."
	case ErrPluginAborted:
		return "Action aborted by plugin"
	case ErrStateTooHigh:
		return "Status cannot go from dead to alive; must use down"
	case ErrUnknownCommand:
		return "Unknown server command"
	case ErrUnknownHost:
		return "Host not found"
	case ErrUnknownState:
		return "Invalid/unknown state"
	case ErrUnregDomain:
		return "Domain name invalid/not found"
	case ErrRebalNotStarted:
		return "Rebalance not running"
	case ErrNoRebalState:
		return "No available rebalance status"
	case ErrNoRebalPolicy:
		return "No rebalance policy available"
	case ErrNodelDefaultClass:
		return "Cannot delete the default class"
	}
	return code
}

// Idempotent reports whether cmd only reads tracker state, so that resending it to another tracker
// after a lost reply cannot change anything. create_close, delete, rename and every admin mutation
// are not idempotent.
func Idempotent(cmd string) bool {
	switch cmd {
	case CmdGetPaths, CmdFileInfo, CmdFileDebug, CmdListKeys, CmdListFids, CmdGetDomains,
		CmdGetHosts, CmdGetDevices, CmdServerSetting, CmdServerSettings, CmdNoop,
		CmdFsckStatus, CmdFsckGetLog, CmdRebalanceStatus, CmdRebalanceTest:
		return true
	}
	return false
}
