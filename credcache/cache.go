package credcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/ferryworks/ferry/internal/awsclient"
	"github.com/ferryworks/ferry/internal/envelope"
	"github.com/ferryworks/ferry/internal/redislock"
)

const (
	// credentialSource is aws.Credentials.Source for everything the cache
	// hands out, so SDK debug output says where credentials came from.
	credentialSource = "ferry-credcache"

	// After a Redis error the cache goes straight to L1 and STS for this
	// long, so an outage costs one failed round trip per interval, not one
	// per lookup.
	redisRetryAfter = time.Second
	// A condition that repeats on every lookup (Redis down, the registry
	// gone) is logged at most once per interval, by message: see throttled.
	redisWarnInterval = 30 * time.Second

	// Waiters for another process's STS call poll the creds key with a
	// jittered backoff between these bounds.
	pollMin = 25 * time.Millisecond
	pollMax = 100 * time.Millisecond

	// L1 sweeps expired entries at most this often, once it holds more than
	// l1SweepSize customers.
	l1SweepEvery = time.Minute
	l1SweepSize  = 1024
)

// Cache hands out credentials for delegated customers: from its in-process
// L1, else from Redis (L2, sealed), else from one STS AssumeRole call per
// customer for the whole fleet (singleflight in the process, a Redis lock
// across processes). When Redis is unreachable it keeps serving from L1 and
// direct STS calls. It never falls back to the fleet's own credentials: the
// only credentials it returns are the customer's assumed-role credentials.
type Cache struct {
	o     Options
	seal  *envelope.Sealer
	log   zerolog.Logger
	m     *Metrics
	group singleflight.Group
	// flightTimeout bounds one shared fetch: waiting out a dead lock holder
	// plus the STS call with the SDK's retries.
	flightTimeout time.Duration

	mu        sync.RWMutex
	l1        map[string]l1Entry
	lastSweep time.Time
	// targets memoises validation and hashing per customer, so making a
	// Provider per S3 call costs a map lookup.
	targets map[string]*target

	redisSkipUntil atomic.Int64 // unix nanos, wall clock
	redisDownLog   zerolog.Logger
}

// l1Entry is one customer's in-process state: credentials, or a recent
// refusal, each tied to the identity (role + external ID) or fingerprint of
// the integration it was obtained for, so a changed role or external ID never
// reuses it.
type l1Entry struct {
	credsID  credIdent
	creds    aws.Credentials
	useUntil time.Time
	hasCreds bool

	deniedFP    [16]byte
	denied      deniedRecord
	deniedUntil time.Time
	hasDenied   bool
}

// New returns a cache; it fails when Options lack Redis, STS or a valid key
// (the error says how to make one), or when the durations cannot work
// together (RefreshWindow must be shorter than SessionDuration).
func New(opts Options) (*Cache, error) {
	o, s, err := opts.prepare(true)
	if err != nil {
		return nil, err
	}
	return &Cache{
		o: o, seal: s, log: o.Logger, m: o.Metrics,
		redisDownLog:  throttled(o.Logger),
		flightTimeout: 2*o.LockTTL + 30*time.Second,
		l1:            make(map[string]l1Entry),
		targets:       make(map[string]*target),
	}, nil
}

// credIdent is what credentials are valid for: the role and the external
// IDs ferry may present (the previous one only while a rotation is in
// progress). L1 compares it directly (the process holds the Integration in
// clear anyway), which keeps a hit free of hashing; L2 stores a hash of it.
type credIdent struct {
	accountID, roleName, externalID, prevExternalID string
}

// identOf is in's credIdent at this moment: a rotation whose TTL ran out no
// longer counts, so credentials obtained with the previous ID stop being
// used when it does.
func (c *Cache) identOf(in Integration) credIdent {
	id := credIdent{accountID: in.AccountID, roleName: in.RoleName, externalID: in.ExternalID}
	if id.roleName == "" {
		id.roleName = c.o.RoleName
	}
	if in.PreviousExternalID != "" && in.Rotating(c.o.Now()) {
		id.prevExternalID = in.PreviousExternalID
	}
	return id
}

// target is a validated Integration with everything a lookup needs
// precomputed, so the L1 path does no hashing or allocation.
type target struct {
	customerID string
	accountID  string
	// externalIDs are presented in this order until one is accepted: the
	// current ID, then the previous one during a rotation.
	externalIDs []string
	roleARN     string
	ident       credIdent
	// credsFP identifies role ARN + external IDs: credentials are reusable
	// exactly as long as they are unchanged.
	credsFP [16]byte
	// deniedFP also covers UpdatedAt, so re-enabling an unchanged
	// integration (the customer says they fixed their role) retries STS at
	// once in every process that rereads the registry.
	deniedFP  [16]byte
	flightID  string
	updatedAt time.Time
	err       error
}

// target returns the memoised target for in, building it when in differs
// from what was memoised for the customer.
func (c *Cache) target(in Integration) *target {
	id := c.identOf(in)
	c.mu.RLock()
	t, ok := c.targets[in.CustomerID]
	c.mu.RUnlock()
	if ok && t.ident == id && t.updatedAt.Equal(in.UpdatedAt) {
		return t
	}
	t = c.buildTarget(in, id)
	if t.err == nil {
		c.mu.Lock()
		c.targets[in.CustomerID] = t
		c.mu.Unlock()
	}
	return t
}

// buildTarget validates in as of id (identOf(in), which decides whether the
// previous external ID is still presented).
func (c *Cache) buildTarget(in Integration, id credIdent) *target {
	t := &target{customerID: in.CustomerID, accountID: in.AccountID, updatedAt: in.UpdatedAt, ident: id}
	if err := ValidCustomerID(in.CustomerID); err != nil {
		t.err = &AssumeRoleError{CustomerID: in.CustomerID, Err: err}
		return t
	}
	in.RoleName = id.roleName
	t.roleARN = in.RoleARN()
	if in.AccountID == "" || in.ExternalID == "" {
		t.err = &AssumeRoleError{CustomerID: in.CustomerID, RoleARN: t.roleARN, Err: ErrNotDelegated}
		return t
	}
	t.externalIDs = []string{id.externalID}
	if id.prevExternalID != "" {
		t.externalIDs = append(t.externalIDs, id.prevExternalID)
	}
	checks := []error{ValidAccountID(in.AccountID), ValidRoleName(in.RoleName)}
	for _, ext := range t.externalIDs {
		checks = append(checks, ValidExternalID(ext))
	}
	for _, err := range checks {
		if err != nil {
			t.err = &AssumeRoleError{CustomerID: in.CustomerID, RoleARN: t.roleARN, Err: err}
			return t
		}
	}
	ids := t.roleARN + "\x00" + id.externalID + "\x00" + id.prevExternalID
	h := sha256.Sum256([]byte(ids))
	copy(t.credsFP[:], h[:])
	h = sha256.Sum256([]byte(ids + "\x00" + in.UpdatedAt.UTC().Format(time.RFC3339Nano)))
	copy(t.deniedFP[:], h[:])
	t.flightID = in.CustomerID + "\x00" + hex.EncodeToString(t.deniedFP[:])
	return t
}

// Credentials returns in's assumed-role credentials through the cache, for
// direct use (check-access, benchmarks). Errors are *AssumeRoleError:
// Denied means the customer's role refused (cached for Options.DeniedTTL, so
// retrying soon returns the same refusal without calling STS); otherwise the
// failure is transient. in needs a valid customer ID, account ID and external
// ID; its Enabled flag is not consulted, so a role can be checked before the
// integration is turned on.
func (c *Cache) Credentials(ctx context.Context, in Integration) (aws.Credentials, error) {
	// An L1 hit needs neither validation nor hashing: only validated
	// identities are ever stored.
	if creds, ok := c.l1Creds(in.CustomerID, c.identOf(in)); ok {
		return creds, nil
	}
	return c.get(ctx, c.target(in))
}

// AssumeNow calls STS for in at once, skipping every cached credential and
// cached refusal: the question `ferry integration verify` asks ("does the
// role admit us now?"), which a refusal cached a minute ago must not answer.
// The outcome is shared as a fetch's is: credentials go to L1 and Redis, a
// refusal is cached for DeniedTTL; a success also deletes the fleet's cached
// refusal in Redis, so workers that had not cached it themselves stop
// refusing at once (those that had do after DeniedTTL). Errors are
// *AssumeRoleError, as Credentials'.
func (c *Cache) AssumeNow(ctx context.Context, in Integration) (aws.Credentials, error) {
	t := c.target(in)
	if t.err != nil {
		return aws.Credentials{}, t.err
	}
	res, err := c.assumeAndShare(ctx, t)
	if err != nil {
		return aws.Credentials{}, err
	}
	if derr := c.o.Redis.Del(ctx, deniedKey(c.o.Prefix, t.customerID)).Err(); derr != nil {
		c.redisFailed(derr)
	}
	return res.creds, nil
}

func (c *Cache) l1Creds(customerID string, id credIdent) (aws.Credentials, bool) {
	c.mu.RLock()
	e, ok := c.l1[customerID]
	c.mu.RUnlock()
	if ok && e.hasCreds && e.credsID == id && c.o.Now().Before(e.useUntil) {
		c.m.lookup("l1")
		return e.creds, true
	}
	return aws.Credentials{}, false
}

// Provider returns an aws.CredentialsProvider that yields in's assumed-role
// credentials through the cache; errors are *AssumeRoleError. It is cheap
// (validation and hashing are memoised per customer), meant to be made per
// call and set as a per-operation option on one shared client:
//
//	s3c.GetObject(ctx, in, func(o *s3.Options) { o.Credentials = cache.Provider(integ) })
//
// Do not wrap it in aws.NewCredentialsCache: this cache is the cache, shared
// with the whole fleet, and an SDK cache in front would keep credentials
// after Invalidate and past the refresh window.
func (c *Cache) Provider(in Integration) aws.CredentialsProvider {
	return &provider{c: c, t: c.target(in)}
}

type provider struct {
	c *Cache
	t *target
}

// Retrieve implements aws.CredentialsProvider.
func (p *provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	return p.c.get(ctx, p.t)
}

// Invalidate forgets the customer's cached credentials (L1 and L2), e.g.
// after S3 answered ExpiredToken or InvalidToken; the next lookup assumes the
// role again (the caller retries once). A cached refusal is left in place.
// The in-process entry is dropped even when Redis fails; the error then says
// that other processes may still be handed the old credentials.
func (c *Cache) Invalidate(ctx context.Context, customerID string) error {
	if err := ValidCustomerID(customerID); err != nil {
		return err
	}
	c.mu.Lock()
	if e, ok := c.l1[customerID]; ok {
		e.hasCreds = false
		e.creds = aws.Credentials{}
		c.l1[customerID] = e
	}
	c.mu.Unlock()
	if err := c.o.Redis.Del(ctx, credsKey(c.o.Prefix, customerID)).Err(); err != nil {
		c.redisFailed(err)
		return fmt.Errorf("credcache: invalidate %s: %w", customerID, err)
	}
	return nil
}

// forget drops everything this process holds for the customer; the
// registry calls it when an integration changes.
func (c *Cache) forget(customerID string) {
	c.mu.Lock()
	delete(c.l1, customerID)
	delete(c.targets, customerID)
	c.mu.Unlock()
}

func (c *Cache) get(ctx context.Context, t *target) (aws.Credentials, error) {
	if t.err != nil {
		return aws.Credentials{}, t.err
	}
	if creds, ok := c.l1Creds(t.customerID, t.ident); ok {
		return creds, nil
	}
	now := c.o.Now()
	c.mu.RLock()
	e, ok := c.l1[t.customerID]
	c.mu.RUnlock()
	if ok {
		if e.hasDenied && e.deniedFP == t.deniedFP && now.Before(e.deniedUntil) {
			c.m.lookup("denied_cached")
			return aws.Credentials{}, e.denied.err(t, true)
		}
	}

	// One fetch per customer in this process; it runs detached from the
	// first caller's context so one impatient caller cannot fail the others,
	// and each caller still stops waiting when its own context ends.
	ch := c.group.DoChan(t.flightID, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightTimeout)
		defer cancel()
		return c.fetch(fctx, t)
	})
	select {
	case <-ctx.Done():
		return aws.Credentials{}, &AssumeRoleError{CustomerID: t.customerID, RoleARN: t.roleARN, Err: ctx.Err()}
	case r := <-ch:
		if r.Err != nil {
			var ae *AssumeRoleError
			if errors.As(r.Err, &ae) && ae.Cached {
				c.m.lookup("denied_cached")
			} else {
				c.m.lookup("miss")
			}
			return aws.Credentials{}, r.Err
		}
		res := r.Val.(fetchResult)
		c.m.lookup(res.source)
		return res.creds, nil
	}
}

type fetchResult struct {
	creds  aws.Credentials
	source string // "l2" or "miss"
}

// redisError marks a failure of Redis (as opposed to STS) inside fetch.
type redisError struct{ err error }

func (e redisError) Error() string { return "redis: " + e.err.Error() }
func (e redisError) Unwrap() error { return e.err }

// fetch runs once per customer per process at a time: Redis first, then the
// fleet-wide lock and STS; without Redis, STS directly.
func (c *Cache) fetch(ctx context.Context, t *target) (fetchResult, error) {
	if c.redisUsable() {
		res, err := c.fetchShared(ctx, t)
		var re redisError
		if !errors.As(err, &re) {
			return res, err
		}
		c.redisFailed(re.err)
	}
	creds, err := c.assume(ctx, t)
	return fetchResult{creds: creds, source: "miss"}, err
}

// fetchShared reads L2 and, on a miss, either takes the customer's lock and
// calls STS or waits for whoever holds it. A holder that dies leaves a lock
// that expires after LockTTL, and the next poll takes over.
func (c *Cache) fetchShared(ctx context.Context, t *target) (fetchResult, error) {
	if res, found, err := c.readShared(ctx, t); found || err != nil {
		return res, err
	}
	lock := redislock.New(c.o.Redis, lockKey(c.o.Prefix, t.customerID), c.o.LockTTL)
	wait := pollMin
	for {
		ok, err := lock.TryLock(ctx)
		if err != nil {
			return fetchResult{}, redisError{err}
		}
		if ok {
			defer c.unlock(ctx, lock)
			// The previous holder may have stored its result between our
			// read and our lock.
			if res, found, err := c.readShared(ctx, t); found || err != nil {
				return res, err
			}
			return c.assumeAndShare(ctx, t)
		}
		// Full jitter keeps a fleet of waiters from polling in lockstep.
		d := pollMin + time.Duration(mrand.Int64N(int64(wait-pollMin)+1))
		select {
		case <-ctx.Done():
			return fetchResult{}, &AssumeRoleError{CustomerID: t.customerID, RoleARN: t.roleARN, Err: ctx.Err()}
		case <-time.After(d):
		}
		wait = min(2*wait, pollMax)
		if res, found, err := c.readShared(ctx, t); found || err != nil {
			return res, err
		}
	}
}

// unlock deletes the lock only if it is still ours: after LockTTL someone
// else may hold it.
func (c *Cache) unlock(ctx context.Context, lock *redislock.Lock) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := lock.Unlock(ctx); err != nil {
		// The lock expires by itself; waiters are delayed at most LockTTL.
		c.redisFailed(err)
	}
}

// readShared looks for usable credentials, then for a recent refusal, in one
// round trip (both keys share the customer's slot).
func (c *Cache) readShared(ctx context.Context, t *target) (fetchResult, bool, error) {
	vals, err := c.o.Redis.MGet(ctx, credsKey(c.o.Prefix, t.customerID), deniedKey(c.o.Prefix, t.customerID)).Result()
	if err != nil {
		return fetchResult{}, false, redisError{err}
	}
	now := c.o.Now()
	if s, ok := vals[0].(string); ok {
		if rec, ok := c.openCreds(t, s); ok && now.Before(rec.UseUntil) {
			creds := rec.credentials(t.accountID)
			c.storeCreds(t, creds, rec.UseUntil)
			return fetchResult{creds: creds, source: "l2"}, true, nil
		}
	}
	if s, ok := vals[1].(string); ok {
		if rec, ok := c.openDenied(t, s); ok && now.Before(rec.Until) {
			c.storeDenied(t, rec)
			return fetchResult{}, true, rec.err(t, true)
		}
	}
	return fetchResult{}, false, nil
}

// assumeAndShare calls STS and publishes the outcome to the fleet.
func (c *Cache) assumeAndShare(ctx context.Context, t *target) (fetchResult, error) {
	creds, err := c.assume(ctx, t)
	if err == nil {
		useUntil := creds.Expires.Add(-c.o.RefreshWindow)
		if ttl := useUntil.Sub(c.o.Now()); ttl > 0 {
			rec := credsRecord{
				FP: t.credsFP[:], AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey,
				SessionToken: creds.SessionToken, Expires: creds.Expires, UseUntil: useUntil,
			}
			c.setShared(ctx, credsKey(c.o.Prefix, t.customerID), c.sealJSON(rec, envelope.AssociatedData("creds", t.customerID)), ttl)
		}
		return fetchResult{creds: creds, source: "miss"}, nil
	}
	var ae *AssumeRoleError
	if errors.As(err, &ae) && ae.Denied {
		rec := deniedRecord{FP: t.deniedFP[:], Code: ae.Code, Message: ae.Message, Until: c.o.Now().Add(c.o.DeniedTTL)}
		c.setShared(ctx, deniedKey(c.o.Prefix, t.customerID), c.sealJSON(rec, envelope.AssociatedData("denied", t.customerID)), c.o.DeniedTTL)
	}
	return fetchResult{}, err
}

// setShared stores a value for the fleet; failing to is not the caller's
// problem (this process already has the result in L1).
func (c *Cache) setShared(ctx context.Context, key string, val []byte, ttl time.Duration) {
	if err := c.o.Redis.Set(ctx, key, val, ttl).Err(); err != nil {
		c.redisFailed(err)
	}
}

// assume calls STS with each of t's external IDs in turn until the role
// accepts one, and records the outcome in L1. Only the role refusing every
// ID is a refusal (cached by the callers): during a rotation the new ID is
// refused until the customer's trust policy lists it, and that must not
// stop the fallback to the previous ID. A failure that is not a refusal
// (throttling, a 5xx) ends the attempt at once: it says nothing about
// which ID the role accepts.
func (c *Cache) assume(ctx context.Context, t *target) (aws.Credentials, error) {
	var refused *AssumeRoleError
	for i, ext := range t.externalIDs {
		creds, ae := c.assumeWith(ctx, t, ext)
		if ae == nil {
			if i > 0 {
				// At most once per customer per credential lifetime, and
				// worth saying: the customer's trust policy does not accept
				// the new ID yet, so finishing the rotation would break them.
				c.log.Info().Str("customer_id", t.customerID).Str("role_arn", t.roleARN).
					Msg("role accepted the previous external ID only: the customer's trust policy does not list the new one yet")
			}
			// Credentials already inside the refresh window (a clock far
			// ahead of STS's) are still valid until Expires: hand them
			// out, just don't keep them.
			if useUntil := creds.Expires.Add(-c.o.RefreshWindow); c.o.Now().Before(useUntil) {
				c.storeCreds(t, creds, useUntil)
			}
			return creds, nil
		}
		if !ae.Denied {
			return aws.Credentials{}, ae
		}
		if refused == nil {
			// The refusal of the current ID is the one to report: it is
			// the ID the customer's trust policy must accept.
			refused = ae
		}
	}
	c.storeDenied(t, deniedRecord{Code: refused.Code, Message: refused.Message, Until: c.o.Now().Add(c.o.DeniedTTL)})
	c.log.Warn().Str("customer_id", t.customerID).Str("role_arn", t.roleARN).Str("code", refused.Code).
		Int("external_ids_tried", len(t.externalIDs)).Msg("customer role refused AssumeRole; refusal cached")
	return aws.Credentials{}, refused
}

// assumeWith makes one STS AssumeRole call presenting externalID.
func (c *Cache) assumeWith(ctx context.Context, t *target, externalID string) (creds aws.Credentials, ae *AssumeRoleError) {
	ctx, span := startAssumeSpan(ctx, t)
	defer func() {
		var err error
		if ae != nil {
			err = ae
		}
		endAssumeSpan(span, err)
	}()
	out, err := c.o.STS.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(t.roleARN),
		RoleSessionName: aws.String(SessionName(t.customerID)),
		ExternalId:      aws.String(externalID),
		DurationSeconds: aws.Int32(int32(c.o.SessionDuration / time.Second)),
	})
	if err != nil {
		ae := classify(err, t)
		if ae.Denied {
			c.m.assumeRole("denied")
		} else {
			c.m.assumeRole("error")
			c.log.Warn().Str("customer_id", t.customerID).Str("role_arn", t.roleARN).Str("code", ae.Code).
				Err(ae.Err).Msg("AssumeRole failed")
		}
		return aws.Credentials{}, ae
	}
	if out.Credentials == nil || out.Credentials.Expiration == nil || out.Credentials.AccessKeyId == nil {
		c.m.assumeRole("error")
		return aws.Credentials{}, &AssumeRoleError{CustomerID: t.customerID, RoleARN: t.roleARN,
			Err: errors.New("STS answered without credentials or expiration")}
	}
	c.m.assumeRole("ok")
	c.log.Debug().Str("customer_id", t.customerID).Str("role_arn", t.roleARN).Time("expires", *out.Credentials.Expiration).
		Msg("assumed customer role")
	return aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Source:          credentialSource,
		CanExpire:       true,
		Expires:         *out.Credentials.Expiration,
		AccountID:       t.accountID,
	}, nil
}

// notDenial reports whether an STS 4xx code is something other than the
// customer's role refusing us: what the SDK itself treats as retryable
// (throttling, request timeouts), STS failing to reach an identity provider,
// and problems with the fleet's own credentials (every customer would fail;
// caching them as one customer's denial would hide the real fault).
func notDenial(code string) bool {
	return awsclient.RetriedCode(code) || fleetFaultCodes[code]
}

var fleetFaultCodes = map[string]bool{
	"IDPCommunicationError": true,
	"InvalidClientTokenId":  true, "SignatureDoesNotMatch": true, "IncompleteSignature": true,
	"MissingAuthenticationToken": true, "ExpiredToken": true, "ExpiredTokenException": true,
	"UnrecognizedClientException": true, "RequestExpired": true,
}

// classify turns an AssumeRole error into an *AssumeRoleError. Denied means
// a 4xx from STS that only the customer can fix: AccessDenied (trust policy,
// external ID), a role that does not exist or a DurationSeconds above the
// role's maximum (ValidationError), a disabled STS region.
func classify(err error, t *target) *AssumeRoleError {
	ae := &AssumeRoleError{CustomerID: t.customerID, RoleARN: t.roleARN, Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		ae.Code, ae.Message = api.ErrorCode(), api.ErrorMessage()
	}
	var re *smithyhttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if ae.Code != "" && !notDenial(ae.Code) {
		ae.Denied = status >= 400 && status < 500 ||
			status == 0 && (ae.Code == "AccessDenied" || ae.Code == "AccessDeniedException")
	}
	return ae
}

// SessionName is the RoleSessionName ferry uses for a customer: "ferry-"
// plus the customer ID, with characters outside STS's [\w+=,.@-] replaced by
// "-" and cut to STS's 64-character limit. It shows in the customer's
// CloudTrail, so they can tell ferry's sessions apart.
func SessionName(customerID string) string {
	b := []byte("ferry-" + customerID)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '_', ch == '+', ch == '=', ch == ',', ch == '.', ch == '@', ch == '-':
		default:
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// credsRecord is the sealed L2 value of <prefix>:{cust}:creds.
type credsRecord struct {
	FP              []byte    `json:"fp"`
	AccessKeyID     string    `json:"akid"`
	SecretAccessKey string    `json:"secret"`
	SessionToken    string    `json:"token"`
	Expires         time.Time `json:"expires"`
	UseUntil        time.Time `json:"use_until"`
}

func (r credsRecord) credentials(accountID string) aws.Credentials {
	return aws.Credentials{
		AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey, SessionToken: r.SessionToken,
		Source: credentialSource, CanExpire: true, Expires: r.Expires, AccountID: accountID,
	}
}

// deniedRecord is a cached refusal (sealed L2 value of
// <prefix>:{cust}:creds:denied, and in L1).
type deniedRecord struct {
	FP      []byte    `json:"fp"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Until   time.Time `json:"until"`
}

func (d deniedRecord) err(t *target, cached bool) *AssumeRoleError {
	return &AssumeRoleError{CustomerID: t.customerID, RoleARN: t.roleARN, Code: d.Code, Message: d.Message,
		Denied: true, Cached: cached}
}

func (c *Cache) sealJSON(v any, ad []byte) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings, bytes and times always marshal
	}
	return c.seal.Seal(b, ad)
}

// openCreds opens an L2 value; anything that does not open or belongs to
// another role/external ID is a miss (logged without contents), and the
// caller's fresh STS result overwrites it.
func (c *Cache) openCreds(t *target, sealed string) (credsRecord, bool) {
	var rec credsRecord
	if !c.openJSON(t, sealed, "creds", &rec) || !fpEqual(rec.FP, t.credsFP) {
		return credsRecord{}, false
	}
	return rec, true
}

func (c *Cache) openDenied(t *target, sealed string) (deniedRecord, bool) {
	var rec deniedRecord
	if !c.openJSON(t, sealed, "denied", &rec) || !fpEqual(rec.FP, t.deniedFP) {
		return deniedRecord{}, false
	}
	return rec, true
}

func (c *Cache) openJSON(t *target, sealed, domain string, v any) bool {
	pt, err := c.seal.Open([]byte(sealed), envelope.AssociatedData(domain, t.customerID))
	if err == nil {
		err = json.Unmarshal(pt, v)
	}
	if err != nil {
		c.log.Warn().Str("customer_id", t.customerID).Str("key", domain).
			Msg("cached value does not open with any configured key; treated as a miss")
		return false
	}
	return true
}

func fpEqual(b []byte, fp [16]byte) bool {
	return len(b) == len(fp) && string(b) == string(fp[:])
}

func (c *Cache) storeCreds(t *target, creds aws.Credentials, useUntil time.Time) {
	c.storeL1(t.customerID, l1Entry{credsID: t.ident, creds: creds, useUntil: useUntil, hasCreds: true})
}

func (c *Cache) storeDenied(t *target, rec deniedRecord) {
	rec.FP = nil // L1 keeps the fingerprint in deniedFP
	c.storeL1(t.customerID, l1Entry{deniedFP: t.deniedFP, denied: rec, deniedUntil: rec.Until, hasDenied: true})
}

func (c *Cache) storeL1(customerID string, e l1Entry) {
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l1[customerID] = e
	if len(c.l1) > l1SweepSize && now.Sub(c.lastSweep) > l1SweepEvery {
		// Customers come and go; without a sweep L1 would keep every
		// customer ever served.
		c.lastSweep = now
		for id, e := range c.l1 {
			if !now.Before(e.useUntil) && !now.Before(e.deniedUntil) {
				delete(c.l1, id)
			}
		}
	}
}

func (c *Cache) redisUsable() bool {
	return time.Now().UnixNano() >= c.redisSkipUntil.Load()
}

// redisFailed counts the error, skips Redis for redisRetryAfter and warns at
// most once per redisWarnInterval.
func (c *Cache) redisFailed(err error) {
	c.m.redisError()
	now := time.Now()
	c.redisSkipUntil.Store(now.Add(redisRetryAfter).UnixNano())
	c.redisDownLog.Warn().Err(err).Msg("redis unavailable: serving credentials from the in-process cache and direct STS calls")
}

// throttled returns log limited to one event per redisWarnInterval. Each
// message that repeats gets a logger of its own, so a routine warning never
// spends the allowance of an error that follows it.
func throttled(log zerolog.Logger) zerolog.Logger {
	return log.Sample(&zerolog.BurstSampler{Burst: 1, Period: redisWarnInterval})
}
