// Package localaws is the AWS that ferry's tests and devstack talk to: kumo
// (an in-process AWS emulator) behind an IAM gate that verifies SigV4
// signatures, answers STS itself, and authorises S3 calls with real IAM
// policy documents, the way AWS does. Product packages never import it.
package localaws

import (
	"context"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Options configures a Stack. The zero value listens on a free loopback port
// with us-east-1 as the default region.
type Options struct {
	// Addr is the listen address of the gate, e.g. "127.0.0.1:4566"; empty
	// means "127.0.0.1:0".
	Addr string
	// Region is the region buckets are created in when Bucket.Region is empty
	// and the region STS signs for. Default "us-east-1".
	Region string
}

// Stack is kumo behind the IAM gate, serving S3, SQS and STS on one endpoint.
type Stack struct {
	// URL is the gate's base URL, "http://127.0.0.1:PORT"; use it as the
	// SDK's BaseEndpoint (AWS_ENDPOINT_URL).
	URL string
}

// Start starts kumo and the gate in front of it.
func Start(opts Options) (*Stack, error) { panic("unimplemented") }

// Close stops the gate and kumo.
func (s *Stack) Close() error { panic("unimplemented") }

// Account is an AWS account known to the gate with one long-term access key;
// its principal is arn:aws:iam::ID:root.
type Account struct {
	ID              string
	AccessKeyID     string
	SecretAccessKey string
}

// NewAccount registers an account with a fresh long-term key pair. An empty
// id generates a random 12-digit account ID. Registering an existing id
// returns a new key for the same account.
func (s *Stack) NewAccount(id string) (Account, error) { panic("unimplemented") }

// Config returns an aws.Config that signs as acct and sends every service to
// the gate (BaseEndpoint = URL) in region.
func (s *Stack) Config(acct Account, region string) aws.Config { panic("unimplemented") }

// Role is an IAM role: a trust policy saying who may assume it and the
// permission policies the assumed sessions carry (IAM policy JSON text).
type Role struct {
	AccountID   string
	Name        string
	TrustPolicy string
	Policies    []string
	// MaxSessionDuration bounds AssumeRole's DurationSeconds; default 1h.
	MaxSessionDuration time.Duration
}

// PutRole creates or replaces a role and returns its ARN. Invalid policy JSON
// is an error.
func (s *Stack) PutRole(r Role) (string, error) { panic("unimplemented") }

// Bucket is an S3 bucket with its owner account, region and optional bucket
// policy (JSON text). Bucket names are one global namespace.
type Bucket struct {
	Name   string
	Owner  string // account ID
	Region string // default Options.Region
	Policy string
}

// CreateBucket creates the bucket in kumo and records its owner, region and
// policy in the gate.
func (s *Stack) CreateBucket(ctx context.Context, b Bucket) error { panic("unimplemented") }

// SetBucketPolicy replaces a bucket's policy; "" removes it.
func (s *Stack) SetBucketPolicy(bucket, policy string) error { panic("unimplemented") }

// PutObject stores an object as the bucket's owner, bypassing authorisation.
func (s *Stack) PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, contentType string) error {
	panic("unimplemented")
}

// Queue describes an SQS queue. DeadLetter names an existing queue to redrive
// to after MaxReceiveCount receives.
type Queue struct {
	Name              string
	FIFO              bool
	VisibilityTimeout time.Duration
	DeadLetter        string
	MaxReceiveCount   int
}

// CreateQueue creates the queue (and its redrive policy) and returns its URL.
func (s *Stack) CreateQueue(ctx context.Context, q Queue) (string, error) { panic("unimplemented") }

// Fault is an injected failure for one operation ("s3:GetObject",
// "sqs:ReceiveMessage", "sts:AssumeRole", …; "*" matches every operation).
// A fault applies Count times (0 = until cleared), each time with
// Probability (0 = always). Status/Code answer with an AWS error; LatencyMS
// delays the call before it proceeds; Drop closes the connection unanswered.
type Fault struct {
	Operation   string  `json:"operation"`
	Status      int     `json:"status,omitempty"`
	Code        string  `json:"code,omitempty"`
	Message     string  `json:"message,omitempty"`
	Count       int     `json:"count,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	LatencyMS   int     `json:"latency_ms,omitempty"`
	Drop        bool    `json:"drop,omitempty"`
}

// InjectFault adds a fault; it applies from the next matching call on.
func (s *Stack) InjectFault(f Fault) error { panic("unimplemented") }

// ClearFaults removes every fault.
func (s *Stack) ClearFaults() { panic("unimplemented") }

// Stats returns call counts per operation and outcome ("ok", "denied",
// "error", "fault", "not_found", "redirect"), e.g.
// {"sts:AssumeRole":{"ok":3,"denied":1}}.
func (s *Stack) Stats() map[string]map[string]int64 { panic("unimplemented") }

// ResetStats zeroes the counters.
func (s *Stack) ResetStats() { panic("unimplemented") }

