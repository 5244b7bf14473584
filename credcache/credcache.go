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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
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
	RoleName   string `json:"role_name,omitempty"`
	// Enabled means delegated access: ferry assumes RoleARN and never reads
	// this customer's data with its own credentials.
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RoleARN is arn:aws:iam::AccountID:role/RoleName.
func (i Integration) RoleARN() string { panic("unimplemented") }

// Options configures the Registry and the Cache.
type Options struct {
	Redis  redis.UniversalClient
	Prefix string // key prefix, default "ferry"
	// Keys are AES-256 keys (32 bytes each): the first seals, all open.
	Keys [][]byte
	// STS is the fleet's STS client (its own credentials).
	STS             AssumeRoleAPI
	RoleName        string        // default DefaultRoleName
	SessionDuration time.Duration // default 1h
	RefreshWindow   time.Duration // default 5m
	DeniedTTL       time.Duration // default 60s
	LockTTL         time.Duration // default 10s
	Logger          zerolog.Logger
	Metrics         *Metrics // nil: not counted
}

// AssumeRoleAPI is the part of *sts.Client the cache uses.
type AssumeRoleAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// ErrNotFound: the customer has no integration record.
var ErrNotFound = errors.New("credcache: no integration for customer")

// AssumeRoleError is STS's refusal (or failure) to issue credentials for a
// customer. Denied is true when STS refused (AccessDenied and friends): the
// customer's role is misconfigured and retrying will not help until they fix
// it. Cached is true when the refusal came from the short-lived denial cache
// rather than a fresh STS call.
type AssumeRoleError struct {
	CustomerID string
	RoleARN    string
	Code       string
	Message    string
	Denied     bool
	Cached     bool
	Err        error
}

func (e *AssumeRoleError) Error() string { panic("unimplemented") }
func (e *AssumeRoleError) Unwrap() error { return e.Err }

// Registry stores integrations in Redis (ferry:{cust}:integration).
type Registry struct{}

// NewRegistry returns a registry; it fails when Options lack Redis or a valid key.
func NewRegistry(opts Options) (*Registry, error) { panic("unimplemented") }

// Get returns the customer's integration or ErrNotFound.
func (r *Registry) Get(ctx context.Context, customerID string) (Integration, error) {
	panic("unimplemented")
}

// Cache hands out credentials for delegated customers.
type Cache struct{}

// New returns a cache.
func New(opts Options) (*Cache, error) { panic("unimplemented") }

// Provider returns an aws.CredentialsProvider that yields in's assumed-role
// credentials through the cache; errors are *AssumeRoleError.
func (c *Cache) Provider(in Integration) aws.CredentialsProvider { panic("unimplemented") }

// Invalidate forgets the customer's cached credentials (L1 and L2), e.g.
// after S3 answered ExpiredToken; the next Provider call assumes the role again.
func (c *Cache) Invalidate(ctx context.Context, customerID string) error { panic("unimplemented") }

// Metrics are the cache's Prometheus collectors.
type Metrics struct{}
