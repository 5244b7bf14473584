package fetcher

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// blockedError: the https source refused to connect to an address.
type blockedError struct {
	addr  netip.Addr
	host  string // set when a host name was refused before resolving it
	class string
}

func (e *blockedError) Error() string {
	if e.host != "" {
		return fmt.Sprintf("refusing to connect to %q: %s", e.host, e.class)
	}
	return fmt.Sprintf("refusing to connect to %s address %s", e.class, e.addr)
}

// checkHostSpelling refuses, before any lookup, host names whose address
// does not depend on DNS: localhost names (RFC 6761: always loopback), IP
// literals with a trailing dot, and IPv4 addresses in the spellings some
// resolvers expand (2130706433, 0x7f000001, 0177.0.0.1, 127.1), which Go's
// resolver cannot look up, so they would fail as transient and be retried.
// Canonical IP literals pass: they are judged at connect time.
func checkHostSpelling(host string) error {
	h := strings.ToLower(host)
	trimmed := strings.TrimSuffix(h, ".")
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(trimmed); err == nil {
		return &blockedError{host: host, class: "an IP literal with a trailing dot"}
	}
	if trimmed == "localhost" || strings.HasSuffix(trimmed, ".localhost") {
		return &blockedError{host: host, class: "localhost names are always loopback"}
	}
	labels := strings.Split(trimmed, ".")
	if last := labels[len(labels)-1]; numericLabel(last) {
		return &blockedError{host: host, class: "a numeric host that is not a canonical IPv4 address"}
	}
	return nil
}

// numericLabel is a label that URL parsers read as (part of) an IPv4
// address: decimal, or hexadecimal with 0x.
func numericLabel(l string) bool {
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		l = rest
		return strings.Trim(l, "0123456789abcdef") == ""
	}
	return l != "" && strings.Trim(l, "0123456789") == ""
}

var (
	errTooManyRedirects = errors.New("stopped after 5 redirects")
	errInsecureRedirect = errors.New("redirect to plain http refused")
)

type blockedRange struct {
	prefix netip.Prefix
	class  string
}

// blockedRanges are the address classes an https attachment must never
// reach: the fleet's own network, cloud metadata and anything not globally
// routable.
var blockedRanges = func() []blockedRange {
	var out []blockedRange
	for _, r := range []struct{ p, c string }{
		{"0.0.0.0/8", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "carrier-grade NAT"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignment"},
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"}, // includes 255.255.255.255 broadcast
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"2001:db8::/32", "documentation"},
		{"3fff::/20", "documentation"},
		{"5f00::/16", "SRv6 segment identifiers"},
		{"2001::/23", "IETF protocol assignment"},
		{"fc00::/7", "unique local"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	} {
		out = append(out, blockedRange{netip.MustParsePrefix(r.p), r.c})
	}
	return out
}()

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	teredoPrefix = netip.MustParsePrefix("2001::/32")
	ipv4Compat   = netip.MustParsePrefix("::/96")
	// ipv4Translated (::ffff:0:0:0/96, RFC 2765) carries an IPv4 address
	// in its last four bytes like the mapped form does.
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// classifyIP returns the blocked class of addr, or "" when addr is a public
// unicast address. IPv6 forms that embed an IPv4 address (IPv4-mapped,
// IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo) are judged by
// the IPv4 address they carry, so 169.254.169.254 cannot be reached as
// ::ffff:169.254.169.254 or 64:ff9b::a9fe:a9fe.
func classifyIP(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid"
	}
	addr = addr.WithZone("")
	if addr.Is4In6() {
		return classifyIP(addr.Unmap())
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64Prefix.Contains(addr) || ipv4Translated.Contains(addr) || (ipv4Compat.Contains(addr) && addr != netip.IPv6Unspecified() && addr != netip.IPv6Loopback()):
			if c := classifyIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); c != "" {
				return c + " (embedded in IPv6)"
			}
		case sixToFour.Contains(addr):
			if c := classifyIP(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); c != "" {
				return c + " (embedded in 6to4)"
			}
		case teredoPrefix.Contains(addr):
			// Teredo carries the client's IPv4 address inverted.
			if c := classifyIP(netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})); c != "" {
				return c + " (embedded in Teredo)"
			}
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return r.class
		}
	}
	return ""
}
