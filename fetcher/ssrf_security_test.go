package fetcher

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An https attachment must never reach the fleet's own network, the cloud
// metadata service or any address that is not globally routable. These
// tests walk every blocked class at both ends of its range, every IPv6
// spelling that embeds a blocked IPv4 address, host names that resolve to
// blocked addresses, numeric host spellings, and redirects to all of them.

// embed returns the IPv6 spellings that carry v4: IPv4-mapped,
// IPv4-compatible, NAT64 (RFC 6052 well-known prefix), 6to4 and Teredo
// (client address inverted).
func embed(v4 netip.Addr) map[string]netip.Addr {
	b := v4.As4()
	mk := func(prefix [16]byte) netip.Addr { return netip.AddrFrom16(prefix) }
	mapped := [16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
	compat := [16]byte{12: b[0], 13: b[1], 14: b[2], 15: b[3]}
	nat64 := [16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
	sixToFour := [16]byte{0: 0x20, 1: 0x02, 2: b[0], 3: b[1], 4: b[2], 5: b[3], 15: 1}
	teredo := [16]byte{0: 0x20, 1: 0x01, 12: ^b[0], 13: ^b[1], 14: ^b[2], 15: ^b[3]}
	return map[string]netip.Addr{
		"mapped": mk(mapped), "compat": mk(compat), "nat64": mk(nat64), "6to4": mk(sixToFour), "teredo": mk(teredo),
	}
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

func TestSSRFEveryBlockedClass(t *testing.T) {
	t.Parallel()
	for _, r := range blockedRanges {
		for _, a := range []netip.Addr{r.prefix.Masked().Addr(), lastAddr(r.prefix), r.prefix.Masked().Addr().Next()} {
			if !r.prefix.Contains(a) {
				continue
			}
			if got := classifyIP(a); got == "" {
				t.Errorf("%s (%s, %s) is not blocked", a, r.prefix, r.class)
			}
			if a.Is4() {
				for form, e := range embed(a) {
					if got := classifyIP(e); got == "" {
						t.Errorf("%s: %s spelling %s of a %s address is not blocked", a, form, e, r.class)
					}
				}
			}
		}
	}
}

// Address classes of the IANA special-purpose registries (and the
// IPv4-translated form of RFC 2765/6145) that are not globally reachable.
func TestSSRFSpecialPurposeIPv6(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, why string }{
		{"3fff::1", "documentation 3fff::/20 (RFC 9637)"},
		{"3fff:fff:ffff::1", "documentation 3fff::/20 (RFC 9637)"},
		{"5f00::1", "SRv6 SIDs 5f00::/16 (RFC 9602)"},
		{"::ffff:0:7f00:1", "IPv4-translated ::ffff:0:0:0/96 carrying 127.0.0.1"},
		{"::ffff:0:a9fe:a9fe", "IPv4-translated ::ffff:0:0:0/96 carrying 169.254.169.254"},
		{"64:ff9b:1::a9fe:a9fe", "local-use NAT64 64:ff9b:1::/48"},
		{"fe80::1%eth0", "link-local with a zone"},
		{"ff02::1%1", "multicast with a numeric zone"},
	} {
		if got := classifyIP(netip.MustParseAddr(tt.addr)); got == "" {
			t.Errorf("%s (%s) is not blocked", tt.addr, tt.why)
		}
	}
}

// Globally reachable addresses stay reachable in every spelling, so the
// block list does not turn into a denial of ordinary customers.
func TestSSRFPublicAddressesAllowed(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "52.216.8.1", "192.31.196.1", "192.175.48.1", "2606:4700:4700::1111", "2a00:1450:4001::1"} {
		a := netip.MustParseAddr(s)
		if c := classifyIP(a); c != "" {
			t.Errorf("%s blocked as %s", s, c)
		}
		if a.Is4() {
			for _, form := range []string{"mapped", "nat64", "6to4"} {
				e := embed(a)[form]
				if c := classifyIP(e); c != "" {
					t.Errorf("%s spelling %s of public %s blocked as %s", form, e, s, c)
				}
			}
		}
	}
}

// Through the copier: blocked literals in every URL spelling, names that
// resolve to loopback, and numeric spellings that resolvers expand to
// loopback, all refused as invalid (never retried: a retry cannot succeed
// and would only probe the target again), without a connection attempt.
func TestSSRFCopierRefusesURLSpellings(t *testing.T) {
	t.Parallel()
	c := httpsCopier(t, nil, 0)
	for _, uri := range []string{
		"https://127.0.0.1/x",
		"https://[::1]/x",
		"https://[::]/x",
		"https://0.0.0.0/x",
		"https://[::ffff:127.0.0.1]/x",
		"https://[::ffff:7f00:1]/x",
		"https://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/",
		"https://[::a9fe:a9fe]/latest/",
		"https://[64:ff9b::a9fe:a9fe]/latest/",
		"https://[2002:a9fe:a9fe::1]/latest/",
		"https://[fe80::1%25eth0]/x",
		"https://[fd00:ec2::254]/latest/",      // the IPv6 metadata endpoint
		"https://169.254.170.2/v2/credentials", // the ECS task-role endpoint
		"https://10.0.0.1:8443/x",
		"https://192.168.0.1/x",
		"https://172.31.255.255/x",
		"https://100.100.100.200/x", // carrier-grade NAT (and a cloud's metadata address)
		"https://localhost/x",
		"https://vm/x", // /etc/hosts on the CI machines maps it to 127.0.0.1
	} {
		t.Run(uri, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rep := c.Check(ctx, "acme", uri)
			if rep.OK || rep.Error == nil {
				t.Fatalf("Check(%s) succeeded", uri)
			}
			if rep.Error.Kind != KindInvalid {
				t.Fatalf("Check(%s): %s/%s %s, want kind invalid", uri, rep.Error.Kind, rep.Error.Code, rep.Error.Message)
			}
			if rep.Error.Code == "BlockedAddress" && !strings.Contains(rep.Error.Message, "refusing to connect") {
				t.Fatalf("Check(%s): message %q does not say why", uri, rep.Error.Message)
			}
		})
	}
}

// Host spellings that C resolvers (inet_aton) expand to blocked addresses —
// decimal, hexadecimal, octal, short forms, a fully qualified IP literal or
// localhost name (trailing dot) — never name a public https origin. ferry
// must refuse them as invalid whatever resolver the binary is built with;
// today the pure-Go resolver fails to look them up and the copier reports
// a transient error, so the task is retried until it reaches the DLQ.
func TestSSRFHostSpellingsInvalid(t *testing.T) {
	t.Parallel()
	c := httpsCopier(t, nil, 0)
	for _, uri := range []string{
		"https://2130706433/x",                // 127.0.0.1 in decimal
		"https://0x7f000001/x",                // hexadecimal
		"https://0177.0.0.1/x",                // octal first octet
		"https://127.1/x",                     // short form
		"https://0xa9.0xfe.0xa9.0xfe/latest/", // 169.254.169.254, dotted hex
		"https://2852039166/latest/",          // 169.254.169.254 in decimal
		"https://127.0.0.1./x",                // IP literal with the root dot
		"https://LOCALHOST./x",                // RFC 6761: always loopback
		"https://metadata.localhost/x",        // RFC 6761: always loopback
	} {
		t.Run(uri, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rep := c.Check(ctx, "acme", uri)
			if rep.OK || rep.Error == nil || rep.Error.Kind != KindInvalid {
				t.Fatalf("Check(%s) = ok %v error %+v, want refused as invalid", uri, rep.OK, rep.Error)
			}
		})
	}
}

// Redirects from an allowed origin to every kind of blocked target are
// refused at connect time, as invalid, for each hop.
func TestSSRFRedirectsToBlockedTargets(t *testing.T) {
	t.Parallel()
	targets := []string{
		"https://169.254.169.254/latest/meta-data/",
		"https://[::ffff:169.254.169.254]/latest/",
		"https://[::ffff:a9fe:a9fe]/latest/",
		"https://[64:ff9b::a9fe:a9fe]/latest/",
		"https://[fd00:ec2::254]/latest/",
		"https://10.1.2.3/x",
		"https://[::1]:1/x",
		"https://0.0.0.0/x",
		"https://localhost:1/x",
		"https://192.168.1.1/x",
		"https://[fe80::1%25lo]/x",
	}
	mux := http.NewServeMux()
	for i, to := range targets {
		mux.HandleFunc(fmt.Sprintf("/r/%d", i), func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to, http.StatusFound)
		})
		// The second hop is where an attacker hides the target.
		mux.HandleFunc(fmt.Sprintf("/twice/%d", i), func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, fmt.Sprintf("/r/%d", i), http.StatusMovedPermanently)
		})
	}
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	// Only the test server's own host:port is allowed, so a redirect to
	// another port of loopback is judged like any other target.
	c := httpsCopier(t, srv, 0, u.Host)
	for i, to := range targets {
		for _, path := range []string{"/r/", "/twice/"} {
			t.Run(path+to, func(t *testing.T) {
				t.Parallel()
				rep := c.Check(context.Background(), "acme", fmt.Sprintf("%s%s%d", srv.URL, path, i))
				if rep.OK || rep.Error == nil || rep.Error.Kind != KindInvalid || rep.Error.Code != "BlockedAddress" {
					t.Fatalf("redirect to %s: ok %v error %+v, want invalid BlockedAddress", to, rep.OK, rep.Error)
				}
			})
		}
	}
}
