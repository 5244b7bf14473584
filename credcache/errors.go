package credcache

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNotFound means the customer has no integration record: Get and Disable
// of an unknown customer return it, so a caller can tell "never registered"
// (fall back to cross-account rules) from a Redis failure.
var ErrNotFound = errors.New("credcache: no integration for customer")

// ErrInvalid is matched (errors.Is) by every *ValidationError: a customer ID,
// account ID, external ID or role name that ferry refuses to store or use.
var ErrInvalid = errors.New("credcache: invalid value")

// ErrInvalidImport is matched (errors.Is) by every *ImportError: the import
// file was refused and nothing was written.
var ErrInvalidImport = errors.New("credcache: invalid import file")

// ErrRegistryLost means the customer's record is missing and so is the
// registry's own marker, in a process that has seen the registry hold data:
// Redis lost its data (a restart without persistence). It is transient for
// the task; on-call restores the registry with `ferry integration import`.
// Answering "not found" instead would read delegated customers' buckets with
// the fleet's own credentials.
var ErrRegistryLost = errors.New("credcache: the integration registry in Redis is gone (restart without persistence?): restore it with `ferry integration import` from the last export")

// ErrCorrupt means a stored integration record cannot be read back, most
// often because its external ID was sealed under a key that is no longer in
// Options.Keys. The record is left untouched so restoring the key recovers it.
var ErrCorrupt = errors.New("credcache: stored integration cannot be read")

// ErrNotDelegated means Credentials or a Provider was asked for a customer
// whose Integration lacks an account ID or external ID, so there is no role
// to assume. It is wrapped in an *AssumeRoleError with Denied false.
var ErrNotDelegated = errors.New("credcache: integration has no role to assume")

// ValidationError names the field that failed validation and why. The value
// is echoed only for non-secret fields: an external ID never appears in an
// error message (error strings end up in logs and events).
type ValidationError struct {
	Field  string // "customer_id", "account_id", "external_id", "role_name"
	Value  string // "" for external_id
	Reason string
}

// Error names the field, the (non-secret) value and the rule it broke.
func (e *ValidationError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("credcache: invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("credcache: invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ImportError is Import's refusal of a file; Entry is the 0-based index of
// the offending integration (-1 when the file as a whole is malformed).
// Import validates the whole file before writing, so an ImportError always
// means nothing was written.
type ImportError struct {
	Entry      int
	CustomerID string
	Err        error
}

// Error names the refused entry and why.
func (e *ImportError) Error() string {
	if e.Entry < 0 {
		return fmt.Sprintf("credcache: import: %v", e.Err)
	}
	if e.CustomerID == "" {
		return fmt.Sprintf("credcache: import: entry %d: %v", e.Entry, e.Err)
	}
	return fmt.Sprintf("credcache: import: entry %d (customer %q): %v", e.Entry, e.CustomerID, e.Err)
}

// Unwrap exposes the underlying cause (often a *ValidationError).
func (e *ImportError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidImport) true for every ImportError.
func (e *ImportError) Is(target error) bool { return target == ErrInvalidImport }

// KeyError is a missing or malformed sealing key in Options.Keys; NewRegistry
// and New refuse to start with one, since nothing could be sealed or opened.
type KeyError struct {
	Reason string
}

// Error says what is wrong with the keys and how to make a good one.
func (e *KeyError) Error() string {
	return "credcache: " + e.Reason + ": make a key with `openssl rand -base64 32` and set FERRY_CACHE_KEY to it " +
		"(comma-separated, newest first, to rotate)"
}

// AssumeRoleError is STS's refusal (or failure) to issue credentials for a
// customer. Denied is true when STS refused (AccessDenied and friends): the
// customer's role is misconfigured and retrying will not help until they fix
// it. Denied is false for throttling, 5xx, network and Redis-independent
// failures, which callers treat as transient. Cached is true when the refusal
// came from the short-lived denial cache rather than a fresh STS call.
type AssumeRoleError struct {
	CustomerID string
	RoleARN    string
	Code       string
	Message    string
	Denied     bool
	Cached     bool
	Err        error
}

// Error names the role, the customer and STS's code and message; it never
// contains the external ID.
func (e *AssumeRoleError) Error() string {
	var b strings.Builder
	b.WriteString("credcache: assume role")
	if e.RoleARN != "" {
		b.WriteString(" " + e.RoleARN)
	}
	if e.CustomerID != "" {
		b.WriteString(" for customer " + e.CustomerID)
	}
	b.WriteString(": ")
	switch {
	case e.Code != "" && e.Message != "":
		b.WriteString(e.Code + ": " + e.Message)
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	if e.Cached {
		b.WriteString(" (cached refusal)")
	}
	return b.String()
}

// Unwrap exposes the SDK or context error underneath, when there is one.
func (e *AssumeRoleError) Unwrap() error { return e.Err }

var (
	customerIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	accountIDRe  = regexp.MustCompile(`^[0-9]{12}$`)
	// STS's documented pattern for ExternalId: [\w+=,.@:\/-]*, 2–1224 chars
	// (length checked apart: Go's regexp caps repeat counts at 1000):
	// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
	// Go's \w is ASCII [0-9A-Za-z_], as STS's is.
	externalIDRe = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	// IAM role names: [\w+=,.@-]+, at most 64 chars.
	roleNameRe = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// ValidCustomerID returns a *ValidationError unless id is 1–128 characters of
// [A-Za-z0-9._-]. The charset keeps customer IDs safe inside Redis keys (no
// glob or hash-tag characters) and inside STS role session names.
func ValidCustomerID(id string) error {
	if !customerIDRe.MatchString(id) {
		return &ValidationError{Field: "customer_id", Value: clip(id), Reason: "want 1-128 characters of [A-Za-z0-9._-]"}
	}
	return nil
}

// ValidAccountID returns a *ValidationError unless id is a 12-digit AWS
// account ID.
func ValidAccountID(id string) error {
	if !accountIDRe.MatchString(id) {
		return &ValidationError{Field: "account_id", Value: clip(id), Reason: "want 12 digits"}
	}
	return nil
}

// ExternalIDRule is STS's rule for an ExternalId, as ferry states it when it
// refuses one.
const ExternalIDRule = "want 2-1224 characters of [A-Za-z0-9_+=,.@:/-] (STS's rule for ExternalId)"

// ValidExternalID returns a *ValidationError unless id is what STS accepts as
// an ExternalId (2–1224 characters of [\w+=,.@:/-]). The error never contains
// the value.
func ValidExternalID(id string) error {
	if len(id) < 2 || len(id) > 1224 || !externalIDRe.MatchString(id) {
		return &ValidationError{Field: "external_id", Reason: ExternalIDRule}
	}
	return nil
}

// ValidRoleName returns a *ValidationError unless name is an IAM role name
// (1–64 characters of [\w+=,.@-]).
func ValidRoleName(name string) error {
	if !roleNameRe.MatchString(name) {
		return &ValidationError{Field: "role_name", Value: clip(name), Reason: "want 1-64 characters of [A-Za-z0-9_+=,.@-]"}
	}
	return nil
}

// clip keeps error messages bounded when someone pastes a whole file into a
// field.
func clip(s string) string {
	if len(s) > 140 {
		return s[:140] + "…"
	}
	return s
}
