// Package dbaddr parses the one-string form of the tracker's metadata store address (the --db flag
// and the tracker section's `db` setting) without importing a database driver, so configuration can
// be checked by packages that never open a store:
//
//	sqlite:/var/lib/mogway/tracker.db          SQLite file (absolute path)
//	sqlite:var/tracker.db                      SQLite file (relative to the working directory)
//	sqlite:///var/lib/mogway/tracker.db        the same, URL style
//	mysql://user:pass@tcp(127.0.0.1:3306)/mogilefs?timeout=5s
//	mysql:user:pass@tcp(127.0.0.1:3306)/mogilefs
//	mysql://user:pass@db.example:3306/mogilefs  (host:port without tcp(...) means TCP)
//	mysql://user:pass@unix(/run/mysqld/mysqld.sock)/mogilefs
//
// After "mysql:" or "mysql://" comes a github.com/go-sql-driver/mysql DSN. Parse checks its shape
// ([user[:password]@][net[(addr)]]/dbname[?params]) as the driver splits it; the values of the
// driver's own parameters (timeout, tls, charset, ...) are checked by package dsn, which imports
// the drivers and opens the store.
package dbaddr

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Drivers named by Addr.Driver.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// Addr is a parsed store address.
type Addr struct {
	Driver string // SQLite or MySQL
	// Path is the SQLite file (SQLite only).
	Path string
	// DSN is the go-sql-driver/mysql DSN, always with an explicit protocol (MySQL only).
	DSN string
}

// String returns the address in canonical form with any MySQL password replaced by "xxxxx", for
// logs.
func (a Addr) String() string {
	switch a.Driver {
	case SQLite:
		return "sqlite:" + a.Path
	case MySQL:
		slash := strings.LastIndexByte(a.DSN, '/')
		if slash < 0 {
			return "mysql:(invalid)"
		}
		head := a.DSN[:slash]
		at := strings.LastIndexByte(head, '@')
		if at < 0 {
			return "mysql://" + a.DSN
		}
		if user, _, hasPass := strings.Cut(head[:at], ":"); hasPass && at > len(user)+1 {
			return "mysql://" + user + ":xxxxx" + a.DSN[at:]
		}
		return "mysql://" + a.DSN
	}
	return ""
}

// Formats is appended to every parse error, so the operator sees what is accepted.
const Formats = `want "sqlite:/path/to/tracker.db" or "mysql://user:pass@tcp(host:port)/dbname"`

// Parse checks a store address and splits it into driver and address.
func Parse(v string) (Addr, error) {
	switch {
	case strings.HasPrefix(v, "sqlite:"):
		p := strings.TrimPrefix(v, "sqlite:")
		if strings.HasPrefix(p, "//") {
			p = strings.TrimPrefix(p, "//")
			if !strings.HasPrefix(p, "/") {
				return Addr{}, fmt.Errorf("db %q: the URL form takes an absolute path (sqlite:///var/lib/...); %s", v, Formats)
			}
		}
		if p == "" {
			return Addr{}, fmt.Errorf("db %q: no file path; %s", v, Formats)
		}
		if strings.ContainsRune(p, 0) {
			return Addr{}, fmt.Errorf("db %q: the path contains a NUL byte", v)
		}
		return Addr{Driver: SQLite, Path: p}, nil
	case strings.HasPrefix(v, "mysql:"):
		rest := strings.TrimPrefix(strings.TrimPrefix(v, "mysql:"), "//")
		rest = withProtocol(rest)
		db, err := checkMySQL(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("db %s: %v; %s", redact(v), err, Formats)
		}
		if db == "" {
			return Addr{}, fmt.Errorf("db %s: no database name after the last \"/\"; %s", redact(v), Formats)
		}
		return Addr{Driver: MySQL, DSN: rest}, nil
	}
	return Addr{}, fmt.Errorf("db %s: unknown store type; %s", redact(v), Formats)
}

// checkMySQL checks the shape of a go-sql-driver/mysql DSN the way the driver's ParseDSN splits it,
// [user[:password]@][net[(addr)]]/dbname[?params], and returns the unescaped database name.
func checkMySQL(dsn string) (dbName string, err error) {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return "", errors.New(`invalid DSN: missing the slash separating the database name`)
	}
	head := dsn[:slash]
	netAddr := head[strings.LastIndexByte(head, '@')+1:]
	network, addr := netAddr, ""
	if open := strings.IndexByte(netAddr, '('); open >= 0 {
		if !strings.HasSuffix(netAddr, ")") {
			if strings.ContainsRune(netAddr[open+1:], ')') {
				return "", errors.New("invalid DSN: did you forget to escape a param value?")
			}
			return "", errors.New("invalid DSN: network address not terminated (missing closing brace)")
		}
		network, addr = netAddr[:open], netAddr[open+1:len(netAddr)-1]
	}
	if addr == "" && network != "" && network != "tcp" && network != "unix" {
		return "", fmt.Errorf("default addr for network '%s' unknown", network)
	}
	db, _, _ := strings.Cut(dsn[slash+1:], "?")
	if dbName, err = url.PathUnescape(db); err != nil {
		return "", fmt.Errorf("invalid dbname %q: %w", db, err)
	}
	return dbName, nil
}

// withProtocol turns "user:pass@host:port/db" into "user:pass@tcp(host:port)/db"; a DSN that
// already names its protocol, or has no address, is returned as is. Like the driver, it takes the
// last "/" as the start of the database name and the last "@" before it as the end of the
// credentials, so passwords may contain "@" and "/".
func withProtocol(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return dsn
	}
	head := dsn[:slash]
	at := strings.LastIndexByte(head, '@')
	addr := head[at+1:]
	if addr == "" || strings.ContainsAny(addr, "()") {
		return dsn
	}
	return head[:at+1] + "tcp(" + addr + ")" + dsn[slash:]
}

// redact hides what looks like a password in a raw --db value for error messages: everything
// between the first ":" after the scheme and the last "@".
func redact(v string) string {
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Sprintf("%q", v)
	}
	prefix := scheme + ":"
	if strings.HasPrefix(rest, "//") {
		prefix += "//"
		rest = rest[2:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return fmt.Sprintf("%q", v)
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q", prefix+user+":xxxxx"+rest[at:])
}
