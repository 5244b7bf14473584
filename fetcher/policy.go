package fetcher

import (
	"fmt"
	"strings"
)

// Mode is how an attachment was read; customers see it in events.
type Mode string

// The access modes.
const (
	// ModeDelegated reads with credentials of the customer's integration role.
	ModeDelegated Mode = "delegated"
	// ModeCrossAccount reads with the fleet's own credentials, relying on the
	// customer's bucket policy or object ACLs.
	ModeCrossAccount Mode = "cross_account"
	// ModeHTTPS downloads a plain https URL.
	ModeHTTPS Mode = "https"
)

// Policy is the fleet's rule for cross-account access (docs/architecture.md,
// Access modes, rule 5).
type Policy string

// The cross-account policies.
const (
	// PolicyAllow reads with the fleet's credentials for customers without an
	// enabled integration (the integration guide's behaviour); requests carry
	// ExpectedBucketOwner when the customer registered an account.
	PolicyAllow Policy = "allow"
	// PolicyRequireOwner is PolicyAllow for customers with a registered
	// account ID and access_denied for the others, so no cross-account read
	// ever goes out without ExpectedBucketOwner.
	PolicyRequireOwner Policy = "require-owner"
	// PolicyRequireVerified is PolicyRequireOwner restricted to buckets the
	// customer proved control of (credcache.Integration.VerifiedFor): a
	// tenant who registered someone else's account ID cannot read that
	// account's buckets, since it cannot put its verification token there.
	// Every other cross-account read is access_denied with a hint that says
	// how to verify.
	PolicyRequireVerified Policy = "require-verified"
	// PolicyDeny refuses every cross-account read: only delegated customers
	// can have their S3 objects copied.
	PolicyDeny Policy = "deny"
)

// Policies lists every cross-account policy, the default first.
func Policies() []Policy {
	return []Policy{PolicyAllow, PolicyRequireOwner, PolicyRequireVerified, PolicyDeny}
}

// ParsePolicy parses one of Policies; "" is PolicyAllow. Any other value is
// an error, so a typo cannot silently widen access.
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return PolicyAllow, nil
	}
	names := make([]string, 0, 4)
	for _, p := range Policies() {
		if Policy(s) == p {
			return p, nil
		}
		names = append(names, string(p))
	}
	return "", fmt.Errorf("fetcher: unknown cross-account policy %q (want %s)", s, strings.Join(names, ", "))
}

// RequesterPays says when ferry's reads carry x-amz-request-payer:
// requester, without which S3 answers a bare 403 for a Requester Pays
// bucket read by another account.
type RequesterPays string

// The requester-pays settings.
const (
	// RequesterPaysDelegated acknowledges on delegated reads only: the
	// customer's own role pays for reading the customer's data.
	RequesterPaysDelegated RequesterPays = "delegated"
	// RequesterPaysAlways also acknowledges on cross-account reads, where
	// the fleet's account pays.
	RequesterPaysAlways RequesterPays = "always"
	// RequesterPaysNever never acknowledges: Requester Pays buckets of
	// other accounts are unreadable.
	RequesterPaysNever RequesterPays = "never"
)

// RequesterPaysSettings lists the valid settings, the default first.
func RequesterPaysSettings() []RequesterPays {
	return []RequesterPays{RequesterPaysDelegated, RequesterPaysAlways, RequesterPaysNever}
}

// ParseRequesterPays parses "delegated", "always" or "never"; "" is
// RequesterPaysDelegated.
func ParseRequesterPays(s string) (RequesterPays, error) {
	switch RequesterPays(s) {
	case "", RequesterPaysDelegated:
		return RequesterPaysDelegated, nil
	case RequesterPaysAlways, RequesterPaysNever:
		return RequesterPays(s), nil
	}
	return "", fmt.Errorf("fetcher: unknown requester-pays setting %q (want delegated, always or never)", s)
}
