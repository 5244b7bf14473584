package credcache

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/envelope"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// Hash fields of <prefix>:{<cust>}:integration. The external ID fields hold a
// sealed envelope (AES-256-GCM, associated data = customer + field name), so
// a Redis dump or MONITOR never shows them.
const (
	fieldAccountID          = "account_id"
	fieldExternalID         = "external_id"
	fieldPrevExternalID     = "previous_external_id"
	fieldPrevExternalExpiry = "previous_external_id_expires_at"
	fieldRoleName           = "role_name"
	fieldEnabled            = "enabled"
	fieldCreatedAt          = "created_at"
	fieldUpdatedAt          = "updated_at"
)

// exportVersion is the version of the Export/Import file format.
const exportVersion = 1

// Registry stores integrations in Redis (<prefix>:{cust}:integration). Every
// change also clears that customer's cached credentials and cached refusal in
// Redis (and in the in-process caches attached with AttachCache), so a fixed
// or changed integration takes effect on the next task.
type Registry struct {
	rdb      redis.UniversalClient
	prefix   string
	roleName string
	seal     *envelope.Sealer
	log      zerolog.Logger
	metrics  *Metrics
	now      func() time.Time

	mu     sync.Mutex
	caches []*Cache

	// known is the last answer Redis gave for each customer, served while
	// Redis is unreachable so that tasks keep flowing (the registry is read
	// for every attachment). Guarded by mu.
	known map[string]knownIntegration
	// redisSkipUntil (unix nanos) makes Get answer from known without
	// waiting on Redis for a moment after a failure.
	redisSkipUntil atomic.Int64
	// One throttled logger per repeating message: the "Redis down" warning
	// and the "registry lost" error never silence each other.
	redisDownLog zerolog.Logger
	lostLog      zerolog.Logger
	// sawData is set once this process has seen the registry hold a record
	// (or written one): from then on a missing record with a missing
	// registry marker is data loss, not a customer without an integration.
	sawData atomic.Bool
}

// knownIntegration is a remembered registry answer: an integration or "none".
type knownIntegration struct {
	in       Integration
	notFound bool
}

// NewRegistry returns a registry; it fails when Options lack Redis or a valid
// key (the error says how to make one).
func NewRegistry(opts Options) (*Registry, error) {
	o, s, err := opts.prepare(false)
	if err != nil {
		return nil, err
	}
	return &Registry{
		rdb: o.Redis, prefix: o.Prefix, roleName: o.RoleName, seal: s,
		log: o.Logger, metrics: o.Metrics, now: o.Now,
		redisDownLog: throttled(o.Logger), lostLog: throttled(o.Logger),
	}, nil
}

// AttachCache makes every later change to a customer (Enable, Disable,
// RegisterAccount, Import) also drop c's in-process entries for that customer.
// Without it this process's L1 still cannot serve credentials for a changed
// role ARN or external ID (entries are keyed by both), but a cached refusal
// for an unchanged role would linger for up to Options.DeniedTTL.
func (r *Registry) AttachCache(c *Cache) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caches = append(r.caches, c)
}

// NewExternalID returns a fresh external ID: 24 random bytes (192 bits) from
// crypto/rand, base64url without padding (32 characters), which STS accepts.
func NewExternalID() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("credcache: generate external ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Enable turns on delegated access for customerID: ferry will assume
// arn:aws:iam::accountID:role/<Options.RoleName> with externalID and never
// read this customer's data with its own credentials again. When externalID
// is "", the external ID already stored for the same account is kept (so
// re-enabling does not break the customer's trust policy), otherwise a new
// one is generated with NewExternalID; customers migrating an existing role
// pass theirs. The returned Integration carries the external ID to show the
// customer. Cached credentials and refusals for the customer are cleared.
func (r *Registry) Enable(ctx context.Context, customerID, accountID, externalID string) (Integration, error) {
	if err := ValidCustomerID(customerID); err != nil {
		return Integration{}, err
	}
	if err := ValidAccountID(accountID); err != nil {
		return Integration{}, err
	}
	if externalID != "" {
		if err := ValidExternalID(externalID); err != nil {
			return Integration{}, err
		}
	}
	cur, err := r.Get(ctx, customerID)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Integration{}, err
	}
	if externalID == "" && exists && cur.AccountID == accountID && cur.ExternalID != "" {
		externalID = cur.ExternalID
	}
	if externalID == "" {
		if externalID, err = NewExternalID(); err != nil {
			return Integration{}, err
		}
	}
	now := r.now().UTC()
	in := Integration{
		CustomerID: customerID, AccountID: accountID, ExternalID: externalID,
		RoleName: r.roleName, Enabled: true, CreatedAt: now, UpdatedAt: now,
	}
	if exists {
		in.CreatedAt = cur.CreatedAt
		if cur.AccountID == accountID && cur.ExternalID == externalID {
			// Re-enabling must not cut short a rotation the customer may
			// still be in the middle of.
			in.PreviousExternalID, in.PreviousExternalIDExpires = cur.PreviousExternalID, cur.PreviousExternalIDExpires
		}
		in.VerificationToken = cur.VerificationToken
		in.VerifiedBuckets = cur.VerifiedBuckets
	}
	if err := ensureVerificationToken(&in); err != nil {
		return Integration{}, err
	}
	if err := r.write(ctx, []Integration{in}, false); err != nil {
		return Integration{}, fmt.Errorf("credcache: enable %s: %w", customerID, err)
	}
	if exists && cur.AccountID != accountID {
		in.VerifiedBuckets = r.dropVerified(ctx, customerID)
	}
	r.log.Info().Str("customer_id", customerID).Str("account_id", accountID).Msg("integration enabled")
	return in, nil
}

// Disable turns delegated access off: the customer's data is read with the
// fleet's own credentials again (cross-account rules apply). The account ID
// and external ID are kept so Enable can restore the same integration.
// Unknown customers are ErrNotFound.
func (r *Registry) Disable(ctx context.Context, customerID string) error {
	cur, err := r.Get(ctx, customerID)
	if err != nil {
		return err
	}
	cur.Enabled = false
	cur.UpdatedAt = r.now().UTC()
	if err := r.write(ctx, []Integration{cur}, false); err != nil {
		return fmt.Errorf("credcache: disable %s: %w", customerID, err)
	}
	r.log.Info().Str("customer_id", customerID).Msg("integration disabled")
	return nil
}

// RegisterAccount records the customer's AWS account ID without enabling
// delegation, so cross-account reads carry ExpectedBucketOwner = accountID.
// An existing integration keeps its enabled flag and external ID; if it is
// enabled, the role ferry assumes moves to the new account. The customer
// gets a verification token (kept if they had one) to prove bucket
// ownership with; buckets verified under another account stop counting.
func (r *Registry) RegisterAccount(ctx context.Context, customerID, accountID string) (Integration, error) {
	if err := ValidCustomerID(customerID); err != nil {
		return Integration{}, err
	}
	if err := ValidAccountID(accountID); err != nil {
		return Integration{}, err
	}
	now := r.now().UTC()
	in, err := r.Get(ctx, customerID)
	switch {
	case errors.Is(err, ErrNotFound):
		in = Integration{CustomerID: customerID, RoleName: r.roleName, CreatedAt: now}
	case err != nil:
		return Integration{}, err
	}
	moved := in.AccountID != accountID
	in.AccountID = accountID
	in.UpdatedAt = now
	if err := ensureVerificationToken(&in); err != nil {
		return Integration{}, err
	}
	if err := r.write(ctx, []Integration{in}, false); err != nil {
		return Integration{}, fmt.Errorf("credcache: register account for %s: %w", customerID, err)
	}
	if moved {
		in.VerifiedBuckets = r.dropVerified(ctx, customerID)
	}
	r.log.Info().Str("customer_id", customerID).Str("account_id", accountID).Msg("account registered")
	return in, nil
}

// Get returns the customer's integration (external ID in clear) or an error
// matching ErrNotFound. A record sealed under a key no longer configured is
// ErrCorrupt.
//
// Redis is the system of record and is read on every call while it answers.
// While it does not, Get serves the last answer this process had for the
// customer (with a warning at most every 30 s), so a Redis outage slows the
// fleet rather than stopping it; a customer never seen before is an error.
func (r *Registry) Get(ctx context.Context, customerID string) (Integration, error) {
	var read func() (Integration, error)
	_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		read = r.GetPipelined(ctx, p, customerID)
		return nil
	})
	return read()
}

// GetPipelined is Get as part of a caller's pipeline, so the read shares a
// round trip with other commands (the worker begins a task and reads its
// customer's integration at once). It queues the read on p and returns the
// function that answers as Get would once p has been executed; calling it
// before is an error. When Redis is being skipped after a failure it
// queues nothing and answers from memory.
func (r *Registry) GetPipelined(ctx context.Context, p redis.Pipeliner, customerID string) func() (Integration, error) {
	if err := ValidCustomerID(customerID); err != nil {
		return func() (Integration, error) { return Integration{}, err }
	}
	if time.Now().UnixNano() < r.redisSkipUntil.Load() {
		if in, err, ok := r.lastKnown(customerID); ok {
			return func() (Integration, error) { return in, err }
		}
	}
	rec := p.HGetAll(ctx, integrationKey(r.prefix, customerID))
	verified := p.HGetAll(ctx, verifiedKey(r.prefix, customerID))
	marker := p.Exists(ctx, registryKey(r.prefix))
	return func() (Integration, error) { return r.answer(ctx, customerID, rec, verified, marker) }
}

// answer is Get's answer from its replies.
func (r *Registry) answer(ctx context.Context, customerID string, rec, verified *redis.MapStringStringCmd, marker *redis.IntCmd) (Integration, error) {
	err := rec.Err()
	if err == nil {
		err = verified.Err()
	}
	if err == nil {
		err = marker.Err()
	}
	if err != nil {
		r.metrics.redisError()
		if ctx.Err() == nil {
			r.redisFailed(err)
			if in, kerr, ok := r.lastKnown(customerID); ok {
				return in, kerr
			}
		}
		return Integration{}, fmt.Errorf("credcache: get integration %s: %w", customerID, err)
	}
	m := rec.Val()
	if len(m) == 0 {
		if marker.Val() == 0 && r.sawData.Load() {
			// Redis lost its data. Keep answering as before rather than
			// downgrade a delegated customer to the fleet's credentials.
			r.warnLost()
			if in, kerr, ok := r.lastKnown(customerID); ok {
				return in, kerr
			}
			return Integration{}, fmt.Errorf("get integration %s: %w", customerID, ErrRegistryLost)
		}
		r.remember(customerID, knownIntegration{notFound: true})
		return Integration{}, fmt.Errorf("%w %s", ErrNotFound, customerID)
	}
	in, err := r.decode(customerID, m, verified.Val())
	if err == nil {
		r.sawData.Store(true)
		r.remember(customerID, knownIntegration{in: in})
	}
	return in, err
}

func (r *Registry) warnLost() {
	r.lostLog.Error().Msg("integration registry missing from Redis (data loss?): serving integrations last read by this process; restore with `ferry integration import`")
}

func (r *Registry) remember(customerID string, k knownIntegration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]knownIntegration{}
	}
	r.known[customerID] = k
}

func (r *Registry) forgetKnown(customerID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.known, customerID)
}

// lastKnown is the remembered answer for the customer; ok is false when
// this process never had one.
func (r *Registry) lastKnown(customerID string) (Integration, error, bool) {
	r.mu.Lock()
	k, ok := r.known[customerID]
	r.mu.Unlock()
	if !ok {
		return Integration{}, nil, false
	}
	if k.notFound {
		return Integration{}, fmt.Errorf("%w %s", ErrNotFound, customerID), true
	}
	return k.in, nil, true
}

func (r *Registry) redisFailed(err error) {
	now := time.Now()
	r.redisSkipUntil.Store(now.Add(redisRetryAfter).UnixNano())
	r.redisDownLog.Warn().Err(err).Msg("redis unavailable: serving integrations last read by this process")
}

// List returns every integration, sorted by customer ID. It SCANs the
// keyspace (every master of a cluster), so it is for operators, not for the
// task path. One unreadable record fails the whole list, so an export never
// silently misses a customer.
func (r *Registry) List(ctx context.Context) ([]Integration, error) {
	keys, err := redisconn.Keys(ctx, r.rdb, escapeGlob(r.prefix)+":{*}:integration")
	if err != nil {
		r.metrics.redisError()
		return nil, fmt.Errorf("credcache: list integrations: %w", err)
	}
	head, tail := r.prefix+":{", "}:integration"
	var ids []string
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, head), tail)
		if ValidCustomerID(id) == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	verified := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, integrationKey(r.prefix, id))
		verified[i] = pipe.HGetAll(ctx, verifiedKey(r.prefix, id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			r.metrics.redisError()
			return nil, fmt.Errorf("credcache: list integrations: %w", err)
		}
	}
	out := make([]Integration, 0, len(ids))
	for i, id := range ids {
		m := cmds[i].Val()
		if len(m) == 0 {
			continue // deleted between SCAN and HGETALL
		}
		in, err := r.decode(id, m, verified[i].Val())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// exportFile is the Export/Import format.
type exportFile struct {
	Version      int           `json:"version"`
	ExportedAt   time.Time     `json:"exported_at"`
	Integrations []Integration `json:"integrations"`
}

// Export writes every integration to w as indented JSON with external IDs in
// clear: the file is a secret, for an operator's backup or migration, and
// Import reads it back.
func (r *Registry) Export(ctx context.Context, w io.Writer) error {
	list, err := r.List(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(exportFile{Version: exportVersion, ExportedAt: r.now().UTC(), Integrations: list}); err != nil {
		return fmt.Errorf("credcache: export: %w", err)
	}
	return nil
}

// Import reads a file written by Export and replaces the record of every
// customer it lists (customers not listed are left alone). The whole file is
// validated first and then written in one MULTI/EXEC transaction, so a bad
// entry anywhere means nothing is written (an *ImportError matching
// ErrInvalidImport). On a Redis Cluster, which refuses transactions across
// slots, each customer is written in a transaction of its own: a Redis
// failure part way leaves the customers before it imported and the rest
// untouched, and running the same import again completes it. It returns
// the number of integrations written.
func (r *Registry) Import(ctx context.Context, rd io.Reader) (int, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var f exportFile
	if err := dec.Decode(&f); err != nil {
		return 0, &ImportError{Entry: -1, Err: fmt.Errorf("not an integration export: %w", err)}
	}
	if dec.More() {
		return 0, &ImportError{Entry: -1, Err: errors.New("trailing data after the JSON document")}
	}
	if f.Version != exportVersion {
		return 0, &ImportError{Entry: -1, Err: fmt.Errorf("version %d, want %d", f.Version, exportVersion)}
	}
	if f.Integrations == nil {
		return 0, &ImportError{Entry: -1, Err: errors.New(`no "integrations" list`)}
	}
	now := r.now().UTC()
	seen := make(map[string]int, len(f.Integrations))
	for i := range f.Integrations {
		in := &f.Integrations[i]
		if err := r.validateImported(in, now); err != nil {
			return 0, &ImportError{Entry: i, CustomerID: clip(in.CustomerID), Err: err}
		}
		if j, dup := seen[in.CustomerID]; dup {
			return 0, &ImportError{Entry: i, CustomerID: in.CustomerID, Err: fmt.Errorf("duplicate of entry %d", j)}
		}
		seen[in.CustomerID] = i
	}
	if err := r.write(ctx, f.Integrations, true); err != nil {
		return 0, fmt.Errorf("credcache: import: %w", err)
	}
	r.log.Info().Int("integrations", len(f.Integrations)).Msg("integrations imported")
	return len(f.Integrations), nil
}

func (r *Registry) validateImported(in *Integration, now time.Time) error {
	if err := ValidCustomerID(in.CustomerID); err != nil {
		return err
	}
	if in.AccountID != "" || in.Enabled {
		if err := ValidAccountID(in.AccountID); err != nil {
			return err
		}
	}
	if in.ExternalID != "" || in.Enabled {
		if err := ValidExternalID(in.ExternalID); err != nil {
			return err
		}
	}
	if in.PreviousExternalID != "" {
		if err := ValidExternalID(in.PreviousExternalID); err != nil {
			return &ValidationError{Field: "previous_external_id", Reason: err.(*ValidationError).Reason}
		}
		if in.ExternalID == "" || in.PreviousExternalIDExpires.IsZero() {
			return &ValidationError{Field: "previous_external_id", Reason: "needs external_id and previous_external_id_expires_at"}
		}
	}
	if in.RoleName == "" {
		in.RoleName = r.roleName
	}
	if err := ValidRoleName(in.RoleName); err != nil {
		return err
	}
	if in.VerificationToken != "" {
		if err := ValidVerificationToken(in.VerificationToken); err != nil {
			return err
		}
	}
	for _, v := range in.VerifiedBuckets {
		if err := ValidAccountID(v.AccountID); err != nil {
			return err
		}
		if v.Bucket == "" {
			return &ValidationError{Field: "bucket", Reason: "verified bucket without a name"}
		}
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now
	}
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = now
	}
	return nil
}

// write stores integrations and clears their cached credentials and refusals
// in one transaction. replace deletes each record first so fields absent from
// the new record do not survive.
func (r *Registry) write(ctx context.Context, list []Integration, replace bool) error {
	// The marker goes first: a record never exists without it.
	if err := r.rdb.SetNX(ctx, registryKey(r.prefix), r.now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		r.metrics.redisError()
		return err
	}
	r.sawData.Store(true)
	// A Redis Cluster refuses a transaction whose keys span slots, and each
	// customer's keys share one slot (their hash tag): there, every
	// customer is its own transaction.
	batches := [][]Integration{list}
	if _, ok := r.rdb.(*redis.ClusterClient); ok {
		batches = make([][]Integration, len(list))
		for i := range list {
			batches[i] = list[i : i+1]
		}
	}
	var err error
	for _, batch := range batches {
		_, err = r.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, in := range batch {
				key := integrationKey(r.prefix, in.CustomerID)
				if replace {
					pipe.Del(ctx, key)
				}
				pipe.HSet(ctx, key, r.encode(in))
				if in.ExternalID == "" {
					pipe.HDel(ctx, key, fieldExternalID)
				}
				if in.PreviousExternalID == "" {
					pipe.HDel(ctx, key, fieldPrevExternalID, fieldPrevExternalExpiry)
				}
				if in.AccountID == "" {
					pipe.HDel(ctx, key, fieldAccountID)
				}
				if in.VerificationToken == "" {
					pipe.HDel(ctx, key, fieldVerificationToken)
				}
				if replace {
					writeVerified(ctx, pipe, r.prefix, in)
				}
				pipe.Del(ctx, credsKey(r.prefix, in.CustomerID), deniedKey(r.prefix, in.CustomerID))
			}
			return nil
		})
		if err != nil {
			r.metrics.redisError()
			break
		}
	}
	// Forgotten even after a failure: some of the list may have been
	// written, and forgetting what was not costs one Redis read.
	r.mu.Lock()
	caches := r.caches
	r.mu.Unlock()
	for _, in := range list {
		r.forgetKnown(in.CustomerID)
		for _, c := range caches {
			c.forget(in.CustomerID)
		}
	}
	return err
}

func (r *Registry) encode(in Integration) map[string]any {
	enabled := "0"
	if in.Enabled {
		enabled = "1"
	}
	m := map[string]any{
		fieldRoleName:  in.RoleName,
		fieldEnabled:   enabled,
		fieldCreatedAt: in.CreatedAt.UTC().Format(time.RFC3339Nano),
		fieldUpdatedAt: in.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
	if in.AccountID != "" {
		m[fieldAccountID] = in.AccountID
	}
	if in.ExternalID != "" {
		m[fieldExternalID] = r.seal.Seal([]byte(in.ExternalID), envelope.AssociatedData("integration/"+fieldExternalID, in.CustomerID))
	}
	if in.PreviousExternalID != "" {
		m[fieldPrevExternalID] = r.seal.Seal([]byte(in.PreviousExternalID), envelope.AssociatedData("integration/"+fieldPrevExternalID, in.CustomerID))
		m[fieldPrevExternalExpiry] = in.PreviousExternalIDExpires.UTC().Format(time.RFC3339Nano)
	}
	if in.VerificationToken != "" {
		m[fieldVerificationToken] = r.seal.Seal([]byte(in.VerificationToken), envelope.AssociatedData("integration/"+fieldVerificationToken, in.CustomerID))
	}
	return m
}

func (r *Registry) decode(customerID string, m, verified map[string]string) (Integration, error) {
	in := Integration{
		CustomerID: customerID,
		AccountID:  m[fieldAccountID],
		RoleName:   m[fieldRoleName],
		Enabled:    m[fieldEnabled] == "1",
	}
	if in.RoleName == "" {
		in.RoleName = r.roleName
	}
	for _, f := range []struct {
		field string
		dst   *string
	}{{fieldExternalID, &in.ExternalID}, {fieldPrevExternalID, &in.PreviousExternalID}, {fieldVerificationToken, &in.VerificationToken}} {
		sealed, ok := m[f.field]
		if !ok {
			continue
		}
		pt, err := r.seal.Open([]byte(sealed), envelope.AssociatedData("integration/"+f.field, customerID))
		if err != nil {
			r.log.Error().Str("customer_id", customerID).Str("field", f.field).Msg("integration secret does not open with any configured key")
			return Integration{}, fmt.Errorf("%w: customer %s: %s does not open with any configured key (FERRY_CACHE_KEY changed?)", ErrCorrupt, customerID, f.field)
		}
		*f.dst = string(pt)
	}
	var err error
	if in.PreviousExternalIDExpires, err = parseTime(m[fieldPrevExternalExpiry]); err != nil {
		return Integration{}, fmt.Errorf("%w: customer %s: %s: %v", ErrCorrupt, customerID, fieldPrevExternalExpiry, err)
	}
	if in.VerifiedBuckets, err = decodeVerified(customerID, verified); err != nil {
		return Integration{}, err
	}
	if in.CreatedAt, err = parseTime(m[fieldCreatedAt]); err != nil {
		return Integration{}, fmt.Errorf("%w: customer %s: %s: %v", ErrCorrupt, customerID, fieldCreatedAt, err)
	}
	if in.UpdatedAt, err = parseTime(m[fieldUpdatedAt]); err != nil {
		return Integration{}, fmt.Errorf("%w: customer %s: %s: %v", ErrCorrupt, customerID, fieldUpdatedAt, err)
	}
	return in, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// escapeGlob quotes SCAN pattern metacharacters in a configured prefix.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
