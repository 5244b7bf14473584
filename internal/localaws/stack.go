// Package localaws is the AWS that ferry's tests and devstack talk to: kumo
// (an in-process AWS emulator) behind an IAM gate that verifies SigV4
// signatures, answers STS itself, and authorises S3 calls with real IAM
// policy documents, the way AWS does. Product packages never import it.
package localaws

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/awsclient"
	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
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
	// Now is the gate's clock for credential expiry and presigned-URL
	// expiry; nil means time.Now. Tests move it forward to expire
	// credentials without waiting.
	Now func() time.Time
	// IAMDelay is how long a role created or changed through the IAM API
	// takes to reach STS and S3, as IAM's eventual consistency does in AWS:
	// until then they see the previous version (no role, for a new one).
	// Zero applies changes from the next request on.
	IAMDelay time.Duration
	// Logger receives the gate's decisions (denials, faults) at debug level
	// and its failures at warn; nil discards them. Credentials, tokens and
	// external IDs are never logged.
	Logger *zerolog.Logger
	// TLS serves https, the way clients reach AWS in production, with a
	// certificate from a CA generated at start (see CAPEM). Over https the
	// SDKs send S3 bodies aws-chunked with trailing checksums.
	TLS bool
}

// Stack is kumo behind the IAM gate, serving S3, SQS and STS on one endpoint.
type Stack struct {
	// URL is the gate's base URL, "http://127.0.0.1:PORT" (https with
	// Options.TLS); use it as the SDK's BaseEndpoint (AWS_ENDPOINT_URL).
	URL string
	// KumoURL is kumo's own endpoint, behind the gate. Requests sent there
	// bypass every check; it exists for benchmarks and diagnosis.
	KumoURL string

	opts   Options
	log    zerolog.Logger
	kumo   *kumoBackend
	ln     net.Listener
	srv    *http.Server
	proxy  *httputil.ReverseProxy
	target *url.URL
	direct *http.Client // to kumo, for the setup helpers
	tls    *tlsMaterial // nil over plain http
	admin  *http.Client // to the gate, see HTTPClient

	mu       sync.RWMutex
	accounts map[string]bool
	keys     map[string]*accessKey
	roles    map[string]*roleInfo // newest version by role ARN
	policies map[string]*managedPolicy
	kmsKeys  map[string]*kmsKey    // by key ARN
	acls     map[string][]aclGrant // object ACL grants by aclKey, beyond the owner's
	// objectSSE records each object's encryption (by aclKey), which reads
	// are authorised against.
	objectSSE map[string]objectSSE
	// objectChecksums records the full-object checksum a single PutObject
	// carried (by aclKey), which S3 stores with the object.
	objectChecksums map[string]objectChecksum
	buckets         map[string]*bucketInfo

	faults faultSet
	topics topicOwners // SNS topics created through the gate
	stats  statSet
	// inflight counts requests in progress per operation.
	inflight inflightSet
	fifo     fifoIDs

	closeOnce sync.Once
	closeErr  error
}

// accessKey is a long-term or temporary key the gate issued.
type accessKey struct {
	id           string
	secret       string
	account      string
	arn          string // principal ARN
	roleARN      string // "" for a root key
	userID       string // GetCallerIdentity's UserId
	sessionToken string // "" for long-term keys
	expires      time.Time
}

func (k *accessKey) principal() iampolicy.Principal {
	return iampolicy.Principal{ARN: k.arn, Account: k.account, RoleARN: k.roleARN}
}

type bucketInfo struct {
	owner      string
	region     string
	created    time.Time
	policyText string
	policy     *iampolicy.Policy
	// ownership is the Object Ownership setting; BucketOwnerEnforced
	// disables ACLs.
	ownership     string
	requesterPays bool
	// sseAlgorithm and sseKeyARN are the default encryption ("" = S3's
	// own AES256; "aws:kms" with the key's ARN, or "" for aws/s3).
	sseAlgorithm string
	sseKeyARN    string
}

// Start starts kumo and the gate in front of it.
func Start(opts Options) (*Stack, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Stack{
		opts:            opts,
		log:             zerolog.Nop(),
		accounts:        map[string]bool{},
		keys:            map[string]*accessKey{},
		roles:           map[string]*roleInfo{},
		policies:        map[string]*managedPolicy{},
		kmsKeys:         map[string]*kmsKey{},
		acls:            map[string][]aclGrant{},
		objectSSE:       map[string]objectSSE{},
		objectChecksums: map[string]objectChecksum{},
		buckets:         map[string]*bucketInfo{},
	}
	if opts.Logger != nil {
		s.log = opts.Logger.With().Str("component", "localaws").Logger()
	}
	s.stats.init()
	var err error
	if s.kumo, err = startKumoProcess(); err != nil {
		return nil, err
	}
	s.KumoURL = s.kumo.URL
	if s.target, err = url.Parse(s.kumo.URL); err != nil {
		_ = s.kumo.close()
		return nil, fmt.Errorf("kumo url: %w", err)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// Object bodies are copied with 256 KiB buffers instead of 4 KiB.
		WriteBufferSize: 256 << 10,
		ReadBufferSize:  256 << 10,
	}
	s.direct = &http.Client{Transport: tr}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(s.target)
			// The client's address means nothing to kumo.
			pr.Out.Header.Del("X-Forwarded-For")
		},
		Transport:      longPollTransport{tr},
		FlushInterval:  -1,
		BufferPool:     proxyBufferPool{},
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.proxyError,
	}
	if opts.TLS {
		host, _, _ := net.SplitHostPort(opts.Addr)
		if s.tls, err = newTLSMaterial(host, opts.Now()); err != nil {
			_ = s.kumo.close()
			return nil, err
		}
	}
	if s.ln, err = net.Listen("tcp", opts.Addr); err != nil {
		_ = s.kumo.close()
		return nil, fmt.Errorf("listen %s: %w", opts.Addr, err)
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second,
		// A client that does not trust the CA fails its handshake; that
		// is the client's error to report, not the server's to print.
		ErrorLog: log.New(debugWriter{s.log}, "", 0)}
	s.URL = "http://" + s.ln.Addr().String()
	if s.tls != nil {
		s.URL = "https://" + s.ln.Addr().String()
		s.srv.TLSConfig = s.tls.serverConfig()
		s.ln = tls.NewListener(s.ln, s.srv.TLSConfig)
	}
	atr := http.DefaultTransport.(*http.Transport).Clone()
	atr.Proxy = nil
	s.clientTLS(atr)
	s.admin = &http.Client{Transport: atr, Timeout: time.Minute}
	go func() { _ = s.srv.Serve(s.ln) }()
	return s, nil
}

// Close stops the gate and kumo.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = s.srv.Close()
		}
		s.direct.CloseIdleConnections()
		s.admin.CloseIdleConnections()
		s.closeErr = errors.Join(err, s.kumo.close())
	})
	return s.closeErr
}

// Account is an AWS account known to the gate with one long-term access key;
// its principal is arn:aws:iam::ID:root.
type Account struct {
	ID              string
	AccessKeyID     string
	SecretAccessKey string
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// NewAccount registers an account with a fresh long-term key pair. An empty
// id generates a random 12-digit account ID. Registering an existing id
// returns a new key for the same account.
func (s *Stack) NewAccount(id string) (Account, error) {
	if id == "" {
		id = randomDigits(12)
	}
	if !accountIDPattern.MatchString(id) {
		return Account{}, fmt.Errorf("account id %q is not 12 digits", id)
	}
	k := &accessKey{
		id:      "AKIA" + randomUpper(16),
		secret:  randomSecret(40),
		account: id,
		arn:     "arn:aws:iam::" + id + ":root",
		userID:  id,
	}
	s.mu.Lock()
	s.accounts[id] = true
	s.keys[k.id] = k
	s.mu.Unlock()
	return Account{ID: id, AccessKeyID: k.id, SecretAccessKey: k.secret}, nil
}

// Config returns an aws.Config that signs as acct and sends every service to
// the gate (BaseEndpoint = URL) in region. S3 clients made from it must set
// UsePathStyle (see S3Client); the SDK's default retryer applies.
func (s *Stack) Config(acct Account, region string) aws.Config {
	if region == "" {
		region = s.opts.Region
	}
	return s.configFor(credentials.NewStaticCredentialsProvider(acct.AccessKeyID, acct.SecretAccessKey, ""), region)
}

func (s *Stack) configFor(creds aws.CredentialsProvider, region string) aws.Config {
	hc := awsclient.New(func(tr *http.Transport) {
		tr.MaxIdleConns = 512
		tr.MaxIdleConnsPerHost = 256
		s.clientTLS(tr)
		if tr.DialContext == nil {
			tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		}
		tr.DialContext = s.dialLocalhostNames(tr.DialContext)
	})
	return aws.Config{
		Region:       region,
		Credentials:  aws.NewCredentialsCache(creds),
		BaseEndpoint: aws.String(s.URL),
		HTTPClient:   hc,
		// What config.LoadDefaultConfig (and so ferry) uses: a CRC32 on
		// every upload, sent as a trailer of an aws-chunked body over https.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
}

// S3Client returns a path-style S3 client signing as acct in region, the
// way ferry's own clients must be configured against a custom endpoint.
func (s *Stack) S3Client(acct Account, region string) *s3.Client {
	return s3.NewFromConfig(s.Config(acct, region), func(o *s3.Options) { o.UsePathStyle = true })
}

// SQSClient returns an SQS client signing as acct in region.
func (s *Stack) SQSClient(acct Account, region string) *sqs.Client {
	return sqs.NewFromConfig(s.Config(acct, region))
}

// STSClient returns an STS client signing as acct in region.
func (s *Stack) STSClient(acct Account, region string) *sts.Client {
	return sts.NewFromConfig(s.Config(acct, region))
}

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

var roleNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// RoleARN is the ARN of role name in account.
func RoleARN(account, name string) string {
	return "arn:aws:iam::" + account + ":role/" + name
}

// PutRole creates or replaces a role (its policies become inline policies
// named policy-1, policy-2, …) and returns its ARN. Invalid policy JSON is
// an error. It takes effect at once, whatever Options.IAMDelay says:
// sessions already issued for the role see the new policies from their next
// request on.
func (s *Stack) PutRole(r Role) (string, error) {
	if !accountIDPattern.MatchString(r.AccountID) {
		return "", fmt.Errorf("role %q: account id %q is not 12 digits", r.Name, r.AccountID)
	}
	if !roleNamePattern.MatchString(r.Name) {
		return "", fmt.Errorf("role name %q is not a valid IAM role name", r.Name)
	}
	trust, err := iampolicy.Parse(r.TrustPolicy)
	if err != nil {
		return "", fmt.Errorf("role %s trust policy: %w", r.Name, err)
	}
	ri := &roleInfo{arn: RoleARN(r.AccountID, r.Name), account: r.AccountID, name: r.Name, path: "/",
		created: s.opts.Now().UTC().Truncate(time.Second), maxSession: r.MaxSessionDuration,
		trustText: r.TrustPolicy, trust: trust}
	for i, text := range r.Policies {
		p, err := iampolicy.Parse(text)
		if err != nil {
			return "", fmt.Errorf("role %s policy %d: %w", r.Name, i, err)
		}
		ri.inline = append(ri.inline, inlinePolicy{name: "policy-" + strconv.Itoa(i+1), text: text, doc: p})
	}
	if ri.maxSession == 0 {
		ri.maxSession = time.Hour
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.latestRoleLocked(ri.arn); old != nil {
		ri.id, ri.created = old.id, old.created
	} else {
		ri.id = "AROA" + randomUpper(17)
	}
	s.putRoleVersionLocked(ri, false)
	return ri.arn, nil
}

// Bucket is an S3 bucket with its owner account, region and optional bucket
// policy (JSON text). Bucket names are one global namespace.
type Bucket struct {
	Name   string
	Owner  string // account ID
	Region string // default Options.Region
	Policy string
	// ObjectOwnership is the bucket's Object Ownership; "" is S3's default
	// for new buckets, BucketOwnerEnforced (ACLs disabled).
	ObjectOwnership string
	// RequesterPays makes requests from other accounts carry
	// x-amz-request-payer: requester.
	RequesterPays bool
	// KMSKeyARN, when set, is the bucket's default encryption key
	// (SSE-KMS); objects put afterwards are encrypted with it.
	KMSKeyARN string
}

// CreateBucket creates the bucket in kumo and records its owner, region and
// policy in the gate. A name already taken is an error, as in S3.
func (s *Stack) CreateBucket(ctx context.Context, b Bucket) error {
	if b.Region == "" {
		b.Region = s.opts.Region
	}
	if b.ObjectOwnership == "" {
		b.ObjectOwnership = OwnershipBucketOwnerEnforced
	}
	bi := &bucketInfo{owner: b.Owner, region: b.Region, created: s.opts.Now(), ownership: b.ObjectOwnership,
		requesterPays: b.RequesterPays}
	if b.KMSKeyARN != "" {
		bi.sseAlgorithm, bi.sseKeyARN = "aws:kms", b.KMSKeyARN
	}
	if b.Policy != "" {
		p, err := iampolicy.Parse(b.Policy)
		if err != nil {
			return fmt.Errorf("bucket %s policy: %w", b.Name, err)
		}
		bi.policy, bi.policyText = p, b.Policy
	}
	s.mu.Lock()
	if !s.accounts[b.Owner] {
		s.mu.Unlock()
		return fmt.Errorf("bucket %s: owner %q is not an account of this stack", b.Name, b.Owner)
	}
	if _, ok := s.buckets[b.Name]; ok {
		s.mu.Unlock()
		return fmt.Errorf("bucket %s: %w", b.Name, ErrBucketExists)
	}
	s.buckets[b.Name] = bi
	s.mu.Unlock()
	if err := s.kumoDo(ctx, http.MethodPut, "/"+b.Name, nil, -1, ""); err != nil {
		s.mu.Lock()
		delete(s.buckets, b.Name)
		s.mu.Unlock()
		return fmt.Errorf("create bucket %s in kumo: %w", b.Name, err)
	}
	return nil
}

// ErrBucketExists is returned (wrapped) by CreateBucket for a name that is
// already taken; bucket names are global, as in S3.
var ErrBucketExists = errors.New("bucket already exists")

// ErrNoSuchBucket is returned (wrapped) by helpers given a bucket the stack
// does not know.
var ErrNoSuchBucket = errors.New("no such bucket")

// SetBucketPolicy replaces a bucket's policy; "" removes it. It takes effect
// from the next request on.
func (s *Stack) SetBucketPolicy(bucket, policy string) error {
	var p *iampolicy.Policy
	if policy != "" {
		var err error
		if p, err = iampolicy.Parse(policy); err != nil {
			return fmt.Errorf("bucket %s policy: %w", bucket, err)
		}
	}
	return s.updateBucket(bucket, "set policy", func(b *bucketInfo) error {
		b.policy, b.policyText = p, policy
		return nil
	})
}

// updateBucket changes bucket's record. A record is never changed in place
// (a request keeps the pointer it read under s.mu while it runs), so f
// changes a copy, which replaces the record unless f fails. Errors say
// "what of bucket"; an unknown bucket's wraps ErrNoSuchBucket.
func (s *Stack) updateBucket(bucket, what string, f func(b *bucketInfo) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bi, ok := s.buckets[bucket]
	if !ok {
		return fmt.Errorf("%s of %s: %w", what, bucket, ErrNoSuchBucket)
	}
	nb := *bi
	if err := f(&nb); err != nil {
		return fmt.Errorf("%s of %s: %w", what, bucket, err)
	}
	s.buckets[bucket] = &nb
	return nil
}

// PutObject stores an object as the bucket's owner, bypassing authorisation.
// A bucket with SSE-KMS default encryption stores it encrypted with its key.
func (s *Stack) PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, contentType string) error {
	s.mu.RLock()
	b, ok := s.buckets[bucket]
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, ErrNoSuchBucket)
	}
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if b.sseAlgorithm == "aws:kms" {
		h.Set("X-Amz-Server-Side-Encryption", "aws:kms")
		if b.sseKeyARN != "" {
			h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", b.sseKeyARN)
		}
	}
	p := (&url.URL{Path: "/" + bucket + "/" + key}).EscapedPath()
	if err := s.kumoDoHeader(ctx, http.MethodPut, p, body, size, h); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	s.mu.Lock()
	delete(s.acls, aclKey(bucket, key))
	if b.sseAlgorithm == "aws:kms" {
		s.objectSSE[aclKey(bucket, key)] = objectSSE{alg: "aws:kms", keyARN: b.sseKeyARN}
	} else {
		delete(s.objectSSE, aclKey(bucket, key))
	}
	s.mu.Unlock()
	return nil
}

// GrantObjectRead adds an ACL grant of READ on an existing object to
// account's canonical user ID, as `put-object-acl --grant-read id=…` does.
// It fails where S3 would: on a bucket whose ACLs are disabled
// (BucketOwnerEnforced).
func (s *Stack) GrantObjectRead(ctx context.Context, bucket, key, account string) error {
	s.mu.RLock()
	b, ok := s.buckets[bucket]
	s.mu.RUnlock()
	switch {
	case !ok:
		return fmt.Errorf("grant read on s3://%s/%s: %w", bucket, key, ErrNoSuchBucket)
	case b.ownership == OwnershipBucketOwnerEnforced:
		return fmt.Errorf("grant read on s3://%s/%s: the bucket's Object Ownership is BucketOwnerEnforced, which disables ACLs", bucket, key)
	case !s.kumoObjectExists(ctx, bucket, key):
		return fmt.Errorf("grant read on s3://%s/%s: no such object", bucket, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := aclKey(bucket, key)
	s.acls[k] = append(s.acls[k], aclGrant{id: CanonicalUserID(account), permission: "READ"})
	return nil
}

// SetObjectOwnership changes a bucket's Object Ownership, as
// PutBucketOwnershipControls does; existing ACLs stay recorded but grant
// nothing while it is BucketOwnerEnforced.
func (s *Stack) SetObjectOwnership(bucket, ownership string) error {
	switch ownership {
	case OwnershipBucketOwnerEnforced, OwnershipBucketOwnerPreferred, OwnershipObjectWriter:
	default:
		return fmt.Errorf("object ownership %q is not BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter", ownership)
	}
	return s.updateBucket(bucket, "set object ownership", func(b *bucketInfo) error {
		b.ownership = ownership
		return nil
	})
}

// kumoDo sends an unsigned S3 request straight to kumo (kumo does not check
// signatures); the setup helpers use it to bypass the gate.
func (s *Stack) kumoDo(ctx context.Context, method, path string, body io.Reader, size int64, contentType string) error {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return s.kumoDoHeader(ctx, method, path, body, size, h)
}

func (s *Stack) kumoDoHeader(ctx context.Context, method, path string, body io.Reader, size int64, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, method, s.kumo.URL+path, body)
	if err != nil {
		return err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := s.direct.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("kumo answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
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

// defaultMaxReceiveCount applies when Queue.DeadLetter is set without a count.
const defaultMaxReceiveCount = 5

// CreateQueue creates the queue (and its redrive policy) and returns its URL.
// A FIFO queue's name gets the ".fifo" suffix if it lacks it. With
// DeadLetter and no MaxReceiveCount, messages move after 5 receives.
func (s *Stack) CreateQueue(ctx context.Context, q Queue) (string, error) {
	c := s.kumoSQS()
	attrs := map[string]string{}
	name := q.Name
	if q.FIFO {
		attrs["FifoQueue"] = "true"
		if !strings.HasSuffix(name, ".fifo") {
			name += ".fifo"
		}
	}
	if q.VisibilityTimeout > 0 {
		attrs["VisibilityTimeout"] = strconv.Itoa(int(q.VisibilityTimeout / time.Second))
	}
	if q.DeadLetter != "" {
		dlq, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.DeadLetter)})
		if err != nil {
			return "", fmt.Errorf("queue %s: dead-letter queue %s: %w", name, q.DeadLetter, err)
		}
		a, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			return "", fmt.Errorf("queue %s: dead-letter queue arn: %w", name, err)
		}
		n := q.MaxReceiveCount
		if n <= 0 {
			n = defaultMaxReceiveCount
		}
		rp, _ := json.Marshal(map[string]string{"deadLetterTargetArn": a.Attributes["QueueArn"], "maxReceiveCount": strconv.Itoa(n)})
		attrs["RedrivePolicy"] = string(rp)
	}
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// kumoSQS is an SQS client talking to kumo directly (kumo routes SQS by
// X-Amz-Target and ignores the signature).
func (s *Stack) kumoSQS() *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       s.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("localaws", "localaws", ""),
		BaseEndpoint: aws.String(s.kumo.URL),
		HTTPClient:   awsclient.Wrap(s.direct),
	})
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func randomDigits(n int) string {
	return randomFrom("123456789", 1) + randomFrom("0123456789", n-1)
}

func randomUpper(n int) string { return randomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n) }

func randomSecret(n int) string {
	return randomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", n)
}
