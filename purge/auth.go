package purge

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// rule is one allow or deny entry.
type rule struct {
	allow  bool
	all    bool // matches every address
	prefix netip.Prefix
}

func (r rule) matches(ip netip.Addr) bool { return r.all || r.prefix.Contains(ip) }

// specificity orders rules for the Allow/Deny lists: "all" is the least specific.
func (r rule) specificity() int {
	if r.all {
		return -1
	}
	return r.prefix.Bits()
}

// acl decides by client address.
type acl struct {
	// ordered: first match wins (Access). Otherwise the most specific match wins, deny on a tie.
	ordered bool
	rules   []rule
}

// loopbackOnly returns the rule set used when no rules are configured.
func loopbackOnly() *acl {
	return &acl{ordered: true, rules: []rule{
		{allow: true, prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{127}), 8)},
		{allow: true, prefix: netip.PrefixFrom(netip.IPv6Loopback(), 128)},
	}}
}

// allowed reports whether ip may purge. Unmatched addresses are refused.
func (a *acl) allowed(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if a.ordered {
		for _, r := range a.rules {
			if r.matches(ip) {
				return r.allow
			}
		}
		return false
	}
	best, found := rule{}, false
	for _, r := range a.rules {
		if !r.matches(ip) {
			continue
		}
		if !found || r.specificity() > best.specificity() ||
			(r.specificity() == best.specificity() && !r.allow) {
			best, found = r, true
		}
	}
	return found && best.allow
}

// rules builds the address rule set from the config, or returns field errors.
func (c *Config) rules() (*acl, error) {
	var errs []error
	if len(c.Access) > 0 && (len(c.Allow) > 0 || len(c.Deny) > 0) {
		errs = append(errs, conf.Field("access", "use either access or allow/deny", "cannot be combined with allow or deny"))
	}
	if len(c.Access) > 0 {
		a := &acl{ordered: true}
		for i, s := range c.Access {
			field := fmt.Sprintf("access[%d]", i)
			verb, arg, _ := strings.Cut(strings.TrimSpace(s), " ")
			var allow bool
			switch verb {
			case "allow":
				allow = true
			case "deny":
			default:
				errs = append(errs, conf.Field(field, `write "allow <address|cidr|all>" or "deny <address|cidr|all>"`, "unknown rule %q", s))
				continue
			}
			r, err := parseRule(strings.TrimSpace(arg))
			if err != nil {
				errs = append(errs, conf.Field(field, "write an address, a CIDR range such as 10.0.0.0/8, or all", "%v", err))
				continue
			}
			r.allow = allow
			a.rules = append(a.rules, r)
		}
		return a, errors.Join(errs...)
	}
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		return loopbackOnly(), errors.Join(errs...)
	}
	a := &acl{}
	for _, list := range []struct {
		field string
		allow bool
		v     []string
	}{{"allow", true, c.Allow}, {"deny", false, c.Deny}} {
		for i, s := range list.v {
			r, err := parseRule(strings.TrimSpace(s))
			if err != nil {
				errs = append(errs, conf.Field(fmt.Sprintf("%s[%d]", list.field, i),
					"write an address, a CIDR range such as 10.0.0.0/8, or all", "%v", err))
				continue
			}
			r.allow = list.allow
			a.rules = append(a.rules, r)
		}
	}
	return a, errors.Join(errs...)
}

// parseRule parses "all", an address or a CIDR range with no host bits set.
func parseRule(s string) (rule, error) {
	if s == "all" {
		return rule{all: true}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return rule{}, fmt.Errorf("bad CIDR %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if m := p.Masked(); m != p {
			return rule{}, fmt.Errorf("CIDR %q has host bits set (did you mean %s?)", s, m)
		}
		return rule{prefix: p}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return rule{}, fmt.Errorf("bad address %q", s)
	}
	ip = ip.Unmap()
	return rule{prefix: netip.PrefixFrom(ip, ip.BitLen())}, nil
}

// tokenOK compares the bearer token in an Authorization header with want in constant time.
func tokenOK(authorization, want string) bool {
	if want == "" {
		return false
	}
	scheme, got, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the time independent of the length of either value.
	g := sha256.Sum256([]byte(strings.TrimSpace(got)))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// Errors of signature checks.
var (
	ErrBadSignature     = errors.New("purge: malformed signature; want <expiry unix seconds>:<64 hex digits>")
	ErrExpiredSignature = errors.New("purge: signature expired")
	ErrForgedSignature  = errors.New("purge: signature does not match")
)

// Sign returns the signature of a purge request for the X-Purge-Signature header (or sig query
// parameter): "<expires unix seconds>:<hex HMAC-SHA256>" over the upper-case method, a newline, the
// purge path (decoded, after the route prefix, without query), a newline and the expiry in decimal.
// The signature is valid until expires, for that method and path only.
func Sign(secret, method, path string, expires time.Time) string {
	exp := expires.Unix()
	return strconv.FormatInt(exp, 10) + ":" + hex.EncodeToString(mac(secret, method, path, exp))
}

func mac(secret, method, path string, exp int64) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strings.ToUpper(method)))
	m.Write([]byte{'\n'})
	m.Write([]byte(path))
	m.Write([]byte{'\n'})
	m.Write(strconv.AppendInt(nil, exp, 10))
	return m.Sum(nil)
}

// ParseSignature splits a signature made by Sign into its expiry and MAC.
func ParseSignature(s string) (expires int64, sum []byte, err error) {
	e, h, ok := strings.Cut(s, ":")
	if !ok || e == "" || len(e) > 19 || len(h) != 2*sha256.Size {
		return 0, nil, ErrBadSignature
	}
	for i := 0; i < len(e); i++ {
		if e[i] < '0' || e[i] > '9' {
			return 0, nil, ErrBadSignature
		}
	}
	expires, err = strconv.ParseInt(e, 10, 64)
	if err != nil {
		return 0, nil, ErrBadSignature
	}
	sum, err = hex.DecodeString(h)
	if err != nil {
		return 0, nil, ErrBadSignature
	}
	return expires, sum, nil
}

// VerifySignature checks sig for method and path against secret at time now. It returns nil,
// ErrBadSignature, ErrExpiredSignature or ErrForgedSignature.
func VerifySignature(secret, method, path, sig string, now time.Time) error {
	exp, sum, err := ParseSignature(sig)
	if err != nil {
		return err
	}
	// The MAC is checked first so a forged signature never reads as merely expired.
	if !hmac.Equal(sum, mac(secret, method, path, exp)) {
		return ErrForgedSignature
	}
	if now.Unix() > exp {
		return ErrExpiredSignature
	}
	return nil
}

// authorize applies the rules in force to r, at now, and says why a request was refused.
func (c *settings) authorize(r *Request, now time.Time) (ok bool, why string) {
	addrOK := c.acl.allowed(r.RemoteIP)
	hasCred := c.cfg.Token != "" || c.cfg.HMACSecret != ""
	credOK, credWhy := false, "no credential"
	if c.cfg.Token != "" && r.Authorization != "" {
		if credOK = tokenOK(r.Authorization, c.cfg.Token); !credOK {
			credWhy = "bad token"
		}
	}
	if !credOK && c.cfg.HMACSecret != "" && r.Signature != "" {
		err := VerifySignature(c.cfg.HMACSecret, r.Method, r.Path, r.Signature, now)
		if credOK = err == nil; !credOK {
			credWhy = err.Error()
		}
	}
	if c.cfg.Satisfy == "all" {
		switch {
		case !addrOK:
			return false, "address not allowed"
		case hasCred && !credOK:
			return false, credWhy
		}
		return true, ""
	}
	if addrOK || credOK {
		return true, ""
	}
	if hasCred {
		return false, "address not allowed and " + credWhy
	}
	return false, "address not allowed"
}
