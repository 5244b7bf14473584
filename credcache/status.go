package credcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/redisconn"
)

// Status is how an integration is doing, as support reads it in
// `ferry integration list` and the ferry_integrations gauge counts it.
type Status string

// The statuses of an integration (docs/architecture.md, Redis).
const (
	// StatusPending: nothing has shown yet whether the integration works:
	// never verified and no task since it was last changed.
	StatusPending Status = "pending"
	// StatusActive: the last verification or the last task succeeded.
	StatusActive Status = "active"
	// StatusFailing: the last verification failed, or the last
	// FailingAfter tasks in a row were refused at assume_role.
	StatusFailing Status = "failing"
)

// Statuses lists every status, in the order people read them.
func Statuses() []Status { return []Status{StatusPending, StatusActive, StatusFailing} }

// FailingAfter is how many tasks in a row, fleet-wide, the customer's role
// must refuse at assume_role before the integration is failing. One refusal
// can be a role changed a moment ago; three in a row are a broken role.
const FailingAfter = 3

// StatusError is the failure an integration's status remembers: where it
// happened and the hint the customer was given. It holds no secrets (STS and
// S3 messages name roles and buckets, never external IDs or keys).
type StatusError struct {
	// Source is "verify" (ferry integration verify) or "task".
	Source  string    `json:"source"`
	Stage   string    `json:"stage,omitempty"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	Hint    string    `json:"hint,omitempty"`
	At      time.Time `json:"at"`
}

// Summary is the error on one line: "CODE at STAGE (SOURCE)".
func (e *StatusError) Summary() string {
	if e == nil {
		return ""
	}
	code := e.Code
	if code == "" {
		code = "error"
	}
	return fmt.Sprintf("%s at %s (%s)", code, e.Stage, e.Source)
}

// IntegrationStatus is an integration's status with what it rests on.
type IntegrationStatus struct {
	Status Status `json:"status"`
	// LastUsed is when a worker last finished a task of this customer,
	// whatever its outcome (kept across changes of the integration).
	LastUsed time.Time `json:"last_used,omitzero"`
	// LastSuccess is the last successful verification or completed task.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastVerified is when `ferry integration verify` last ran.
	LastVerified time.Time `json:"last_verified,omitzero"`
	// AssumeRoleFailures counts the tasks refused at assume_role since the
	// last success, as reported by the workers.
	AssumeRoleFailures int `json:"assume_role_failures,omitempty"`
	// LastError is the last failure recorded, even once the integration is
	// active again (its At says when).
	LastError *StatusError `json:"last_error,omitempty"`
}

// TaskOutcome is what a worker saw of one finished task, for the status.
type TaskOutcome struct {
	At time.Time
	// Completed: every attachment was copied.
	Completed bool
	// AssumeRoleRefused: the customer's role refused AssumeRole (access
	// denied at assume_role); Err says how.
	AssumeRoleRefused bool
	Err               *StatusError
}

// Hash fields of <prefix>:{<cust>}:status.
const (
	statusFieldBasis       = "basis" // the integration's updated_at the record is about
	statusFieldState       = "state"
	statusFieldLastUsed    = "last_used"
	statusFieldLastSuccess = "last_success"
	statusFieldVerifiedAt  = "verified_at"
	statusFieldAssumeFails = "assume_fails"
	statusFieldError       = "error" // JSON of StatusError
)

func statusKey(prefix, customerID string) string {
	return prefix + ":{" + customerID + "}:status"
}

// statusRecord is the stored status of one customer. basis is the
// integration's UpdatedAt when the record was written: a record about an
// integration since changed (a new account, role or external ID) says
// nothing about the new one, which is pending again (last_used is kept).
type statusRecord struct {
	basis       string
	state       Status // "" or pending: nothing shown yet
	lastUsed    time.Time
	lastSuccess time.Time
	verifiedAt  time.Time
	assumeFails int
	err         *StatusError
}

// statusDelta is what one write adds: a verification's result, or the
// tasks one process saw since its last write.
type statusDelta struct {
	verify   bool // a verification ran at verifiedAt
	verifyOK bool
	at       time.Time

	lastUsed    time.Time
	lastSuccess time.Time // a completed task in the window (zero: none)
	// refusals counts tasks refused at assume_role after the window's last
	// completed task (all of them when none completed).
	refusals int
	err      *StatusError
}

func (d statusDelta) empty() bool {
	return !d.verify && d.lastUsed.IsZero() && d.lastSuccess.IsZero() && d.refusals == 0
}

// apply is the one place the status rules live: a verification decides
// outright; a completed task makes the integration active; FailingAfter
// refusals in a row at assume_role make it failing; anything else leaves the
// status as it was.
func (s statusRecord) apply(d statusDelta) statusRecord {
	s.lastUsed = later(s.lastUsed, d.lastUsed)
	if d.verify {
		s.verifiedAt = later(s.verifiedAt, d.at)
		if d.verifyOK {
			s.state, s.assumeFails = StatusActive, 0
			s.lastSuccess = later(s.lastSuccess, d.at)
		} else {
			s.state = StatusFailing
			s.err = d.err
		}
		return s
	}
	if !d.lastSuccess.IsZero() {
		s.lastSuccess = later(s.lastSuccess, d.lastSuccess)
		s.assumeFails = d.refusals
		s.state = StatusActive
	} else {
		s.assumeFails += d.refusals
	}
	if d.refusals > 0 && d.err != nil {
		s.err = d.err
	}
	if s.assumeFails >= FailingAfter {
		s.state = StatusFailing
	}
	return s
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// view is the record as IntegrationStatus for an integration last changed
// at updatedAt.
func (s statusRecord) view(updatedAt time.Time) IntegrationStatus {
	if s.basis != basisOf(updatedAt) {
		return IntegrationStatus{Status: StatusPending, LastUsed: s.lastUsed}
	}
	st := s.state
	if st == "" {
		st = StatusPending
	}
	return IntegrationStatus{Status: st, LastUsed: s.lastUsed, LastSuccess: s.lastSuccess,
		LastVerified: s.verifiedAt, AssumeRoleFailures: s.assumeFails, LastError: s.err}
}

func basisOf(updatedAt time.Time) string { return updatedAt.UTC().Format(time.RFC3339Nano) }

func (s statusRecord) encode() map[string]any {
	m := map[string]any{
		statusFieldBasis:       s.basis,
		statusFieldState:       string(s.state),
		statusFieldAssumeFails: strconv.Itoa(s.assumeFails),
	}
	for f, t := range map[string]time.Time{statusFieldLastUsed: s.lastUsed, statusFieldLastSuccess: s.lastSuccess, statusFieldVerifiedAt: s.verifiedAt} {
		if !t.IsZero() {
			m[f] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	if s.err != nil {
		b, _ := json.Marshal(s.err) // strings and a time always marshal
		m[statusFieldError] = string(b)
	}
	return m
}

// decodeStatus reads a stored record; fields it cannot read are left zero
// (the status is advice for people, not worth failing a listing over).
func decodeStatus(m map[string]string) statusRecord {
	s := statusRecord{basis: m[statusFieldBasis], state: Status(m[statusFieldState])}
	s.lastUsed, _ = parseTime(m[statusFieldLastUsed])
	s.lastSuccess, _ = parseTime(m[statusFieldLastSuccess])
	s.verifiedAt, _ = parseTime(m[statusFieldVerifiedAt])
	s.assumeFails, _ = strconv.Atoi(m[statusFieldAssumeFails])
	if v := m[statusFieldError]; v != "" {
		var e StatusError
		if json.Unmarshal([]byte(v), &e) == nil {
			s.err = &e
		}
	}
	return s
}

// ErrStatusConflict means a status write kept colliding with others'
// writes; the next write carries the same information again.
var ErrStatusConflict = errors.New("credcache: integration status changed concurrently")

// applyStatus adds d to the customer's stored status in one optimistic
// transaction (WATCH on the status key, which shares the customer's slot
// with the integration record). Customers without an integration get no
// status: it is about an integration.
func (r *Registry) applyStatus(ctx context.Context, customerID string, d statusDelta) error {
	skey, ikey := statusKey(r.prefix, customerID), integrationKey(r.prefix, customerID)
	txf := func(tx *redis.Tx) error {
		var cur *redis.MapStringStringCmd
		var upd *redis.StringCmd
		if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			cur = p.HGetAll(ctx, skey)
			upd = p.HGet(ctx, ikey, fieldUpdatedAt)
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if errors.Is(upd.Err(), redis.Nil) {
			return nil
		}
		basis := upd.Val()
		if t, err := parseTime(basis); err == nil {
			basis = basisOf(t)
		}
		rec := decodeStatus(cur.Val())
		if rec.basis != basis {
			rec = statusRecord{basis: basis, lastUsed: rec.lastUsed}
		}
		rec = rec.apply(d)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, skey)
			p.HSet(ctx, skey, rec.encode())
			return nil
		})
		return err
	}
	for range 5 {
		err := r.rdb.Watch(ctx, txf, skey, ikey)
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil {
				r.metrics.redisError()
				return fmt.Errorf("credcache: status of %s: %w", customerID, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrStatusConflict, customerID)
}

// RecordVerification stores the result of `ferry integration verify` for the
// customer: nil failure makes the integration active, a failure makes it
// failing with that error. It is a no-op for a customer without an
// integration.
func (r *Registry) RecordVerification(ctx context.Context, customerID string, at time.Time, failure *StatusError) error {
	if err := ValidCustomerID(customerID); err != nil {
		return err
	}
	return r.applyStatus(ctx, customerID, statusDelta{verify: true, verifyOK: failure == nil, at: at.UTC(), err: failure})
}

// Status returns the status of in (an integration read from this registry).
func (r *Registry) Status(ctx context.Context, in Integration) (IntegrationStatus, error) {
	m, err := r.StatusOf(ctx, []Integration{in})
	if err != nil {
		return IntegrationStatus{}, err
	}
	return m[in.CustomerID], nil
}

// StatusOf returns the status of every integration in list, keyed by
// customer ID, in one pipelined round trip (split per node on a cluster).
func (r *Registry) StatusOf(ctx context.Context, list []Integration) (map[string]IntegrationStatus, error) {
	cmds := make([]*redis.MapStringStringCmd, len(list))
	if len(list) > 0 {
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, in := range list {
				cmds[i] = p.HGetAll(ctx, statusKey(r.prefix, in.CustomerID))
			}
			return nil
		})
		if err != nil {
			r.metrics.redisError()
			return nil, fmt.Errorf("credcache: read integration status: %w", err)
		}
	}
	out := make(map[string]IntegrationStatus, len(list))
	for i, in := range list {
		out[in.CustomerID] = decodeStatus(cmds[i].Val()).view(in.UpdatedAt)
	}
	return out, nil
}

// countStatuses counts every integration in the registry by status. It
// SCANs the keyspace and reads two small fields per customer, so it is for
// the periodic census (StatusCensus), never the task path.
func (r *Registry) countStatuses(ctx context.Context) (map[Status]int, error) {
	keys, err := redisconn.Keys(ctx, r.rdb, escapeGlob(r.prefix)+":{*}:integration")
	if err != nil {
		return nil, err
	}
	head, tail := r.prefix+":{", "}:integration"
	var ids []string
	for _, k := range keys {
		if id := strings.TrimSuffix(strings.TrimPrefix(k, head), tail); ValidCustomerID(id) == nil {
			ids = append(ids, id)
		}
	}
	counts := map[Status]int{}
	for _, s := range Statuses() {
		counts[s] = 0
	}
	// In batches, so a registry of many customers never builds one huge
	// pipeline.
	const batch = 500
	for len(ids) > 0 {
		n := min(batch, len(ids))
		chunk := ids[:n]
		ids = ids[n:]
		upd := make([]*redis.StringCmd, n)
		st := make([]*redis.MapStringStringCmd, n)
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				upd[i] = p.HGet(ctx, integrationKey(r.prefix, id), fieldUpdatedAt)
				st[i] = p.HGetAll(ctx, statusKey(r.prefix, id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		for i := range chunk {
			if upd[i].Err() != nil {
				continue // deleted between SCAN and the read
			}
			t, _ := parseTime(upd[i].Val())
			counts[decodeStatus(st[i].Val()).view(t).Status]++
		}
	}
	return counts, nil
}
