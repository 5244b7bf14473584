// Package demo is the world ferry's devstack serves and its end-to-end tests
// run against: the fleet's account, queues and internal bucket, and demo
// customers that cover every access path (delegated, cross-account, wrong
// external ID, no grant, bucket in another region), seeded into a localaws
// stack with the policy documents ferry itself prints to customers.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/localaws"
)

// The demo world is fixed so that a manifest, an env file and every demo or
// test written against them stay valid from one run to the next. Only the
// fleet's access keys change per run (localaws generates them).
const (
	FleetAccountID = "111111111111"
	DefaultRegion  = "us-east-1"
	TasksQueue     = "ferry-tasks"
	DLQ            = "ferry-tasks-dlq"
	EventsQueue    = "ferry-events"
	InternalBucket = "ferry-internal"
	// MaxReceiveCount is how many receives a task gets before SQS moves it
	// to the DLQ.
	MaxReceiveCount = 5
	TasksVisibility = 60 * time.Second
)

// Access modes as the manifest spells them.
const (
	AccessDelegated    = "delegated"
	AccessCrossAccount = "cross_account"
	AccessNone         = "none"
)

// Outcomes a demo task for the customer is meant to end with.
const (
	ExpectCompleted    = "completed"
	ExpectAccessDenied = "access_denied"
)

// CustomerSpec is one demo customer: the account and bucket they own, how
// they granted (or did not grant) the fleet access, and the outcome a task
// reading their bucket should have.
type CustomerSpec struct {
	ID        string
	AccountID string
	Bucket    string
	Region    string
	Access    string
	// ExternalID is the one ferry has on record for the customer.
	ExternalID string
	// TrustExternalID is what the customer's role trust policy demands; it
	// differs from ExternalID for a customer who set up their role wrongly.
	TrustExternalID string
	Expected        string
	Note            string
	// KMS, when set, encrypts the bucket by default (SSE-KMS) with a
	// customer managed key whose key policy grants the role kms:Decrypt
	// (KMSGrantRole) or only administers the key (KMSWithholdRole).
	KMS string
	// BucketOwner, when set, is another account that owns the bucket and
	// grants the customer's role in its bucket policy.
	BucketOwner   string
	RequesterPays bool
	// ObjectACLs leaves the bucket without a policy and grants the fleet
	// READ on each sample object with an object ACL; UngrantedKey is one
	// more object without such a grant.
	ObjectACLs bool
}

// Key policies of the SSE-KMS demo customers.
const (
	KMSGrantRole    = "grant-role"
	KMSWithholdRole = "withhold-role"
)

// UngrantedKey is the object of an ObjectACLs bucket that grants nothing.
const UngrantedKey = "private/no-grant.txt"

// Customers cover every access path of docs/architecture.md (Access
// modes): delegated OK, cross-account OK, wrong external ID, no grant at
// all, and a bucket in another region.
var Customers = []CustomerSpec{
	{
		ID: "acme", AccountID: "222222222222", Bucket: "acme-data", Region: DefaultRegion,
		Access: AccessDelegated, ExternalID: "ferry-dev-acme-7c1e0b52d9a4", TrustExternalID: "ferry-dev-acme-7c1e0b52d9a4",
		Expected: ExpectCompleted,
		Note:     "delegated: role ScaleAI-Integration trusts the fleet with this external ID and may read the bucket",
	},
	{
		ID: "globex", AccountID: "333333333333", Bucket: "globex-data", Region: DefaultRegion,
		Access: AccessCrossAccount, Expected: ExpectCompleted,
		Note: "cross-account: the bucket policy grants the fleet's account s3:GetObject",
	},
	{
		ID: "initech", AccountID: "444444444444", Bucket: "initech-data", Region: DefaultRegion,
		Access: AccessDelegated, ExternalID: "ferry-dev-initech-3f9a61c0e2b7", TrustExternalID: "ferry-dev-initech-typo-0000",
		Expected: ExpectAccessDenied,
		Note:     "delegated, but the role's trust policy expects a different external ID than the one ferry has on record: AssumeRole is refused",
	},
	{
		ID: "umbrella", AccountID: "555555555555", Bucket: "umbrella-data", Region: DefaultRegion,
		Access: AccessNone, Expected: ExpectAccessDenied,
		Note: "no integration and no bucket grant: every read is refused",
	},
	{
		ID: "hooli", AccountID: "666666666666", Bucket: "hooli-data-eu", Region: "eu-west-1",
		Access: AccessCrossAccount, Expected: ExpectCompleted,
		Note: "cross-account with a bucket policy, bucket in eu-west-1: a request signed for us-east-1 gets a 301 with x-amz-bucket-region",
	},
	{
		ID: "wayne", AccountID: "777777777777", Bucket: "wayne-data", Region: DefaultRegion,
		Access: AccessDelegated, ExternalID: "ferry-dev-wayne-5b2d8e0f6a13", TrustExternalID: "ferry-dev-wayne-5b2d8e0f6a13",
		Expected: ExpectCompleted, KMS: KMSGrantRole,
		Note: "delegated, bucket encrypted with SSE-KMS: the key policy grants the role kms:Decrypt",
	},
	{
		ID: "stark", AccountID: "888888888888", Bucket: "stark-data", Region: DefaultRegion,
		Access: AccessDelegated, ExternalID: "ferry-dev-stark-0e4c7a9b1d62", TrustExternalID: "ferry-dev-stark-0e4c7a9b1d62",
		Expected: ExpectAccessDenied, KMS: KMSWithholdRole,
		Note: "delegated, bucket encrypted with SSE-KMS, but neither the key policy nor the role's policy grants kms:Decrypt: S3 answers 403",
	},
	{
		ID: "tyrell", AccountID: "999999999999", Bucket: "tyrell-archive", Region: DefaultRegion,
		Access: AccessDelegated, ExternalID: "ferry-dev-tyrell-8d1f3c5e7a90", TrustExternalID: "ferry-dev-tyrell-8d1f3c5e7a90",
		Expected: ExpectCompleted, BucketOwner: "101010101010", RequesterPays: true,
		Note: "delegated, the bucket is a Requester Pays bucket of another account that grants the role: reads must carry x-amz-request-payer",
	},
	{
		ID: "cyberdyne", AccountID: "121212121212", Bucket: "cyberdyne-data", Region: DefaultRegion,
		Access: AccessCrossAccount, Expected: ExpectCompleted, ObjectACLs: true,
		Note: "cross-account without a bucket policy: each object's ACL grants the fleet's canonical user ID READ, except " + UngrantedKey,
	},
}

// SampleObject is an object every demo bucket holds.
type SampleObject struct {
	Key         string
	Size        int64
	ContentType string
}

// SampleObjects span a few KiB to a few MiB (more than one default part is
// not needed for demos; big-object runs belong in benchmarks) and include a
// key with spaces and non-ASCII characters, which URIs must escape.
var SampleObjects = []SampleObject{
	{"img/1.jpg", 5 * 1024, "image/jpeg"},
	{"docs/readme.txt", 3*1024 + 17, "text/plain"},
	{"reports/Q3 summary – café.pdf", 256 * 1024, "application/pdf"},
	{"data/export 2026/part-0001.bin", 2<<20 + 123, "application/octet-stream"},
}

// DevCacheKey is a fixed FERRY_CACHE_KEY so sealed credentials in a dev Redis
// stay readable across devstack restarts. It protects nothing.
func DevCacheKey() string {
	return base64.StdEncoding.EncodeToString(devKey())
}

// DevCacheKeys is DevCacheKey decoded, as credcache.Options.Keys takes it.
func DevCacheKeys() [][]byte { return [][]byte{devKey()} }

func devKey() []byte {
	k := sha256.Sum256([]byte("ferry devstack cache key v1"))
	return k[:]
}

// Manifest describes the seeded world for demos and tests. It holds the
// (dev-only) admin keys of every customer and spare account: keep it
// private to the user running the devstack.
type Manifest struct {
	FleetAccountID string `json:"fleet_account_id"`
	// FleetCanonicalUserID is the fleet account's S3 canonical user ID,
	// the grantee object ACLs name.
	FleetCanonicalUserID string             `json:"fleet_canonical_user_id"`
	Endpoint             string             `json:"endpoint"`
	Region               string             `json:"region"`
	InternalBucket       string             `json:"internal_bucket"`
	Queues               ManifestQueues     `json:"queues"`
	Customers            []ManifestCustomer `json:"customers"`
	// SpareAccounts are empty accounts to set an integration up from
	// nothing, as a new customer would.
	SpareAccounts []SpareAccount `json:"spare_accounts"`
}

// SpareAccount is an empty customer account with its admin (root) keys.
type SpareAccount struct {
	AccountID            string `json:"account_id"`
	AdminAccessKeyID     string `json:"admin_access_key_id"`
	AdminSecretAccessKey string `json:"admin_secret_access_key"`
}

// DefaultSpareAccounts is how many spare accounts Seed creates.
const DefaultSpareAccounts = 3

// SpareAccountID is the account ID of the i-th spare account (from 1).
func SpareAccountID(i int) string { return fmt.Sprintf("9%011d", i) }

// SeedOptions tunes Seed.
type SeedOptions struct {
	// SpareAccounts is how many empty accounts to create; negative means
	// none, zero DefaultSpareAccounts.
	SpareAccounts int
}

// ManifestQueues are the queue URLs as CreateQueue returned them.
type ManifestQueues struct {
	Tasks  string `json:"tasks"`
	DLQ    string `json:"dlq"`
	Events string `json:"events"`
}

// ManifestCustomer is one demo customer. ExternalID is the one ferry has on
// record, which for a misconfigured customer is not what their role expects.
type ManifestCustomer struct {
	ID         string   `json:"id"`
	AccountID  string   `json:"account_id"`
	Bucket     string   `json:"bucket"`
	Region     string   `json:"region"`
	Access     string   `json:"access"`
	RoleARN    string   `json:"role_arn,omitempty"`
	ExternalID string   `json:"external_id,omitempty"`
	Objects    []string `json:"objects"`
	// SHA256 and Sizes let end-to-end checks compare what ferry stored.
	SHA256 map[string]string `json:"sha256"`
	Sizes  map[string]int64  `json:"sizes"`
	// Integration is what the devstack registered in Redis for the customer
	// (enabled, account_registered or none); empty when it registered nothing.
	Integration string `json:"integration,omitempty"`
	Expected    string `json:"expected"`
	Note        string `json:"note"`
	// BucketOwner is the account owning the bucket when it is not the
	// customer's (the role reads it cross-account).
	BucketOwner string `json:"bucket_owner,omitempty"`
	// KMSKeyARN is the bucket's default SSE-KMS key.
	KMSKeyARN     string `json:"kms_key_arn,omitempty"`
	RequesterPays bool   `json:"requester_pays,omitempty"`
	// UngrantedObject is an object whose ACL grants the fleet nothing.
	UngrantedObject string `json:"ungranted_object,omitempty"`
	// AdminAccessKeyID and AdminSecretAccessKey are the account's root
	// keys (dev only): with them anyone can act as the customer, e.g. with
	// the aws CLI.
	AdminAccessKeyID     string `json:"admin_access_key_id"`
	AdminSecretAccessKey string `json:"admin_secret_access_key"`
}

// Customer returns the manifest entry for id, or false.
func (m Manifest) Customer(id string) (ManifestCustomer, bool) {
	for _, c := range m.Customers {
		if c.ID == id {
			return c, true
		}
	}
	return ManifestCustomer{}, false
}

// Seed creates the fleet, its queues and bucket, the demo customers and
// DefaultSpareAccounts spare accounts in stack, and returns the manifest
// and the environment a shell needs to talk to it as the fleet. redisURL is
// exported as FERRY_REDIS_URL.
func Seed(ctx context.Context, stack *localaws.Stack, redisURL string) (Manifest, Env, error) {
	return SeedWith(ctx, stack, redisURL, SeedOptions{})
}

// SeedWith is Seed with options.
func SeedWith(ctx context.Context, stack *localaws.Stack, redisURL string, o SeedOptions) (Manifest, Env, error) {
	fleet, err := stack.NewAccount(FleetAccountID)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("fleet account: %w", err)
	}
	m := Manifest{
		FleetAccountID:       fleet.ID,
		FleetCanonicalUserID: localaws.CanonicalUserID(fleet.ID),
		Endpoint:             stack.URL,
		Region:               DefaultRegion,
		InternalBucket:       InternalBucket,
	}
	spares := o.SpareAccounts
	if spares == 0 {
		spares = DefaultSpareAccounts
	}
	ids := make([]string, 0, max(spares, 0))
	for i := 1; i <= spares; i++ {
		ids = append(ids, SpareAccountID(i))
	}
	if m.SpareAccounts, err = NewSpareAccounts(stack, ids...); err != nil {
		return Manifest{}, nil, err
	}

	if m.Queues, err = SeedFleetResources(ctx, stack, fleet, ""); err != nil {
		return Manifest{}, nil, err
	}

	for _, spec := range Customers {
		mc, err := seedCustomer(ctx, stack, fleet.ID, spec)
		if err != nil {
			return Manifest{}, nil, fmt.Errorf("customer %s: %w", spec.ID, err)
		}
		m.Customers = append(m.Customers, mc)
	}

	return m, FleetEnv(stack.URL, fleet, m, redisURL), nil
}

// NewSpareAccounts registers an empty account for each id ("" picks a
// random one) and returns them with their admin keys.
func NewSpareAccounts(stack *localaws.Stack, ids ...string) ([]SpareAccount, error) {
	out := []SpareAccount{}
	for i, id := range ids {
		a, err := stack.NewAccount(id)
		if err != nil {
			return nil, fmt.Errorf("spare account %d: %w", i+1, err)
		}
		out = append(out, SpareAccount{AccountID: a.ID, AdminAccessKeyID: a.AccessKeyID, AdminSecretAccessKey: a.SecretAccessKey})
	}
	return out, nil
}

// SeedFleetResources creates the fleet's tasks queue (with its redrive
// policy), DLQ, events queue and internal bucket (with the lifecycle rule
// docs/architecture.md asks for), each name ending in suffix: "" for the
// demo world's own, another suffix for a second set beside it in the same
// stack (a test of its own on a shared world). It returns the queue URLs;
// the bucket is InternalBucket+suffix.
func SeedFleetResources(ctx context.Context, stack *localaws.Stack, fleet localaws.Account, suffix string) (ManifestQueues, error) {
	var q ManifestQueues
	var err error
	dlq, tasks, events, bucket := DLQ+suffix, TasksQueue+suffix, EventsQueue+suffix, InternalBucket+suffix
	// The DLQ must exist before the queue whose redrive policy names it.
	if q.DLQ, err = stack.CreateQueue(ctx, localaws.Queue{Name: dlq}); err != nil {
		return q, fmt.Errorf("queue %s: %w", dlq, err)
	}
	if q.Tasks, err = stack.CreateQueue(ctx, localaws.Queue{
		Name: tasks, VisibilityTimeout: TasksVisibility, DeadLetter: dlq, MaxReceiveCount: MaxReceiveCount,
	}); err != nil {
		return q, fmt.Errorf("queue %s: %w", tasks, err)
	}
	if q.Events, err = stack.CreateQueue(ctx, localaws.Queue{Name: events}); err != nil {
		return q, fmt.Errorf("queue %s: %w", events, err)
	}
	if err := stack.CreateBucket(ctx, localaws.Bucket{Name: bucket, Owner: fleet.ID, Region: DefaultRegion}); err != nil {
		return q, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	// The rule docs/architecture.md asks of a production internal bucket.
	// localaws stores it but never expires anything, so the abort of uploads
	// killed workers leave is still ferry's own to prove.
	if _, err := stack.S3Client(fleet, DefaultRegion).PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID: aws.String("abort-incomplete-mpu"), Status: s3types.ExpirationStatusEnabled, Filter: &s3types.LifecycleRuleFilter{},
			AbortIncompleteMultipartUpload: &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(7)},
		}}},
	}); err != nil {
		return q, fmt.Errorf("lifecycle rule of bucket %s: %w", bucket, err)
	}
	return q, nil
}

// FleetEnv is the environment a shell needs to talk to the stack at
// endpoint as the fleet: its keys, m's queues and internal bucket, and
// redisURL as FERRY_REDIS_URL.
func FleetEnv(endpoint string, fleet localaws.Account, m Manifest, redisURL string) Env {
	return Env{
		{"AWS_ENDPOINT_URL", endpoint},
		{"AWS_REGION", DefaultRegion},
		// The aws CLI v1 (botocore) reads only this one.
		{"AWS_DEFAULT_REGION", DefaultRegion},
		{"AWS_ACCESS_KEY_ID", fleet.AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", fleet.SecretAccessKey},
		{"FERRY_QUEUE_URL", m.Queues.Tasks},
		{"FERRY_EVENTS_QUEUE_URL", m.Queues.Events},
		{"FERRY_DLQ_URL", m.Queues.DLQ},
		{"FERRY_BUCKET", m.InternalBucket},
		{"FERRY_REDIS_URL", redisURL},
		{"FERRY_CACHE_KEY", DevCacheKey()},
		// An rclone remote named "devstack" signing as the fleet, so rclone works
		// from the same environment as every other tool: rclone lsf devstack:BUCKET.
		{"RCLONE_CONFIG_DEVSTACK_TYPE", "s3"},
		{"RCLONE_CONFIG_DEVSTACK_PROVIDER", "Other"},
		{"RCLONE_CONFIG_DEVSTACK_ENV_AUTH", "true"},
		{"RCLONE_CONFIG_DEVSTACK_ENDPOINT", endpoint},
		{"RCLONE_CONFIG_DEVSTACK_REGION", DefaultRegion},
		{"RCLONE_CONFIG_DEVSTACK_FORCE_PATH_STYLE", "true"},
	}
}

func seedCustomer(ctx context.Context, stack *localaws.Stack, fleetID string, spec CustomerSpec) (ManifestCustomer, error) {
	admin, err := stack.NewAccount(spec.AccountID)
	if err != nil {
		return ManifestCustomer{}, fmt.Errorf("account: %w", err)
	}
	mc := ManifestCustomer{
		ID: spec.ID, AccountID: spec.AccountID, Bucket: spec.Bucket, Region: spec.Region,
		Access: spec.Access, ExternalID: spec.ExternalID, Expected: spec.Expected, Note: spec.Note,
		SHA256: map[string]string{}, Sizes: map[string]int64{},
		AdminAccessKeyID: admin.AccessKeyID, AdminSecretAccessKey: admin.SecretAccessKey,
	}
	owner := spec.AccountID
	if spec.BucketOwner != "" {
		if _, err := stack.NewAccount(spec.BucketOwner); err != nil {
			return ManifestCustomer{}, fmt.Errorf("bucket owner account: %w", err)
		}
		owner, mc.BucketOwner = spec.BucketOwner, spec.BucketOwner
	}
	roleARN := localaws.RoleARN(spec.AccountID, credcache.DefaultRoleName)
	b := localaws.Bucket{Name: spec.Bucket, Owner: owner, Region: spec.Region, RequesterPays: spec.RequesterPays}
	mc.RequesterPays = spec.RequesterPays
	switch {
	case spec.Access == AccessCrossAccount && !spec.ObjectACLs:
		b.Policy = credcache.BucketPolicy(spec.Bucket, fleetID)
	case spec.BucketOwner != "":
		b.Policy = `{"Version":"2012-10-17","Statement":[{"Sid":"customer-role-read","Effect":"Allow","Principal":{"AWS":"` + roleARN +
			`"},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::` + spec.Bucket + `","arn:aws:s3:::` + spec.Bucket + `/*"]}]}`
	}
	if spec.ObjectACLs {
		b.ObjectOwnership = localaws.OwnershipObjectWriter
	}
	if spec.KMS != "" {
		key, err := stack.CreateKMSKey(owner, spec.Region, keyPolicy(owner, roleARN, spec.KMS == KMSGrantRole))
		if err != nil {
			return ManifestCustomer{}, fmt.Errorf("kms key: %w", err)
		}
		b.KMSKeyARN, mc.KMSKeyARN = key.ARN, key.ARN
	}
	if err := stack.CreateBucket(ctx, b); err != nil {
		return ManifestCustomer{}, fmt.Errorf("bucket %s: %w", spec.Bucket, err)
	}
	if spec.Access == AccessDelegated {
		arn, err := stack.PutRole(localaws.Role{
			AccountID:   spec.AccountID,
			Name:        credcache.DefaultRoleName,
			TrustPolicy: credcache.TrustPolicy(fleetID, spec.TrustExternalID),
			Policies:    []string{credcache.RolePolicy(spec.Bucket)},
		})
		if err != nil {
			return ManifestCustomer{}, fmt.Errorf("role: %w", err)
		}
		mc.RoleARN = arn
	}
	for _, o := range SampleObjects {
		sum, err := putSample(ctx, stack, spec.Bucket, o)
		if err != nil {
			return ManifestCustomer{}, fmt.Errorf("object %q: %w", o.Key, err)
		}
		mc.Objects = append(mc.Objects, o.Key)
		mc.SHA256[o.Key] = sum
		mc.Sizes[o.Key] = o.Size
		if spec.ObjectACLs {
			if err := stack.GrantObjectRead(ctx, spec.Bucket, o.Key, fleetID); err != nil {
				return ManifestCustomer{}, err
			}
		}
	}
	if spec.ObjectACLs {
		o := SampleObject{Key: UngrantedKey, Size: 1024, ContentType: "text/plain"}
		if _, err := putSample(ctx, stack, spec.Bucket, o); err != nil {
			return ManifestCustomer{}, fmt.Errorf("object %q: %w", o.Key, err)
		}
		mc.UngrantedObject = o.Key
	}
	return mc, nil
}

// keyPolicy is a demo key's policy: the owner's root administers the key
// without being able to use it (so IAM policies cannot grant use either),
// and the role may decrypt when grant is set.
func keyPolicy(owner, roleARN string, grant bool) string {
	p := `{"Version":"2012-10-17","Statement":[{"Sid":"key-admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + owner +
		`:root"},"Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],"Resource":"*"}`
	if grant {
		p += `,{"Sid":"ferry-role-decrypt","Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":"kms:Decrypt","Resource":"*"}`
	}
	return p + `]}`
}

// putSample streams the object's deterministic content into the bucket and
// returns its hex SHA-256.
func putSample(ctx context.Context, stack *localaws.Stack, bucket string, o SampleObject) (string, error) {
	h := sha256.New()
	body := io.TeeReader(SampleContent(bucket, o.Key, o.Size), h)
	if err := stack.PutObject(ctx, bucket, o.Key, body, o.Size, o.ContentType); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SampleContent is size pseudo-random bytes determined by bucket and key, so
// every run seeds identical objects with identical checksums.
func SampleContent(bucket, key string, size int64) io.Reader {
	Seed := sha256.Sum256([]byte(bucket + "/" + key))
	return io.LimitReader(rand.NewChaCha8(Seed), size)
}

// EnvVar is one exported shell variable.
type EnvVar struct {
	Name  string
	Value string
}

// Env is the ordered set of variables a shell needs to use the devstack.
type Env []EnvVar

// Lookup returns the value of name, or "".
func (e Env) Lookup(name string) string {
	for _, v := range e {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

// WithCABundle returns e with the variables that make clients trust the CA
// certificate at path: AWS_CA_BUNDLE (the AWS SDKs, the aws CLI, boto3,
// ferry) and RCLONE_CA_CERT (rclone's --ca-cert). path must be absolute so
// the lines work from any directory.
func (e Env) WithCABundle(path string) Env {
	out := make(Env, 0, len(e)+2)
	for _, v := range e {
		if v.Name != "AWS_CA_BUNDLE" && v.Name != "RCLONE_CA_CERT" {
			out = append(out, v)
		}
	}
	return append(out, EnvVar{"AWS_CA_BUNDLE", path}, EnvVar{"RCLONE_CA_CERT", path})
}

// Script renders the variables as lines a POSIX shell can source. It first
// unsets the AWS variables that would otherwise override or spoil the
// devstack's static keys (a session token or profile from the caller's
// shell, a per-service endpoint pointing elsewhere).
func (e Env) Script() string {
	var b strings.Builder
	b.WriteString("unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_STS\n")
	for _, v := range e {
		fmt.Fprintf(&b, "export %s=%s\n", v.Name, shellQuote(v.Value))
	}
	// The aws CLI v1 sends `aws sqs` in us-east-1 to its legacy endpoint
	// (queue.amazonaws.com) whatever AWS_ENDPOINT_URL says, unless
	// --endpoint-url is given; the function gives it.
	b.WriteString(`aws() { if [ "${1:-}" = sqs ]; then command aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; else command aws "$@"; fi; }` + "\n")
	// rclone's S3 backend (aws-sdk-go v1) refuses to start while
	// AWS_CA_BUNDLE is set: it cannot apply it to rclone's own transport.
	// It trusts the CA through RCLONE_CA_CERT instead.
	b.WriteString(`rclone() { AWS_CA_BUNDLE= command rclone "$@"; }` + "\n")
	return b.String()
}

// shellQuote wraps s in single quotes, the one quoting in which a POSIX shell
// expands nothing.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ParseEnvScript reads back the export lines Script writes.
func ParseEnvScript(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		name, quoted, ok := strings.Cut(rest, "=")
		if !ok || len(quoted) < 2 || quoted[0] != '\'' || quoted[len(quoted)-1] != '\'' {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		out[name] = strings.ReplaceAll(quoted[1:len(quoted)-1], `'\''`, "'")
	}
	return out, nil
}

// How ferry knows a demo customer, as the manifest's "integration" says.
const (
	IntegrationEnabled           = "enabled"            // delegated: ferry assumes the role
	IntegrationAccountRegistered = "account_registered" // cross-account with ExpectedBucketOwner
	IntegrationNone              = "none"
)

// integrationFor is the registry record each demo customer gets: delegated
// customers an enabled integration with the external ID ferry has on record,
// cross-account customers their registered account ID (so reads carry
// ExpectedBucketOwner), and customers with no grant nothing at all.
func integrationFor(c ManifestCustomer) string {
	switch c.Access {
	case AccessDelegated:
		return IntegrationEnabled
	case AccessCrossAccount:
		return IntegrationAccountRegistered
	}
	return IntegrationNone
}

// RegisterIntegrations writes the demo customers' integrations into Redis
// through credcache's own registry, sealed with the dev cache key, so a
// `ferry work` started with the exported environment treats each customer as
// the manifest says without any `ferry integration` step. Records are
// idempotent: a restart writes the same values again.
func RegisterIntegrations(ctx context.Context, rdb redis.UniversalClient, prefix string, m *Manifest) error {
	reg, err := credcache.NewRegistry(credcache.Options{Redis: rdb, Prefix: prefix, Keys: DevCacheKeys()})
	if err != nil {
		return err
	}
	for i := range m.Customers {
		c := &m.Customers[i]
		c.Integration = integrationFor(*c)
		switch c.Integration {
		case IntegrationEnabled:
			_, err = reg.Enable(ctx, c.ID, c.AccountID, c.ExternalID)
		case IntegrationAccountRegistered:
			_, err = reg.RegisterAccount(ctx, c.ID, c.AccountID)
		default:
			err = nil
		}
		if err != nil {
			return fmt.Errorf("register %s: %w", c.ID, err)
		}
	}
	return nil
}
