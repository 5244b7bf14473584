// Package credcache is ferry's memory of who its customers are on AWS and of
// the credentials it holds for them: the integration registry (account ID,
// external ID, role) kept in Redis, and a two-level cache (in-process, then
// Redis, sealed with AES-256-GCM) of STS AssumeRole credentials keyed by
// customer, so the whole fleet calls STS once per customer per credential
// lifetime.
package credcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/envelope"
)

// DefaultRoleName is the role customers create for delegated access.
const DefaultRoleName = "ScaleAI-Integration"

// Integration is one customer's AWS integration as stored in the registry.
type Integration struct {
	CustomerID string `json:"customer_id"`
	// AccountID is the customer's 12-digit AWS account ID; "" when none was
	// registered.
	AccountID string `json:"account_id,omitempty"`
	// ExternalID is the secret the customer's trust policy requires.
	ExternalID string `json:"external_id,omitempty"`
	// PreviousExternalID is the external ID being rotated out (see
	// Registry.RotateExternalID): until PreviousExternalIDExpires, ferry
	// presents it when the role refuses ExternalID, so the customer can
	// switch their trust policy without a moment of refusals. "" when no
	// rotation was started since the last FinishRotation.
	PreviousExternalID        string    `json:"previous_external_id,omitempty"`
	PreviousExternalIDExpires time.Time `json:"previous_external_id_expires_at,omitzero"`
	RoleName                  string    `json:"role_name,omitempty"`
	// Enabled means delegated access: ferry assumes RoleARN and never reads
	// this customer's data with its own credentials.
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// VerificationToken is what the customer puts at VerificationKey in a
	// bucket to prove they control it (sealed at rest, like ExternalID).
	VerificationToken string `json:"verification_token,omitempty"`
	// VerifiedBuckets are the buckets the customer proved control of,
	// sorted by name (see VerifiedFor).
	VerifiedBuckets []VerifiedBucket `json:"verified_buckets,omitempty"`
}

// Rotating reports whether an external ID rotation is in progress at now:
// the previous external ID is still presented.
func (i Integration) Rotating(now time.Time) bool {
	return i.PreviousExternalID != "" && now.Before(i.PreviousExternalIDExpires)
}

// ExternalIDs returns the external IDs ferry presents at now, in the order
// it tries them: ExternalID, then PreviousExternalID while the rotation is
// in progress. They are the values the customer's trust policy may list
// (TrustPolicy takes them in this order). Nil when there is no external ID.
func (i Integration) ExternalIDs(now time.Time) []string {
	if i.ExternalID == "" {
		return nil
	}
	if i.Rotating(now) {
		return []string{i.ExternalID, i.PreviousExternalID}
	}
	return []string{i.ExternalID}
}

// RoleARN is arn:aws:iam::AccountID:role/RoleName (DefaultRoleName when
// RoleName is empty). It is "" when no account ID is registered, since there
// is then no role to assume.
func (i Integration) RoleARN() string {
	if i.AccountID == "" {
		return ""
	}
	name := i.RoleName
	if name == "" {
		name = DefaultRoleName
	}
	return "arn:aws:iam::" + i.AccountID + ":role/" + name
}

// Options configures the Registry and the Cache.
type Options struct {
	Redis  redis.UniversalClient
	Prefix string // key prefix, default "ferry"
	// Keys are AES-256 keys (32 bytes each): the first seals, all open.
	// ParseKeys decodes them from FERRY_CACHE_KEY.
	Keys [][]byte
	// STS is the fleet's STS client (its own credentials). Required by New,
	// unused by NewRegistry.
	STS             AssumeRoleAPI
	RoleName        string        // default DefaultRoleName
	SessionDuration time.Duration // default 1h; STS accepts 15m–12h
	RefreshWindow   time.Duration // default 5m; must be shorter than SessionDuration
	DeniedTTL       time.Duration // default 60s
	LockTTL         time.Duration // default 10s
	Logger          zerolog.Logger
	Metrics         *Metrics // nil: not counted
	// Now is the clock that decides whether credentials are inside the
	// refresh window; default time.Now. Redis TTLs still run on Redis's
	// clock, so a value Now considers stale is ignored even if Redis still
	// holds it.
	Now func() time.Time
}

// AssumeRoleAPI is the part of *sts.Client the cache uses.
type AssumeRoleAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

const (
	defaultPrefix          = "ferry"
	defaultSessionDuration = time.Hour
	defaultRefreshWindow   = 5 * time.Minute
	defaultDeniedTTL       = 60 * time.Second
	defaultLockTTL         = 10 * time.Second
)

// The DurationSeconds bounds of STS AssumeRole; the role's own maximum
// session duration may be lower than MaxSessionDuration.
// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
const (
	MinSessionDuration = 15 * time.Minute
	MaxSessionDuration = 12 * time.Hour
)

// prepare is what New and NewRegistry start with: the options with their
// defaults, and the sealer of their keys.
func (o Options) prepare(needSTS bool) (Options, *envelope.Sealer, error) {
	o, err := o.withDefaults(needSTS)
	if err != nil {
		return o, nil, err
	}
	s, err := envelope.NewSealer(o.Keys)
	if err != nil {
		return o, nil, &KeyError{Reason: err.Error()}
	}
	return o, s, nil
}

// ParseKeys decodes FERRY_CACHE_KEY: one or more base64 (standard or URL,
// padded or not) 32-byte keys separated by commas, newest first. The first
// key seals; all open, so rotating means prepending a new key and dropping the
// old one once every sealed value has expired or been rewritten. Errors are
// *KeyError and never echo key material.
func ParseKeys(spec string) ([][]byte, error) {
	keys, err := envelope.ParseKeys(spec)
	if err != nil {
		return nil, &KeyError{Reason: err.Error()}
	}
	return keys, nil
}

// withDefaults fills zero fields and rejects combinations that cannot work.
// needSTS is true for the Cache.
func (o Options) withDefaults(needSTS bool) (Options, error) {
	if o.Redis == nil {
		return o, errors.New("credcache: Options.Redis is nil")
	}
	if needSTS && o.STS == nil {
		return o, errors.New("credcache: Options.STS is nil")
	}
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return o, fmt.Errorf("credcache: Options.Prefix %q must not contain braces (they are Redis cluster hash tags)", o.Prefix)
	}
	if o.RoleName == "" {
		o.RoleName = DefaultRoleName
	}
	if err := ValidRoleName(o.RoleName); err != nil {
		return o, err
	}
	if o.SessionDuration == 0 {
		o.SessionDuration = defaultSessionDuration
	}
	if o.SessionDuration < MinSessionDuration || o.SessionDuration > MaxSessionDuration {
		return o, fmt.Errorf("credcache: Options.SessionDuration %v: STS accepts 15m to 12h", o.SessionDuration)
	}
	if o.RefreshWindow == 0 {
		o.RefreshWindow = defaultRefreshWindow
	}
	if o.RefreshWindow < 0 || o.RefreshWindow >= o.SessionDuration {
		return o, fmt.Errorf("credcache: Options.RefreshWindow %v must be positive and shorter than SessionDuration %v", o.RefreshWindow, o.SessionDuration)
	}
	if o.DeniedTTL <= 0 {
		o.DeniedTTL = defaultDeniedTTL
	}
	if o.LockTTL <= 0 {
		o.LockTTL = defaultLockTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Redis keys. The customer sits in braces, a cluster hash tag, so all of one
// customer's keys share a slot and can be read with one MGET or changed in
// one MULTI.
// registryKey marks that the registry was ever written; a customer record
// missing while this marker is missing too means Redis lost its data.
func registryKey(prefix string) string { return prefix + ":registry" }

func integrationKey(prefix, customerID string) string {
	return prefix + ":{" + customerID + "}:integration"
}

func credsKey(prefix, customerID string) string {
	return prefix + ":{" + customerID + "}:creds"
}

func lockKey(prefix, customerID string) string {
	return prefix + ":{" + customerID + "}:creds:lock"
}

func deniedKey(prefix, customerID string) string {
	return prefix + ":{" + customerID + "}:creds:denied"
}
