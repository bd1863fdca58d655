package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mogway/mogway/tracker/mogproto"
)

// GetPathsOptions tune GetPaths. The zero value asks for the tracker's defaults.
type GetPathsOptions struct {
	// NoVerify skips the tracker's HEAD check of the first path (noverify=1), as mogfetch does.
	NoVerify bool
	// PathCount asks for up to this many paths; 0 leaves the tracker default (2). The tracker
	// raises values below 2 to 2.
	PathCount int
}

// GetPaths returns the URLs of a key's readable copies, best first. An empty slice with a nil error
// means the key exists but no copy is currently usable (OK paths=0). A missing key is a
// *mogproto.Error with code unknown_key.
func (p *Pool) GetPaths(ctx context.Context, domain, key string, opt GetPathsOptions) ([]string, error) {
	args := make(mogproto.Args, 0, 4)
	args = append(args, mogproto.Arg{Name: "domain", Value: domain}, mogproto.Arg{Name: "key", Value: key})
	if opt.NoVerify {
		args.Add("noverify", "1")
	}
	if opt.PathCount > 0 {
		args.Add("pathcount", strconv.Itoa(opt.PathCount))
	}
	r, err := p.Do(ctx, mogproto.CmdGetPaths, args)
	if err != nil {
		return nil, err
	}
	return r.List("paths", "path", "")
}

// Dest is one place create_open offers for a new file's first copy.
type Dest struct {
	DevID int64
	// Path is the storage node URL to PUT the bytes to.
	Path string
}

// Open is the reply to create_open: the new fid and where to write it, best destination first.
type Open struct {
	Fid   int64
	Dests []Dest
}

// CreateOpen starts a new file (create_open with multi_dest=1 and fid=0, as the Perl client sends
// it). An empty class means the domain's default class.
func (p *Pool) CreateOpen(ctx context.Context, domain, key, class string) (*Open, error) {
	r, err := p.Do(ctx, mogproto.CmdCreateOpen, mogproto.Args{
		{Name: "domain", Value: domain}, {Name: "key", Value: key}, {Name: "class", Value: class},
		{Name: "fid", Value: "0"}, {Name: "multi_dest", Value: "1"},
	})
	if err != nil {
		return nil, err
	}
	return parseOpen(r)
}

func parseOpen(r mogproto.Args) (*Open, error) {
	fid, ok := r.Int("fid")
	if !ok || fid <= 0 {
		return nil, fmt.Errorf("client: create_open reply without a fid: %w", mogproto.ErrProtocol)
	}
	o := &Open{Fid: fid}
	if _, multi := r.Lookup("dev_count"); multi {
		paths, err := r.List("dev_count", "path_", "")
		if err != nil {
			return nil, err
		}
		for i, path := range paths {
			v, _ := r.Indexed("devid_", i+1, "")
			devid, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("client: create_open reply: bad devid_%d %q: %w", i+1, v, mogproto.ErrProtocol)
			}
			o.Dests = append(o.Dests, Dest{DevID: devid, Path: path})
		}
	} else if path, ok := r.Lookup("path"); ok {
		devid, ok := r.Int("devid")
		if !ok {
			return nil, fmt.Errorf("client: create_open reply without a devid: %w", mogproto.ErrProtocol)
		}
		o.Dests = append(o.Dests, Dest{DevID: devid, Path: path})
	}
	if len(o.Dests) == 0 {
		return nil, fmt.Errorf("client: create_open reply without destinations: %w", mogproto.ErrProtocol)
	}
	return o, nil
}

// CloseRequest is the create_close of an upload: which destination was written and how many bytes.
type CloseRequest struct {
	Domain, Key, Class string
	Fid, DevID         int64
	// Path is the URL the bytes were PUT to, exactly as create_open returned it.
	Path string
	// Size is the number of bytes written; the tracker checks it against the storage node.
	Size int64
	// Checksum is "MD5:<hex>" or "SHA-1:<hex>", or empty for none.
	Checksum string
	// ChecksumVerify asks the tracker to verify Checksum against the stored copy.
	ChecksumVerify bool
}

// CreateClose commits an upload (create_close). An empty Key discards the upload.
func (p *Pool) CreateClose(ctx context.Context, c CloseRequest) error {
	args := mogproto.Args{
		{Name: "domain", Value: c.Domain}, {Name: "key", Value: c.Key},
		{Name: "fid", Value: strconv.FormatInt(c.Fid, 10)}, {Name: "devid", Value: strconv.FormatInt(c.DevID, 10)},
		{Name: "path", Value: c.Path}, {Name: "size", Value: strconv.FormatInt(c.Size, 10)},
	}
	if c.Class != "" {
		args.Add("class", c.Class)
	}
	if c.Checksum != "" {
		args.Add("checksum", c.Checksum)
		if c.ChecksumVerify {
			args.Add("checksumverify", "1")
		}
	}
	_, err := p.Do(ctx, mogproto.CmdCreateClose, args)
	return err
}

// Delete removes a key. A missing key is a *mogproto.Error with code unknown_key; callers that
// want the Perl client's "deleting a missing key succeeds" test for it with mogproto.IsCode.
func (p *Pool) Delete(ctx context.Context, domain, key string) error {
	_, err := p.Do(ctx, mogproto.CmdDelete, mogproto.Args{{Name: "domain", Value: domain}, {Name: "key", Value: key}})
	return err
}

// Rename moves a key to a new name within its domain; an existing target is ERR key_exists.
func (p *Pool) Rename(ctx context.Context, domain, from, to string) error {
	_, err := p.Do(ctx, mogproto.CmdRename, mogproto.Args{
		{Name: "domain", Value: domain}, {Name: "from_key", Value: from}, {Name: "to_key", Value: to},
	})
	return err
}

// UpdateClass moves a file to another class (updateclass); the tracker then adjusts its copies.
func (p *Pool) UpdateClass(ctx context.Context, domain, key, class string) error {
	_, err := p.Do(ctx, mogproto.CmdUpdateClass, mogproto.Args{
		{Name: "domain", Value: domain}, {Name: "key", Value: key}, {Name: "class", Value: class},
	})
	return err
}

// FileInfo is the reply to file_info: the fields list_fids gives, and more.
type FileInfo struct {
	FidInfo
	// Checksum is "MD5:<hex>", "MISSING", or empty when the class has no hash type.
	Checksum string `json:"checksum,omitempty"`
	// DevIDs lists the devices holding a copy.
	DevIDs []int64 `json:"devids,omitempty"`
}

// FileInfo returns a key's metadata, with the devices that hold it. A missing key is a
// *mogproto.Error with code unknown_key.
func (p *Pool) FileInfo(ctx context.Context, domain, key string) (*FileInfo, error) {
	r, err := p.Do(ctx, mogproto.CmdFileInfo, mogproto.Args{
		{Name: "domain", Value: domain}, {Name: "key", Value: key}, {Name: "devices", Value: "1"},
	})
	if err != nil {
		return nil, err
	}
	fi := &FileInfo{
		FidInfo:  FidInfo{Domain: r.Get("domain"), Class: r.Get("class"), Key: r.Get("key")},
		Checksum: r.Get("checksum"),
	}
	fi.Fid, _ = r.Int("fid")
	fi.Length, _ = r.Int("length")
	dc, _ := r.Int("devcount")
	fi.DevCount = int(dc)
	for _, s := range strings.Split(r.Get("devids"), ",") {
		if id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			fi.DevIDs = append(fi.DevIDs, id)
		}
	}
	return fi, nil
}

// ListKeys returns up to limit keys of domain that start with prefix and sort after after, in
// ascending order, and the key to pass as after for the next page. No match (ERR none_match) is an
// empty list and a nil error. limit 0 means the tracker's default (1000, also its maximum).
func (p *Pool) ListKeys(ctx context.Context, domain, prefix, after string, limit int) (keys []string, next string, err error) {
	args := mogproto.Args{{Name: "domain", Value: domain}, {Name: "prefix", Value: prefix}, {Name: "after", Value: after}}
	if limit > 0 {
		args.Add("limit", strconv.Itoa(limit))
	}
	r, err := p.Do(ctx, mogproto.CmdListKeys, args)
	if mogproto.IsCode(err, mogproto.ErrNoneMatch) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	keys, err = r.List("key_count", "key_", "")
	if err != nil {
		return nil, "", err
	}
	next = r.Get("next_after")
	if next == "" && len(keys) > 0 {
		next = keys[len(keys)-1]
	}
	return keys, next, nil
}

// Noop sends noop; a nil error means a tracker answered.
func (p *Pool) Noop(ctx context.Context) error { return p.simple(ctx, mogproto.CmdNoop) }

// FidInfo is one row of list_fids.
type FidInfo struct {
	Fid      int64  `json:"fid"`
	Domain   string `json:"domain"`
	Class    string `json:"class"`
	Key      string `json:"key"`
	Length   int64  `json:"length"`
	DevCount int    `json:"devcount"`
}

// ListFids returns up to limit files with fids above from, in ascending fid order (list_fids; the
// tracker caps limit at 500 and uses 100 for 0).
func (p *Pool) ListFids(ctx context.Context, from int64, limit int) ([]FidInfo, error) {
	args := mogproto.Args{{Name: "from", Value: strconv.FormatInt(from, 10)}, {Name: "to", Value: strconv.Itoa(limit)}}
	return rows(ctx, p, mogproto.CmdListFids, args, "fid_count", "fid_", func(f func(string) string) FidInfo {
		return FidInfo{
			Fid: atoi64(f("fid")), Domain: f("domain"), Class: f("class"), Key: f("key"),
			Length: atoi64(f("length")), DevCount: int(atoi64(f("devcount"))),
		}
	})
}
