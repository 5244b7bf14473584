package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes. It parses plain integers ("5368709120") and
// numbers with a unit ("64MiB", "5GiB", "1.5GB"); binary units (KiB, MiB, GiB,
// TiB, and the short forms K, M, G, T) are powers of 1024, SI units (KB, MB,
// GB, TB) powers of 1000, matching what operators usually mean by each.
type ByteSize int64

// Common sizes.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var byteUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kib": 1 << 10,
	"kb":  1e3,
	"m":   1 << 20,
	"mib": 1 << 20,
	"mb":  1e6,
	"g":   1 << 30,
	"gib": 1 << 30,
	"gb":  1e9,
	"t":   1 << 40,
	"tib": 1 << 40,
	"tb":  1e12,
}

var errByteSize = errors.New("not a byte size")

// ParseByteSize parses s as described on ByteSize. Negative sizes, fractional
// byte counts and values beyond int64 are errors.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q: %w", s, errByteSize)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, errByteSize)
		}
		if n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("%q: %w (too large)", s, errByteSize)
		}
		return ByteSize(n * int64(mult)), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, errByteSize)
	}
	v := f * mult
	if v != math.Trunc(v) || v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: %w (not a whole number of bytes)", s, errByteSize)
	}
	return ByteSize(v), nil
}

// String formats the size with the largest binary unit that divides it
// exactly ("16MiB", "5GiB"), or as plain bytes, so printed values parse back
// to the same number.
func (b ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
