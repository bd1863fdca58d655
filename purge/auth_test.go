package purge

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestACL(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ip   string
		want bool
	}{
		{"default loopback v4", Config{}, "127.0.0.1", true},
		{"default loopback v4 other", Config{}, "127.9.8.7", true},
		{"default loopback v6", Config{}, "::1", true},
		{"default loopback mapped", Config{}, "::ffff:127.0.0.1", true},
		{"default refuses lan", Config{}, "192.168.1.5", false},
		{"default refuses v6", Config{}, "2001:db8::1", false},
		{"allow cidr", Config{Allow: []string{"192.168.1.0/24"}}, "192.168.1.77", true},
		{"allow list replaces loopback default", Config{Allow: []string{"192.168.1.0/24"}}, "127.0.0.1", false},
		{"allow list unmatched", Config{Allow: []string{"192.168.1.0/24"}}, "192.168.2.1", false},
		{"specific deny in allowed net", Config{Allow: []string{"192.168.1.0/24"}, Deny: []string{"192.168.1.1"}}, "192.168.1.1", false},
		{"allowed next to denied host", Config{Allow: []string{"192.168.1.0/24"}, Deny: []string{"192.168.1.1"}}, "192.168.1.2", true},
		{"specific allow in denied net", Config{Allow: []string{"10.1.2.3"}, Deny: []string{"10.0.0.0/8"}}, "10.1.2.3", true},
		{"denied net", Config{Allow: []string{"10.1.2.3"}, Deny: []string{"10.0.0.0/8"}}, "10.1.2.4", false},
		{"tie denies", Config{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.0.0.0/8"}}, "10.1.1.1", false},
		{"deny all only", Config{Deny: []string{"all"}}, "127.0.0.1", false},
		{"allow all", Config{Allow: []string{"all"}}, "203.0.113.9", true},
		{"allow all v6", Config{Allow: []string{"all"}}, "2001:db8::9", true},
		{"allow all deny one", Config{Allow: []string{"all"}, Deny: []string{"203.0.113.9"}}, "203.0.113.9", false},
		{"v6 cidr", Config{Allow: []string{"2001:db8::/32"}}, "2001:db8:1::5", true},
		{"v6 cidr other", Config{Allow: []string{"2001:db8::/32"}}, "2001:db9::5", false},
		{"v4 rule vs mapped client", Config{Allow: []string{"192.0.2.0/24"}}, "::ffff:192.0.2.7", true},
		{"v4 rule vs v6 client", Config{Allow: []string{"0.0.0.0/0"}}, "2001:db8::1", false},
		{"mapped rule", Config{Allow: []string{"::ffff:192.0.2.0/120"}}, "192.0.2.7", true},
		{"zone stripped", Config{Allow: []string{"fe80::1"}}, "fe80::1%eth0", true},
		// nginx order: allow 127.0.0.1; allow 192.168.1.0/24; deny all;
		{"access nginx example lan", Config{Access: []string{"allow 127.0.0.1", "allow 192.168.1.0/24", "deny all"}}, "192.168.1.3", true},
		{"access nginx example other", Config{Access: []string{"allow 127.0.0.1", "allow 192.168.1.0/24", "deny all"}}, "10.0.0.1", false},
		{"access first match deny", Config{Access: []string{"deny 192.168.1.1", "allow 192.168.1.0/24"}}, "192.168.1.1", false},
		{"access first match allow", Config{Access: []string{"allow 192.168.1.0/24", "deny 192.168.1.1"}}, "192.168.1.1", true},
		{"access unmatched", Config{Access: []string{"allow 192.168.1.0/24"}}, "192.168.2.1", false},
		{"access v6", Config{Access: []string{"deny ::1", "allow all"}}, "::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.cfg.rules()
			if err != nil {
				t.Fatalf("rules() error %v", err)
			}
			if got := a.allowed(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("allowed(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
	a, _ := (&Config{Allow: []string{"all"}}).rules()
	if a.allowed(netip.Addr{}) {
		t.Errorf("allowed(invalid address) = true, want false")
	}
}

func TestTokenOK(t *testing.T) {
	const tok = "s3cret-token-0123456789"
	tests := []struct {
		auth string
		want bool
	}{
		{"Bearer " + tok, true},
		{"bearer " + tok, true},
		{"Bearer  " + tok + " ", true},
		{"Bearer " + tok + "x", false},
		{"Bearer " + tok[:len(tok)-1], false},
		{"Basic " + tok, false},
		{tok, false},
		{"Bearer", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := tokenOK(tt.auth, tok); got != tt.want {
			t.Errorf("tokenOK(%q) = %v, want %v", tt.auth, got, tt.want)
		}
	}
	if tokenOK("Bearer ", "") {
		t.Errorf("tokenOK with no configured token = true, want false")
	}
}

func TestSignature(t *testing.T) {
	const secret = "shared-secret-0123456789"
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, "PURGE", "/images/a.jpg", now.Add(time.Minute))
	tests := []struct {
		name, secret, method, path, sig string
		at                              time.Time
		want                            error
	}{
		{"valid", secret, "PURGE", "/images/a.jpg", good, now, nil},
		{"valid lower-case method", secret, "purge", "/images/a.jpg", good, now, nil},
		{"valid at expiry second", secret, "PURGE", "/images/a.jpg", good, now.Add(time.Minute), nil},
		{"expired", secret, "PURGE", "/images/a.jpg", good, now.Add(time.Minute + time.Second), ErrExpiredSignature},
		{"other path", secret, "PURGE", "/images/b.jpg", good, now, ErrForgedSignature},
		{"prefix of signed path", secret, "PURGE", "/images/*", good, now, ErrForgedSignature},
		{"other method", secret, "GET", "/images/a.jpg", good, now, ErrForgedSignature},
		{"other secret", secret + "x", "PURGE", "/images/a.jpg", good, now, ErrForgedSignature},
		{"expiry moved", secret, "PURGE", "/images/a.jpg", "9" + good, now, ErrForgedSignature},
		{"mac flipped", secret, "PURGE", "/images/a.jpg", flipLast(good), now, ErrForgedSignature},
		{"empty", secret, "PURGE", "/images/a.jpg", "", now, ErrBadSignature},
		{"no colon", secret, "PURGE", "/images/a.jpg", strings.Replace(good, ":", "", 1), now, ErrBadSignature},
		{"short mac", secret, "PURGE", "/images/a.jpg", good[:len(good)-2], now, ErrBadSignature},
		{"non-hex mac", secret, "PURGE", "/images/a.jpg", good[:len(good)-1] + "g", now, ErrBadSignature},
		{"signed expiry", secret, "PURGE", "/images/a.jpg", "+" + good, now, ErrBadSignature},
	}
	for _, tt := range tests {
		err := VerifySignature(tt.secret, tt.method, tt.path, tt.sig, tt.at)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: VerifySignature(%q, %q, %q) = %v, want %v", tt.name, tt.method, tt.path, tt.sig, err, tt.want)
		}
	}
}

func flipLast(s string) string {
	c := s[len(s)-1]
	if c == '0' {
		c = '1'
	} else {
		c = '0'
	}
	return s[:len(s)-1] + string(c)
}

func FuzzParseSignature(f *testing.F) {
	f.Add(Sign("k", "GET", "/a", time.Unix(1_800_000_000, 0)))
	f.Add("1:" + strings.Repeat("0", 64))
	f.Add(":")
	f.Add("-1:" + strings.Repeat("a", 64))
	f.Add("99999999999999999999:" + strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, s string) {
		exp, sum, err := ParseSignature(s)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("ParseSignature(%q) error %v, want ErrBadSignature", s, err)
			}
			return
		}
		if exp < 0 || len(sum) != 32 {
			t.Fatalf("ParseSignature(%q) = %d, %x", s, exp, sum)
		}
		// Whatever parses must still be refused unless it is the real MAC.
		if VerifySignature("key", "GET", "/a", s, time.Unix(0, 0)) == nil && s != Sign("key", "GET", "/a", time.Unix(exp, 0)) {
			t.Fatalf("VerifySignature accepted %q", s)
		}
	})
}
