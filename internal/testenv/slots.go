package testenv

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the key's
// hash tag, or of the whole key when it has none, modulo 16384, as the
// Redis Cluster specification defines it
// (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#key-distribution-model).
// go-redis computes the same internally but does not export it; tests need
// it against a single server too, where CLUSTER KEYSLOT is refused.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// ScriptCall is one Lua script (EVAL, EVALSHA, their _RO forms, or FCALL)
// a checked client ran, with the keys it declared.
type ScriptCall struct {
	Command string
	Keys    []string
}

// ScriptLog records the scripts run through a client CheckScriptSlots
// watches.
type ScriptLog struct {
	mu    sync.Mutex
	calls []ScriptCall
}

// Calls returns the scripts run so far.
func (l *ScriptLog) Calls() []ScriptCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ScriptCall(nil), l.calls...)
}

// CheckScriptSlots watches every script c runs, alone or in a pipeline, and
// fails the test (at its end) when one declares keys in more than one
// cluster slot: Redis Cluster refuses such a script with CROSSSLOT, so code
// that passes against a single server would fail in production. The check
// runs in both modes, so a single-server test run catches it too.
func CheckScriptSlots(t testing.TB, c redis.UniversalClient) *ScriptLog {
	t.Helper()
	l := &ScriptLog{}
	var bad []string
	seen := map[string]bool{}
	record := func(cmd redis.Cmder) {
		name := strings.ToLower(cmd.Name())
		switch name {
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		default:
			return
		}
		args := cmd.Args()
		if len(args) < 3 {
			return
		}
		n, err := strconv.Atoi(fmt.Sprint(args[2]))
		if err != nil || n < 0 || 3+n > len(args) {
			return
		}
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprint(args[3+i])
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls = append(l.calls, ScriptCall{Command: name, Keys: keys})
		for _, k := range keys[min(1, len(keys)):] {
			if Slot(k) != Slot(keys[0]) {
				id := strings.Join(keys, "\x00")
				if seen[id] { // EVALSHA, then EVAL after NOSCRIPT
					return
				}
				seen[id] = true
				bad = append(bad, fmt.Sprintf("a script with keys %q spans slots %d and %d", keys, Slot(keys[0]), Slot(k)))
				return
			}
		}
	}
	c.AddHook(slotHook{record})
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, b := range bad {
			t.Errorf("a Redis script must keep its keys in one cluster slot (share a {hash tag}): %s", b)
		}
	})
	return l
}

type slotHook struct{ record func(redis.Cmder) }

func (h slotHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(cmd)
		return next(ctx, cmd)
	}
}

func (h slotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.record(cmd)
		}
		return next(ctx, cmds)
	}
}
