package tracker

import (
	"context"
	"errors"
	"strconv"

	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
)

// query is one command being answered.
type query struct {
	s    *Server
	ctx  context.Context
	args mogproto.Args
	cl   client
	// res is room for a reply's arguments that a handler may fill and return (get_paths); the
	// reply is written before the next query reuses it.
	res mogproto.Args
}

// handler answers a command: OK with the returned args, or ERR with the returned *mogproto.Error.
// Any other error is logged and answered `ERR failure`.
type handler func(q *query) (mogproto.Args, error)

// commands maps wire command names to their handlers. It is never modified.
var commands = map[string]handler{
	mogproto.CmdCreateOpen:  (*query).createOpen,
	mogproto.CmdCreateClose: (*query).createClose,
	mogproto.CmdGetPaths:    (*query).getPaths,
	mogproto.CmdDelete:      (*query).delete,
	mogproto.CmdRename:      (*query).rename,
	mogproto.CmdUpdateClass: (*query).updateFileClass,
	mogproto.CmdFileInfo:    (*query).fileInfo,
	mogproto.CmdFileDebug:   (*query).fileDebug,
	mogproto.CmdListKeys:    (*query).listKeys,
	mogproto.CmdListFids:    (*query).listFids,

	mogproto.CmdCreateDomain:   (*query).createDomain,
	mogproto.CmdDeleteDomain:   (*query).deleteDomain,
	mogproto.CmdGetDomains:     (*query).getDomains,
	mogproto.CmdCreateClass:    (*query).createClass,
	mogproto.CmdUpdateClassDef: (*query).updateClass,
	mogproto.CmdDeleteClass:    (*query).deleteClass,

	mogproto.CmdCreateHost:   (*query).createHost,
	mogproto.CmdUpdateHost:   (*query).updateHost,
	mogproto.CmdDeleteHost:   (*query).deleteHost,
	mogproto.CmdGetHosts:     (*query).getHosts,
	mogproto.CmdCreateDevice: (*query).createDevice,
	mogproto.CmdSetState:     (*query).setState,
	mogproto.CmdSetWeight:    (*query).setWeight,
	mogproto.CmdGetDevices:   (*query).getDevices,

	mogproto.CmdServerSetting:    (*query).serverSetting,
	mogproto.CmdServerSettings:   (*query).serverSettings,
	mogproto.CmdSetServerSetting: (*query).setServerSetting,

	mogproto.CmdNoop:           (*query).noop,
	mogproto.CmdTest:           (*query).test,
	mogproto.CmdSleep:          (*query).sleep,
	mogproto.CmdClearCache:     (*query).clearCache,
	mogproto.CmdDoMonitorRound: (*query).doMonitorRound,
	mogproto.CmdReplicateNow:   (*query).replicateNow,

	mogproto.CmdFsckStart:    (*query).fsckStart,
	mogproto.CmdFsckStop:     (*query).fsckStop,
	mogproto.CmdFsckReset:    (*query).fsckReset,
	mogproto.CmdFsckClearLog: (*query).fsckClearLog,
	mogproto.CmdFsckGetLog:   (*query).fsckGetLog,
	mogproto.CmdFsckStatus:   (*query).fsckStatus,

	mogproto.CmdRebalanceStatus: (*query).rebalanceStatus,
}

// perr returns the ERR reply for code with its fixed message.
func perr(code string) error { return mogproto.NewError(code) }

// perrMsg returns the ERR reply for code with a dynamic message.
func perrMsg(code, msg string) error { return &mogproto.Error{Code: code, Message: msg} }

// dbErr turns a store failure into `ERR db`, keeping the cause for the log.
func (q *query) dbErr(op string, err error) error {
	q.s.log.Error("database error", "op", op, "err", err)
	q.s.broadcast("Database error in " + op + ": " + err.Error())
	return perr(mogproto.ErrDB)
}

// truthy is Perl truth for an argument value: present, non-empty and not "0".
func truthy(v string) bool { return v != "" && v != "0" }

// perlInt reads an argument as Perl's numeric conversion does for the values clients send: the
// leading decimal digits (with an optional sign); anything else is 0.
func perlInt(v string) int64 {
	i := 0
	neg := false
	if i < len(v) && (v[i] == '-' || v[i] == '+') {
		neg = v[i] == '-'
		i++
	}
	var n int64
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		if n > (1<<62)/10 {
			break
		}
		n = n*10 + int64(v[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

// isDigits reports whether v is a non-empty run of ASCII digits.
func isDigits(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// domainKey checks the domain and the key argument, in that order (spec 3.0: no_domain and
// unreg_domain come before no_key).
func (q *query) domainKey() (store.Domain, string, error) {
	d, err := q.domain()
	if err != nil {
		return store.Domain{}, "", err
	}
	key, err := q.key("key")
	if err != nil {
		return store.Domain{}, "", err
	}
	return d, key, nil
}

// domain checks the `domain` argument as every file command does (spec 3.0).
func (q *query) domain() (store.Domain, error) {
	name := q.args.Get("domain")
	if name == "" {
		return store.Domain{}, perr(mogproto.ErrNoDomain)
	}
	d, ok := q.s.state.current().domainByName[name]
	if !ok {
		return store.Domain{}, perr(mogproto.ErrUnregDomain)
	}
	return d, nil
}

// key returns a non-empty key argument, or `ERR no_key`. Key "0" is valid.
func (q *query) key(name string) (string, error) {
	k := q.args.Get(name)
	if k == "" {
		return "", perr(mogproto.ErrNoKey)
	}
	return k, nil
}

// refresh reloads the cached tables after an admin change, so this tracker answers with it at once.
func (q *query) refresh() error {
	if err := q.s.state.reload(q.ctx); err != nil {
		return q.dbErr("reload", err)
	}
	return nil
}

func itoa(i int) string     { return strconv.Itoa(i) }
func i64toa(i int64) string { return strconv.FormatInt(i, 10) }

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
func isExists(err error) bool   { return errors.Is(err, store.ErrExists) }
