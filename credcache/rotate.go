package credcache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultRotationTTL is how long the previous external ID stays valid after
// RotateExternalID when the caller gives no TTL: two weeks, time for a
// customer's change process to update a trust policy. FinishRotation ends it
// sooner, once the customer confirms.
const DefaultRotationTTL = 14 * 24 * time.Hour

// MaxRotationTTL bounds the rotation window: an external ID being rotated out
// (perhaps because it leaked) must not stay valid indefinitely.
const MaxRotationTTL = 90 * 24 * time.Hour

// ErrRotationInProgress is RotateExternalID's refusal to start a rotation
// while another is in progress: the oldest ID would be dropped at once and a
// customer still presenting it would be refused.
var ErrRotationInProgress = errors.New("credcache: an external ID rotation is already in progress")

// ErrNoRotation is FinishRotation's answer when there is nothing to finish.
var ErrNoRotation = errors.New("credcache: no external ID rotation in progress")

// RotateExternalID gives the customer a new external ID (externalID, or one
// from NewExternalID when "") and keeps the current one valid for ttl
// (DefaultRotationTTL when 0, at most MaxRotationTTL): until then the
// credential cache presents the new ID first and falls back to the old one
// when the role refuses the new, so the customer can change their trust
// policy to accept both, then only the new, without a refused task. The
// returned Integration carries both IDs (ExternalIDs lists them for the
// trust policy). Cached credentials and refusals for the customer are
// cleared, as on every change. It fails with ErrNotFound for an unknown
// customer, ErrRotationInProgress while another rotation runs, and a
// *ValidationError for an ID STS would not accept or that is already in use.
func (r *Registry) RotateExternalID(ctx context.Context, customerID, externalID string, ttl time.Duration) (Integration, error) {
	if ttl == 0 {
		ttl = DefaultRotationTTL
	}
	if ttl < 0 || ttl > MaxRotationTTL {
		return Integration{}, &ValidationError{Field: "ttl", Value: ttl.String(), Reason: "want more than 0 and at most " + MaxRotationTTL.String()}
	}
	if externalID != "" {
		if err := ValidExternalID(externalID); err != nil {
			return Integration{}, err
		}
	}
	in, err := r.Get(ctx, customerID)
	if err != nil {
		return Integration{}, err
	}
	now := r.now().UTC()
	if in.ExternalID == "" {
		return Integration{}, fmt.Errorf("credcache: customer %s has no external ID to rotate: enable delegated access first", customerID)
	}
	if in.Rotating(now) {
		return Integration{}, fmt.Errorf("%w for %s (the previous ID is valid until %s)", ErrRotationInProgress, customerID, in.PreviousExternalIDExpires.Format(time.RFC3339))
	}
	if externalID == in.ExternalID {
		return Integration{}, &ValidationError{Field: "external_id", Reason: "is the customer's current external ID; a rotation needs a new one"}
	}
	if externalID == "" {
		if externalID, err = NewExternalID(); err != nil {
			return Integration{}, err
		}
	}
	in.PreviousExternalID, in.ExternalID = in.ExternalID, externalID
	in.PreviousExternalIDExpires = now.Add(ttl)
	in.UpdatedAt = now
	if err := r.write(ctx, []Integration{in}, false); err != nil {
		return Integration{}, fmt.Errorf("credcache: rotate external ID of %s: %w", customerID, err)
	}
	r.log.Info().Str("customer_id", customerID).Time("previous_valid_until", in.PreviousExternalIDExpires).
		Msg("external ID rotation started")
	return in, nil
}

// FinishRotation ends the customer's external ID rotation: the previous ID
// is forgotten and only the current one is presented from the next task on
// (cached credentials obtained with the previous one are dropped). A
// rotation whose TTL ran out is cleaned up the same way. Call it once the
// customer's trust policy accepts the new ID. It fails with ErrNoRotation
// when no previous ID is stored.
func (r *Registry) FinishRotation(ctx context.Context, customerID string) (Integration, error) {
	in, err := r.Get(ctx, customerID)
	if err != nil {
		return Integration{}, err
	}
	if in.PreviousExternalID == "" {
		return Integration{}, fmt.Errorf("%w for %s", ErrNoRotation, customerID)
	}
	in.PreviousExternalID, in.PreviousExternalIDExpires = "", time.Time{}
	in.UpdatedAt = r.now().UTC()
	if err := r.write(ctx, []Integration{in}, false); err != nil {
		return Integration{}, fmt.Errorf("credcache: finish rotation of %s: %w", customerID, err)
	}
	r.log.Info().Str("customer_id", customerID).Msg("external ID rotation finished")
	return in, nil
}
