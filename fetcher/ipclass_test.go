package fetcher

import (
	"net/netip"
	"testing"
)

func TestClassifyIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.1.1", true},
		{"169.254.169.254", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.128.0.1", false},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"0.0.0.0", true},
		{"255.255.255.255", true},
		{"240.0.0.1", true},
		{"198.18.0.1", true},
		{"198.19.255.255", true},
		{"192.0.2.10", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"52.216.1.1", false},
		{"::1", true},
		{"::", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:8.8.8.8", false},
		{"::127.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", false},  // NAT64 of 8.8.8.8
		{"2002:7f00:1::", true},      // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", true},  // 6to4 of 169.254.169.254
		{"2002:808:808::1", false},   // 6to4 of 8.8.8.8
		{"2001:db8::1", true},
		{"2607:f8b0:4004:800::200e", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			a := netip.MustParseAddr(tt.addr)
			got := classifyIP(a)
			if (got != "") != tt.blocked {
				t.Fatalf("classifyIP(%s) = %q, blocked want %v", tt.addr, got, tt.blocked)
			}
		})
	}
}
