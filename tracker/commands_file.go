package tracker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/node"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/worker"
)

// fileCommander is what the file commands (create_open to list_fids) ask of the store.
type fileCommander interface {
	CreateTempfile(ctx context.Context, t store.Tempfile) (int64, error)
	Tempfile(ctx context.Context, fid int64) (store.Tempfile, error)
	DiscardUpload(ctx context.Context, fid int64, devIDs ...int) error
	CommitFile(ctx context.Context, c store.Commit) (replaced int64, err error)
	FileByKey(ctx context.Context, domainID int, key string) (store.File, error)
	FileByFid(ctx context.Context, fid int64) (store.File, error)
	DeleteFile(ctx context.Context, domainID int, key string) (store.File, error)
	RenameFile(ctx context.Context, domainID int, from, to string) error
	SetFileClass(ctx context.Context, fid int64, classID int) error
	ListKeys(ctx context.Context, domainID int, prefix, after string, limit int) ([]string, error)
	ListFids(ctx context.Context, fromFid int64, count int) ([]store.File, error)
	FileOn(ctx context.Context, fid int64) ([]int, error)
	Locate(ctx context.Context, domainID int, key string) (store.Location, error)
	Checksum(ctx context.Context, fid int64) (store.Checksum, error)
	QueueJobs(ctx context.Context, q store.Queue, fid int64) (store.Job, error)
}

// errKeyTooLong answers a key longer than the schema's 255 bytes. The Perl tracker on a strict MySQL
// answers `ERR db` or `ERR failure`; mogway says what is wrong.
func errKeyTooLong() error {
	return perrMsg(mogproto.ErrBadParams, "Key longer than "+strconv.Itoa(store.MaxKeyLen)+" bytes")
}

// createOpen allocates a fid and offers destinations for a new file (spec 3.1 create_open).
func (q *query) createOpen() (mogproto.Args, error) {
	d, err := q.domain()
	if err != nil {
		return nil, err
	}
	key := q.args.Get("key")
	if key == "0" {
		key = "" // the Perl tracker stores `$args->{key} || ""`
	}
	if len(key) > store.MaxKeyLen {
		return nil, errKeyTooLong()
	}
	multi := truthy(q.args.Get("multi_dest"))
	size := perlInt(q.args.Get("size"))
	expFid := perlInt(q.args.Get("fid"))
	classID := 0
	if name := q.args.Get("class"); name != "" {
		c, ok := q.s.state.current().class(d.ID, name)
		if !ok {
			return nil, perr(mogproto.ErrUnregClass)
		}
		classID = c.ID
	}
	max := 1
	if multi {
		max = createOpenMaxDestinations
	}
	minFreeMB := int64(q.s.cfg.MinFreeSpace) / (1 << 20)
	dests := chooseDestinations(q.s.state.devices(), size, max, minFreeMB, q.s.rand)
	if len(dests) == 0 {
		return nil, perr(mogproto.ErrNoDevices)
	}
	if expFid < 0 || (expFid > 0 && expFid <= q.s.fidFloor()) {
		return nil, perr(mogproto.ErrFidInUse)
	}
	devids := make([]int, len(dests))
	for i, dd := range dests {
		devids[i] = dd.dev.ID
	}
	fid, err := q.s.files.CreateTempfile(q.ctx, store.Tempfile{
		Fid:        expFid,
		DomainID:   d.ID,
		ClassID:    classID,
		Key:        key,
		DevIDs:     devids,
		CreateTime: time.Now().Unix(),
	})
	if errors.Is(err, store.ErrFidInUse) {
		return nil, perr(mogproto.ErrFidInUse)
	}
	if err != nil {
		return nil, q.dbErr("create_open", err)
	}
	res := mogproto.Args{{Name: "fid", Value: i64toa(fid)}}
	if multi {
		res.Add("dev_count", itoa(len(dests)))
		for i, dd := range dests {
			n := itoa(i + 1)
			res.Add("devid_"+n, itoa(dd.dev.ID))
			res.Add("path_"+n, writeURL(dd.host, dd.dev.ID, fid, q.cl))
		}
	} else {
		res.Add("devid", itoa(dests[0].dev.ID))
		res.Add("path", writeURL(dests[0].host, dests[0].dev.ID, fid, q.cl))
	}
	return res, nil
}

// checksumArg matches create_close's checksum argument, "<ALG>:<hex>".
var checksumArg = regexp.MustCompile(`^([\w-]+):([0-9a-fA-F]{32,128})$`)

// parseChecksum parses "MD5:<32 hex>" or "SHA-1:<40 hex>".
func parseChecksum(fid int64, v string) (*store.Checksum, bool) {
	m := checksumArg.FindStringSubmatch(v)
	if m == nil {
		return nil, false
	}
	t, ok := store.ParseHash(m[1])
	if !ok || len(m[2]) != 2*t.Size() {
		return nil, false
	}
	sum, err := hex.DecodeString(m[2])
	if err != nil {
		return nil, false
	}
	return &store.Checksum{Fid: fid, Type: t, Sum: sum}, true
}

func checksumString(c store.Checksum) string {
	return c.Type.String() + ":" + hex.EncodeToString(c.Sum)
}

// createClose commits an upload (spec 3.1 create_close).
func (q *query) createClose() (mogproto.Args, error) {
	d, err := q.domain()
	if err != nil {
		return nil, err
	}
	key := q.args.Get("key")
	fid := perlInt(q.args.Get("fid"))
	if fid == 0 {
		return nil, perr(mogproto.ErrNoFid)
	}
	devid := perlInt(q.args.Get("devid"))
	if devid == 0 {
		return nil, perr(mogproto.ErrNoDevid)
	}
	path := q.args.Get("path")
	if path == "" || path == "0" {
		return nil, perr(mogproto.ErrNoPath)
	}
	var sum *store.Checksum
	if cs := q.args.Get("checksum"); truthy(cs) {
		var ok bool
		if sum, ok = parseChecksum(fid, cs); !ok {
			return nil, perr(mogproto.ErrInvalidChecksumFormat)
		}
	}
	dev, ok := q.s.state.device(int(devid))
	if !ok || fid < 0 || path != writeURL(dev.host, dev.dev.ID, fid, q.cl) {
		return nil, perr(mogproto.ErrBogusArgs)
	}
	if len(key) > store.MaxKeyLen {
		return nil, errKeyTooLong()
	}

	// The upload ends exactly once, in the store: CommitFile and DiscardUpload each take the
	// tempfile row in their own transaction, and whichever comes second, on this tracker or any
	// other sharing the database, finds it gone (ErrNotFound) and answers no_temp_file. The row read
	// here only supplies the offered devices and the class; it is never updated, so it cannot be
	// stale. A close that fails verification therefore never discards an upload that another close
	// committed meanwhile, and two closes never both commit.
	tf, err := q.s.files.Tempfile(q.ctx, fid)
	if isNotFound(err) {
		return nil, perr(mogproto.ErrNoTempFile)
	}
	if err != nil {
		return nil, q.dbErr("create_close", err)
	}
	ended := func(op string, err error) error {
		switch {
		case isNotFound(err):
			return perr(mogproto.ErrNoTempFile)
		case isExists(err):
			return perr(mogproto.ErrFidExists)
		}
		return q.dbErr(op, err)
	}

	// A failure discards the upload: the copy is recorded and the fid queued for deletion, so the
	// delete worker removes the bytes (MogileFS::Worker::Query $failed).
	fail := func(e error) (mogproto.Args, error) {
		if err := q.s.files.DiscardUpload(q.ctx, fid, int(devid)); err != nil {
			return nil, ended("create_close discard", err)
		}
		q.s.kick(jobDelete)
		return nil, e
	}

	if !slices.Contains(tf.DevIDs, int(devid)) {
		return fail(perrMsg(mogproto.ErrInvalidDestdev, fmt.Sprintf("File uploaded to invalid dest %d. Valid devices were: %s", devid, store.JoinDevIDs(tf.DevIDs))))
	}
	if key == "" {
		return fail(nil) // a close without a key aborts the upload
	}

	want := perlInt(q.args.Get("size"))
	if want == 0 {
		want = -1
	}
	asked := time.Now()
	size, err := q.s.node.Size(q.ctx, path)
	if err != nil {
		if di, ok := q.s.state.device(int(devid)); ok {
			q.noteNodeErr(di.host.ID, asked, err)
		}
		kind := "cantreach"
		if errors.Is(err, node.ErrNotFound) {
			kind = "missing"
		}
		return fail(perrMsg(mogproto.ErrSizeVerifyError, fmt.Sprintf("Expected: %d; actual: 0 (%s); path: %s; error: %v", want, kind, path, err)))
	}
	if want > -1 && want != size {
		return fail(perrMsg(mogproto.ErrSizeMismatch, fmt.Sprintf("Expected: %d; actual: %d; path: %s", want, size, path)))
	}
	if sum != nil && truthy(q.args.Get("checksumverify")) {
		ctx, cancel := context.WithTimeout(q.ctx, q.s.cfg.ChecksumTimeout.D())
		_, got, err := q.s.node.Digest(ctx, path, sum.Type, "")
		cancel()
		if err != nil || string(got) != string(sum.Sum) {
			msg := fmt.Sprintf("Expected: %s; actual: %s:%s; path: %s", checksumString(*sum), sum.Type, hex.EncodeToString(got), path)
			if err != nil {
				msg += "; error: " + err.Error()
			}
			return fail(perrMsg(mogproto.ErrChecksumMismatch, msg))
		}
	}

	n := q.s.state.current()
	class, _ := n.classByID(d.ID, tf.ClassID)
	c := store.Commit{
		File: store.File{
			Fid:      fid,
			DomainID: d.ID,
			ClassID:  tf.ClassID,
			Key:      key,
			Length:   size,
		},
		DevIDs:    []int{int(devid)},
		Replicate: worker.Copies(class) > 1,
	}
	if sum != nil && class.HashType == sum.Type {
		c.Checksum = sum
	}
	replaced, err := q.s.files.CommitFile(q.ctx, c)
	if err != nil {
		return nil, ended("create_close commit", err)
	}
	if c.Replicate {
		q.s.kick(jobReplicate)
	}
	if replaced != 0 {
		q.s.kick(jobDelete)
	}
	return nil, nil
}

// getPathsStack is the number of copies of a key get_paths orders without allocating.
const getPathsStack = 8

// pathNames are the reply's names of the first paths, so that naming them does not allocate.
var pathNames = [...]string{"path1", "path2", "path3", "path4", "path5", "path6", "path7", "path8"}

func pathName(i int) string {
	if i < len(pathNames) {
		return pathNames[i]
	}
	return "path" + itoa(i+1)
}

// getPaths lists where a key can be read (spec 3.1 get_paths). A key with up to getPathsStack
// copies is answered with one allocation, the string holding its URLs, without verification and
// with it when its check is answered within the hedge delay by a HEAD that no other query shares.
func (q *query) getPaths() (mogproto.Args, error) {
	d, key, err := q.domainKey()
	if err != nil {
		return nil, err
	}
	pathcount := int(perlInt(q.args.Get("pathcount")))
	if pathcount < 2 {
		pathcount = 2
	}
	noverify := truthy(q.args.Get("noverify"))
	f, err := q.s.files.Locate(q.ctx, d.ID, key)
	if isNotFound(err) {
		return nil, perr(mogproto.ErrUnknownKey)
	}
	if err != nil {
		return nil, q.dbErr("get_paths", err)
	}
	var devBuf [getPathsStack]devInfo
	var weightBuf [getPathsStack]float64
	devs, weights := devBuf[:0], weightBuf[:0]
	for _, id := range f.DevIDs {
		if di, ok := q.s.state.device(id); ok {
			devs = append(devs, di)
			weights = append(weights, readWeight(di))
		}
	}
	// The URLs are written one after the other into urls; a span is one of them.
	type span struct{ from, to int }
	var urlBuf [512]byte
	var orderBuf, idxBuf [getPathsStack]int
	var pathBuf, drainBuf [getPathsStack]span
	urls, paths, drain := urlBuf[:0], pathBuf[:0], drainBuf[:0]
	backup := span{-1, -1}
	// A copy whose check outlived the hedge delay (verify.go) is passed over like one that failed
	// its check, unless no other copy passes: the query then waits for those checks (below).
	var lateBuf [getPathsStack]lateCopy
	late := lateBuf[:0]
	// Every copy's URL is written before any is checked, so that the check's URL and the reply's
	// are parts of one string, allocated once.
	order := appendWeightedOrder(orderBuf[:0], idxBuf[:0], weights, q.s.rand)
	var spanBuf [getPathsStack]span
	spans := spanBuf[:0]
	for _, i := range order {
		di := devs[i]
		u := span{from: len(urls)}
		urls = appendReadURL(urls, di.host, di.dev.ID, f.Fid, q.cl)
		u.to = len(urls)
		spans = append(spans, u)
	}
	all := string(urls)
	for k, i := range order {
		di, u := devs[i], spans[k]
		if !di.readable() {
			backup = u
			continue
		}
		drained := di.dev.Status == "drain"
		if len(paths) == 0 && !noverify {
			// Only the first accepted path is verified, as in the Perl tracker.
			asked := time.Now()
			n, lv, err := q.s.verify.size(q.ctx, all[u.from:u.to], di.host.ID)
			if lv != nil {
				late = append(late, lateCopy{lv, u.from, u.to, drained})
				continue
			}
			q.noteNodeErr(di.host.ID, asked, err)
			if err != nil || n != f.Length {
				continue
			}
		}
		if drained {
			drain = append(drain, u)
			continue
		}
		paths = append(paths, u)
		if len(paths) == pathcount {
			break
		}
	}
	if len(paths) == 0 && len(drain) == 0 && len(late) > 0 {
		// Every copy checked failed or is late: the first late one whose check passes is the
		// answer, no later than without the hedge, where each check waited for the one before.
		if i := firstPassed(late, f.Length); i >= 0 {
			if l := late[i]; l.drained {
				drain = append(drain, span{l.from, l.to})
			} else {
				paths = append(paths, span{l.from, l.to})
			}
		}
	}
	for _, u := range drain {
		if len(paths) == pathcount {
			break
		}
		paths = append(paths, u)
	}
	if len(paths) == 0 && backup.from >= 0 {
		paths = append(paths, backup)
	}
	res := append(q.res[:0], mogproto.Arg{Name: "paths", Value: itoa(len(paths))})
	for i, u := range paths {
		res = append(res, mogproto.Arg{Name: pathName(i), Value: all[u.from:u.to]})
	}
	return res, nil
}

// lateCopy is a copy of a key whose get_paths check outlived the hedge delay: v, for the URL at
// from:to of the query's URLs.
type lateCopy struct {
	v        *lateVerify
	from, to int
	drained  bool // its device is in state drain
}

// firstPassed waits for the late checks until one of them passes (its HEAD gave length) and
// returns its index, or -1 once every check has failed. Each check's end is sent to one buffered
// channel by a goroutine that waits for it; the verifier ends every late HEAD (node_timeout, or
// its stop), so these goroutines end with the checks, also after firstPassed has returned.
func firstPassed(late []lateCopy, length int64) int {
	ended := make(chan int, len(late))
	for i, l := range late {
		go func() {
			<-l.v.done
			ended <- i
		}()
	}
	for range late {
		i := <-ended
		if v := late[i].v; v.err == nil && v.n == length {
			return i
		}
	}
	return -1
}

// delete removes a key; its copies are deleted later by the delete worker.
func (q *query) delete() (mogproto.Args, error) {
	d, key, err := q.domainKey()
	if err != nil {
		return nil, err
	}
	if _, err := q.s.files.DeleteFile(q.ctx, d.ID, key); err != nil {
		if isNotFound(err) {
			return nil, perr(mogproto.ErrUnknownKey)
		}
		return nil, q.dbErr("delete", err)
	}
	q.s.kick(jobDelete)
	return nil, nil
}

// rename moves a file to a new key in its domain.
func (q *query) rename() (mogproto.Args, error) {
	d, err := q.domain()
	if err != nil {
		return nil, err
	}
	from, to := q.args.Get("from_key"), q.args.Get("to_key")
	if from == "" || to == "" {
		return nil, perr(mogproto.ErrNoKey)
	}
	if len(to) > store.MaxKeyLen {
		return nil, errKeyTooLong()
	}
	if from == to {
		if _, err := q.s.files.FileByKey(q.ctx, d.ID, from); err != nil {
			if isNotFound(err) {
				return nil, perr(mogproto.ErrUnknownKey)
			}
			return nil, q.dbErr("rename", err)
		}
		return nil, nil
	}
	switch err := q.s.files.RenameFile(q.ctx, d.ID, from, to); {
	case err == nil:
		return nil, nil
	case isNotFound(err):
		return nil, perr(mogproto.ErrUnknownKey)
	case isExists(err):
		return nil, perr(mogproto.ErrKeyExists)
	default:
		return nil, q.dbErr("rename", err)
	}
}

// updateFileClass changes a file's class (the `updateclass` command).
func (q *query) updateFileClass() (mogproto.Args, error) {
	d, key, err := q.domainKey()
	if err != nil {
		return nil, err
	}
	name := q.args.Get("class")
	if !truthy(name) {
		return nil, perr(mogproto.ErrNoClass)
	}
	c, ok := q.s.state.current().class(d.ID, name)
	if !ok {
		return nil, perr(mogproto.ErrClassNotFound)
	}
	f, err := q.s.files.FileByKey(q.ctx, d.ID, key)
	if isNotFound(err) {
		return nil, perr(mogproto.ErrInvalidKey)
	}
	if err != nil {
		return nil, q.dbErr("updateclass", err)
	}
	devids, err := q.s.files.FileOn(q.ctx, f.Fid)
	if err != nil {
		return nil, q.dbErr("updateclass", err)
	}
	if len(devids) == 0 {
		return nil, perr(mogproto.ErrNoDevices)
	}
	if f.ClassID != c.ID {
		if err := q.s.files.SetFileClass(q.ctx, f.Fid, c.ID); err != nil {
			return nil, q.dbErr("updateclass", err)
		}
		q.s.kick(jobReplicate)
	}
	return nil, nil
}

// fileInfo describes a key's file.
func (q *query) fileInfo() (mogproto.Args, error) {
	d, key, err := q.domainKey()
	if err != nil {
		return nil, err
	}
	f, err := q.s.files.FileByKey(q.ctx, d.ID, key)
	if isNotFound(err) {
		return nil, perr(mogproto.ErrUnknownKey)
	}
	if err != nil {
		return nil, q.dbErr("file_info", err)
	}
	n := q.s.state.current()
	class, _ := n.classByID(f.DomainID, f.ClassID)
	res := mogproto.Args{
		{Name: "fid", Value: i64toa(f.Fid)},
		{Name: "domain", Value: d.Name},
		{Name: "class", Value: class.Name},
		{Name: "key", Value: key},
		{Name: "length", Value: i64toa(f.Length)},
		{Name: "devcount", Value: itoa(f.DevCount)},
	}
	if class.HashType != store.HashNone {
		cs, err := q.s.files.Checksum(q.ctx, f.Fid)
		switch {
		case err == nil:
			res.Add("checksum", checksumString(cs))
		case isNotFound(err):
			res.Add("checksum", "MISSING")
		default:
			return nil, q.dbErr("file_info", err)
		}
	}
	if truthy(q.args.Get("devices")) {
		devids, err := q.s.files.FileOn(q.ctx, f.Fid)
		if err != nil {
			return nil, q.dbErr("file_info", err)
		}
		res.Add("devids", store.JoinDevIDs(devids))
	}
	return res, nil
}

// fileDebug dumps everything known about a fid: its file row, tempfile row, queue rows, copies and
// checksum (spec 3.1 file_debug).
func (q *query) fileDebug() (mogproto.Args, error) {
	var fid int64
	var f store.File
	haveFile := false
	if v := q.args.Get("fid"); truthy(v) {
		fid = perlInt(v)
		var err error
		f, err = q.s.files.FileByFid(q.ctx, fid)
		switch {
		case err == nil:
			haveFile = true
		case !isNotFound(err):
			return nil, q.dbErr("file_debug", err)
		}
	} else {
		d, err := q.domain()
		if err != nil {
			return nil, err
		}
		key, err := q.key("key")
		if err != nil {
			return nil, err
		}
		f, err = q.s.files.FileByKey(q.ctx, d.ID, key)
		if isNotFound(err) {
			return nil, perr(mogproto.ErrUnknownKey)
		}
		if err != nil {
			return nil, q.dbErr("file_debug", err)
		}
		fid, haveFile = f.Fid, true
	}
	n := q.s.state.current()
	var res mogproto.Args
	if haveFile {
		res = append(res,
			mogproto.Arg{Name: "fid_fid", Value: i64toa(f.Fid)},
			mogproto.Arg{Name: "fid_dmid", Value: itoa(f.DomainID)},
			mogproto.Arg{Name: "fid_dkey", Value: f.Key},
			mogproto.Arg{Name: "fid_length", Value: i64toa(f.Length)},
			mogproto.Arg{Name: "fid_classid", Value: itoa(f.ClassID)},
			mogproto.Arg{Name: "fid_devcount", Value: itoa(f.DevCount)},
			mogproto.Arg{Name: "fid_domain", Value: n.domainByID[f.DomainID].Name},
			mogproto.Arg{Name: "fid_class", Value: n.className(f.DomainID, f.ClassID)},
		)
	}
	if fid > 0 {
		tf, err := q.s.files.Tempfile(q.ctx, fid)
		switch {
		case err == nil:
			res.Add("tempfile_fid", i64toa(tf.Fid))
			res.Add("tempfile_createtime", i64toa(tf.CreateTime))
			res.Add("tempfile_classid", itoa(tf.ClassID))
			res.Add("tempfile_dmid", itoa(tf.DomainID))
			res.Add("tempfile_dkey", tf.Key)
			res.Add("tempfile_devids", store.JoinDevIDs(tf.DevIDs))
		case !isNotFound(err):
			return nil, q.dbErr("file_debug", err)
		}
		queues := []struct {
			q      store.Queue
			prefix string
		}{
			{store.QueueReplicate, "replqueue_"},
			{store.QueueDelete, "delqueue_"},
			{store.QueueRebalance, "rebqueue_"},
			{store.QueueFsck, "fsckqueue_"},
		}
		for _, qq := range queues {
			j, err := q.s.files.QueueJobs(q.ctx, qq.q, fid)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, q.dbErr("file_debug", err)
			}
			p := qq.prefix
			res.Add(p+"fid", i64toa(j.Fid))
			res.Add(p+"nexttry", i64toa(j.NextTry))
			res.Add(p+"failcount", itoa(j.FailCount))
			switch qq.q {
			case store.QueueReplicate:
				res.Add(p+"fromdevid", optInt(j.FromDevID))
				res.Add(p+"flags", itoa(j.Flags))
			case store.QueueRebalance, store.QueueFsck:
				res.Add(p+"devid", optInt(j.FromDevID))
				typ := "1"
				if qq.q == store.QueueRebalance {
					typ = "2"
				}
				res.Add(p+"type", typ)
				res.Add(p+"flags", itoa(j.Flags))
				res.Add(p+"arg", j.Arg)
			}
		}
		devids, err := q.s.files.FileOn(q.ctx, fid)
		if err != nil {
			return nil, q.dbErr("file_debug", err)
		}
		for _, id := range devids {
			if di, ok := q.s.state.device(id); ok {
				res.Add("devpath_"+itoa(id), readURL(di.host, id, fid, q.cl))
			}
		}
		if len(devids) > 0 {
			res.Add("devids", store.JoinDevIDs(devids))
		}
		cs, err := q.s.files.Checksum(q.ctx, fid)
		switch {
		case err == nil:
			res.Add("checksum", checksumString(cs))
		case isNotFound(err):
			res.Add("checksum", "NONE")
		default:
			return nil, q.dbErr("file_debug", err)
		}
	} else {
		res.Add("checksum", "NONE")
	}
	return res, nil
}

// optInt formats a nullable integer column: 0 is NULL, sent as "".
func optInt(v int) string {
	if v == 0 {
		return ""
	}
	return itoa(v)
}

// listKeys lists a domain's keys by prefix (spec 3.1 list_keys).
func (q *query) listKeys() (mogproto.Args, error) {
	d, err := q.domain()
	if err != nil {
		return nil, err
	}
	prefix, after := q.args.Get("prefix"), q.args.Get("after")
	if prefix != "" && truthy(after) && !strings.HasPrefix(after, prefix) {
		return nil, perr(mogproto.ErrAfterMismatch)
	}
	limit := perlInt(q.args.Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	keys, err := q.s.files.ListKeys(q.ctx, d.ID, prefix, after, int(limit))
	if err != nil {
		return nil, q.dbErr("list_keys", err)
	}
	if len(keys) == 0 {
		return nil, perr(mogproto.ErrNoneMatch)
	}
	res := make(mogproto.Args, 0, len(keys)+2)
	res.Add("key_count", itoa(len(keys)))
	next := ""
	for i, k := range keys {
		res.Add("key_"+itoa(i+1), k)
		if k > next {
			next = k
		}
	}
	res.Add("next_after", next)
	return res, nil
}

// listFids lists files by fid (spec 3.1 list_fids): `to` is a count, not a bound.
func (q *query) listFids() (mogproto.Args, error) {
	from := perlInt(q.args.Get("from"))
	count := perlInt(q.args.Get("to"))
	if count == 0 {
		count = 100
	}
	if count > 500 || count < 0 {
		count = 500
	}
	files, err := q.s.files.ListFids(q.ctx, from, int(count))
	if err != nil {
		return nil, q.dbErr("list_fids", err)
	}
	n := q.s.state.current()
	res := make(mogproto.Args, 0, 6*len(files)+1)
	for i, f := range files {
		p := "fid_" + itoa(i+1) + "_"
		res.Add(p+"fid", i64toa(f.Fid))
		res.Add(p+"domain", n.domainByID[f.DomainID].Name)
		res.Add(p+"class", n.className(f.DomainID, f.ClassID))
		res.Add(p+"key", f.Key)
		res.Add(p+"length", i64toa(f.Length))
		res.Add(p+"devcount", itoa(f.DevCount))
	}
	res.Add("fid_count", itoa(len(files)))
	return res, nil
}

// noteNodeErr marks host hostID hung (state.markHung) when err is a request to it, sent at asked,
// that ran out of node_timeout while the query itself was still live. Other queries then skip the
// host at once instead of each waiting out node_timeout, until the monitor, asked for a round now,
// sees it answer again.
func (q *query) noteNodeErr(hostID int, asked time.Time, err error) {
	if err == nil || q.ctx.Err() != nil {
		return
	}
	if node.IsTimeout(err) {
		q.s.noteHung(hostID, asked, err)
	}
}
