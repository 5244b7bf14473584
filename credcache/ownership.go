package credcache

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Proof of bucket ownership (docs/architecture.md, Access modes): a
// registered account ID is the tenant's word, and any tenant may name any
// account. Under FERRY_CROSS_ACCOUNT=require-verified a cross-account read
// goes out only for a bucket the customer proved control of by putting its
// verification token at VerificationKey, read back by the fleet pinned to
// the registered account.

// fieldVerificationToken holds the customer's bucket-verification token in
// the integration hash, sealed like the external ID: whoever holds it can
// make a bucket count as the customer's.
const fieldVerificationToken = "verification_token"

// VerificationKeyPrefix is where in a bucket a customer puts the object that
// proves control of it; the object's key is the prefix and the customer ID.
const VerificationKeyPrefix = ".well-known/ferry-verification/"

// VerificationKey is the key of the object that proves customerID controls
// a bucket.
func VerificationKey(customerID string) string { return VerificationKeyPrefix + customerID }

// VerifiedBucket is a bucket a customer proved control of, and the account
// that owned it then. It counts only while that account is still the
// customer's registered account: registering another account voids it.
type VerifiedBucket struct {
	Bucket     string    `json:"bucket"`
	AccountID  string    `json:"account_id"`
	VerifiedAt time.Time `json:"verified_at"`
}

// NewVerificationToken returns a fresh verification token: 24 random bytes
// from crypto/rand, base64url without padding (32 characters), so it survives
// copying into a file, a console or a shell unquoted.
func NewVerificationToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("credcache: generate verification token: %w", err)
	}
	return "fv1-" + base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidVerificationToken returns a *ValidationError unless tok has the form
// NewVerificationToken makes (an import file must not smuggle in a token a
// tenant chose). The error never contains the value.
func ValidVerificationToken(tok string) error {
	rest, ok := strings.CutPrefix(tok, "fv1-")
	if b, err := base64.RawURLEncoding.DecodeString(rest); !ok || err != nil || len(b) != 24 {
		return &ValidationError{Field: "verification_token", Reason: "want fv1- and 32 characters of base64url, as ferry issues them"}
	}
	return nil
}

// VerifiedFor reports whether bucket is verified for this customer under its
// current registered account. It is what require-verified checks on every
// cross-account read.
func (i Integration) VerifiedFor(bucket string) bool {
	if i.AccountID == "" {
		return false
	}
	for _, v := range i.VerifiedBuckets {
		if v.Bucket == bucket && v.AccountID == i.AccountID {
			return true
		}
	}
	return false
}

// MarkBucketVerified records bucket as verified for customerID under
// accountID (the account the proof object was read from) and returns the
// record. The caller must have read the proof; the record stays inert if
// the customer's registered account has since changed (VerifiedFor). It is
// ErrNotFound for a customer without an integration.
func (r *Registry) MarkBucketVerified(ctx context.Context, customerID, bucket, accountID string) (VerifiedBucket, error) {
	if err := ValidAccountID(accountID); err != nil {
		return VerifiedBucket{}, err
	}
	if bucket == "" || len(bucket) > 255 || strings.ContainsAny(bucket, " \t\r\n/") {
		return VerifiedBucket{}, &ValidationError{Field: "bucket", Value: clip(bucket), Reason: "want an S3 bucket name"}
	}
	if _, err := r.Get(ctx, customerID); err != nil {
		return VerifiedBucket{}, err
	}
	v := VerifiedBucket{Bucket: bucket, AccountID: accountID, VerifiedAt: r.now().UTC()}
	if err := r.rdb.HSet(ctx, verifiedKey(r.prefix, customerID), bucket, encodeVerified(v)).Err(); err != nil {
		r.metrics.redisError()
		return VerifiedBucket{}, fmt.Errorf("credcache: record verified bucket %s for %s: %w", bucket, customerID, err)
	}
	r.forgetKnown(customerID)
	r.log.Info().Str("customer_id", customerID).Str("bucket", bucket).Str("account_id", accountID).Msg("bucket verified")
	return v, nil
}

// UnverifyBucket forgets that bucket was verified for customerID, so
// require-verified refuses it again; forgetting a bucket never verified is
// not an error.
func (r *Registry) UnverifyBucket(ctx context.Context, customerID, bucket string) error {
	if err := ValidCustomerID(customerID); err != nil {
		return err
	}
	if err := r.rdb.HDel(ctx, verifiedKey(r.prefix, customerID), bucket).Err(); err != nil {
		r.metrics.redisError()
		return fmt.Errorf("credcache: forget verified bucket %s for %s: %w", bucket, customerID, err)
	}
	r.forgetKnown(customerID)
	return nil
}

// ensureVerificationToken gives in a token when it has none, so every
// customer with a registered account can prove bucket ownership.
func ensureVerificationToken(in *Integration) error {
	if in.VerificationToken != "" {
		return nil
	}
	tok, err := NewVerificationToken()
	if err != nil {
		return err
	}
	in.VerificationToken = tok
	return nil
}

// writeVerified replaces the customer's verified buckets with list inside a
// transaction (Import).
func writeVerified(ctx context.Context, pipe redis.Pipeliner, prefix string, in Integration) {
	key := verifiedKey(prefix, in.CustomerID)
	pipe.Del(ctx, key)
	if len(in.VerifiedBuckets) == 0 {
		return
	}
	m := make(map[string]any, len(in.VerifiedBuckets))
	for _, v := range in.VerifiedBuckets {
		m[v.Bucket] = encodeVerified(v)
	}
	pipe.HSet(ctx, key, m)
}

func encodeVerified(v VerifiedBucket) string {
	b, _ := json.Marshal(v) // strings and a time always marshal
	return string(b)
}

// decodeVerified reads the verified-buckets hash, sorted by bucket. An
// unreadable entry is ErrCorrupt: dropping it silently would refuse a
// verified bucket without saying why.
func decodeVerified(customerID string, m map[string]string) ([]VerifiedBucket, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]VerifiedBucket, 0, len(m))
	for bucket, raw := range m {
		var v VerifiedBucket
		if err := json.Unmarshal([]byte(raw), &v); err != nil || v.Bucket != bucket {
			return nil, fmt.Errorf("%w: customer %s: verified bucket %q: unreadable record", ErrCorrupt, customerID, bucket)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Bucket < out[b].Bucket })
	return out, nil
}

func verifiedKey(prefix, customerID string) string {
	return prefix + ":{" + customerID + "}:verified-buckets"
}

// dropVerified forgets every verified bucket of the customer after their
// registered account changed. Failing only leaves records VerifiedFor
// already ignores, so it logs rather than fails the change.
func (r *Registry) dropVerified(ctx context.Context, customerID string) []VerifiedBucket {
	if err := r.rdb.Del(ctx, verifiedKey(r.prefix, customerID)).Err(); err != nil {
		r.metrics.redisError()
		r.log.Warn().Err(err).Str("customer_id", customerID).Msg("verified buckets of the previous account not removed (they no longer count)")
	}
	r.forgetKnown(customerID)
	return nil
}
