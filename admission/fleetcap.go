// Package admission decides whether a customer's task may start now, across
// the whole fleet: FleetCap holds at most Max running tasks per customer as
// leases in Redis, so one customer's flood cannot take every worker's slots,
// and a worker that dies frees its places within one lease lifetime.
package admission

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Options configures a FleetCap.
type Options struct {
	Redis redis.UniversalClient
	// Prefix of every key (FERRY_REDIS_PREFIX; default "ferry").
	Prefix string
	// Max is how many tasks of one customer may run at once across every
	// worker sharing the Redis (FERRY_CUSTOMER_FLEET_MAX_INFLIGHT); 0 turns
	// the cap off.
	Max int
	// LeaseTTL is how long a place stays taken without renewal
	// (FERRY_CUSTOMER_FLEET_LEASE_TTL, default 30 s); Run renews held places
	// every third of it. A worker killed without draining frees its places
	// after at most this long.
	LeaseTTL time.Duration
	// RedisErrors counts failed Redis calls (ferry_redis_errors_total); nil
	// counts nothing.
	RedisErrors prometheus.Counter
	Logger      zerolog.Logger
}

// FleetCap is the fleet-wide per-customer cap. Each customer has one sorted
// set, PREFIX:{CUSTOMER}:inflight (in the customer's hash tag, like its
// other keys), whose members are the places held by running tasks, scored
// by the Redis server's clock at which each lapses. Taking a place drops
// lapsed members and adds one only below Max, in one script, so two workers
// racing for the last place cannot both win. Using the server's clock keeps
// workers with skewed clocks from expiring each other's places early.
//
// There is no library for this: Redis lock libraries (bsm/redislock,
// go-redsync, and ferry's own redislock) hold one owner per key, and a
// counting semaphore whose places lapse on their own is the whole of what
// this type does, in two short scripts and a ZREM.
type FleetCap struct {
	o Options

	mu   sync.Mutex
	held map[string]map[*Place]struct{} // by customer, for renewal
}

// Place is one held fleet-wide place; Release gives it back.
type Place struct {
	f        *FleetCap
	customer string
	token    string
	once     sync.Once
}

// New returns a FleetCap; with Max 0 it admits everything without touching
// Redis.
func New(o Options) (*FleetCap, error) {
	if o.Max < 0 {
		return nil, fmt.Errorf("admission: Max must not be negative, got %d", o.Max)
	}
	if o.Max > 0 && o.Redis == nil {
		return nil, errors.New("admission: a fleet-wide cap needs Redis")
	}
	if o.Prefix == "" {
		o.Prefix = "ferry"
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	return &FleetCap{o: o, held: map[string]map[*Place]struct{}{}}, nil
}

// Enabled reports whether the cap applies (Max > 0).
func (f *FleetCap) Enabled() bool { return f != nil && f.o.Max > 0 }

// Key is the Redis key holding a customer's places.
func (f *FleetCap) Key(customer string) string {
	return f.o.Prefix + ":{" + customer + "}:inflight"
}

// acquireScript drops lapsed places, then adds ARGV[3] lapsing ARGV[2] ms
// from now if fewer than ARGV[1] remain. It returns 1 when the place was
// taken, 0 when the customer is at the cap. The key itself lapses with the
// newest place, so an idle customer leaves nothing behind.
var acquireScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1`)

// renewScript pushes the lapse time of the places still present (ARGV[2..])
// to ARGV[1] ms from now; a place that already lapsed (Redis unreachable
// for a whole lease) is not brought back, since another task may hold it
// now. It returns how many were renewed.
var renewScript = redis.NewScript(`
local t = redis.call("TIME")
local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  if redis.call("ZSCORE", KEYS[1], ARGV[i]) then
    redis.call("ZADD", KEYS[1], exp, ARGV[i])
    n = n + 1
  end
end
if n > 0 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
return n`)

// Acquire takes one of the customer's fleet-wide places. ok is false when
// the customer already has Max tasks running across the fleet: the caller
// puts the delivery off. An error means Redis could not answer (ok is
// false too); the caller decides whether to run uncapped. With the cap off
// it returns a nil Place and true.
func (f *FleetCap) Acquire(ctx context.Context, customer string) (p *Place, ok bool, err error) {
	if !f.Enabled() {
		return nil, true, nil
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	p = &Place{f: f, customer: customer, token: hex.EncodeToString(b)}
	n, err := acquireScript.Run(ctx, f.o.Redis, []string{f.Key(customer)}, f.o.Max, f.o.LeaseTTL.Milliseconds(), p.token).Int()
	if err != nil {
		return nil, false, f.failed(fmt.Errorf("take a fleet-wide place for %s: %w", customer, err))
	}
	if n != 1 {
		return nil, false, nil
	}
	f.mu.Lock()
	if f.held[customer] == nil {
		f.held[customer] = map[*Place]struct{}{}
	}
	f.held[customer][p] = struct{}{}
	f.mu.Unlock()
	return p, true, nil
}

// Release gives the place back at once. It is safe on a nil Place and
// idempotent. If Redis cannot answer, the place lapses after LeaseTTL.
func (p *Place) Release(ctx context.Context) error {
	if p == nil {
		return nil
	}
	var err error
	p.once.Do(func() {
		f := p.f
		f.mu.Lock()
		if m := f.held[p.customer]; m != nil {
			delete(m, p)
			if len(m) == 0 {
				delete(f.held, p.customer)
			}
		}
		f.mu.Unlock()
		if e := f.o.Redis.ZRem(ctx, f.Key(p.customer), p.token).Err(); e != nil {
			err = f.failed(fmt.Errorf("release a fleet-wide place for %s: %w", p.customer, e))
		}
	})
	return err
}

// Run renews every held place each third of LeaseTTL until ctx ends. A
// renewal that fails is retried on the next tick; two missed in a row still
// leave a third of the lease. With the cap off it returns at once.
func (f *FleetCap) Run(ctx context.Context) {
	if !f.Enabled() {
		return
	}
	t := time.NewTicker(f.o.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.renew(ctx)
		}
	}
}

// renew extends every held place, one script per customer.
func (f *FleetCap) renew(ctx context.Context) {
	f.mu.Lock()
	batch := make(map[string][]any, len(f.held))
	for c, places := range f.held {
		args := make([]any, 0, len(places)+1)
		args = append(args, f.o.LeaseTTL.Milliseconds())
		for p := range places {
			args = append(args, p.token)
		}
		batch[c] = args
	}
	f.mu.Unlock()
	for c, args := range batch {
		rctx, cancel := context.WithTimeout(ctx, f.o.LeaseTTL/3)
		n, err := renewScript.Run(rctx, f.o.Redis, []string{f.Key(c)}, args...).Int()
		cancel()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				f.o.Logger.Warn().Err(f.failed(err)).Str("customer_id", c).Msg("fleet-wide places not renewed; retrying on the next tick")
			}
		case n < len(args)-1:
			// Lapsed while Redis was unreachable, or released meanwhile.
			f.o.Logger.Debug().Str("customer_id", c).Int("renewed", n).Int("held", len(args)-1).Msg("some fleet-wide places lapsed before renewal")
		}
	}
}

// Held returns how many places this process holds (for tests and metrics).
func (f *FleetCap) Held() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.held {
		n += len(m)
	}
	return n
}

func (f *FleetCap) failed(err error) error {
	if f.o.RedisErrors != nil {
		f.o.RedisErrors.Inc()
	}
	return err
}
