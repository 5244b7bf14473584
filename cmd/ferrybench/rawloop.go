package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/awsclient"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
)

// The raw loop is this binary re-executed with rawLoopEnv=1: a process of
// its own, so /proc reports its CPU and peak RSS apart from the harness.
const (
	rawLoopEnv       = "FERRYBENCH_RAWLOOP"
	rawLoopConfigEnv = "FERRYBENCH_RAWLOOP_CONFIG"
	rawLoopReady     = "raw loop ready"
)

func init() {
	if os.Getenv(rawLoopEnv) == "1" {
		os.Exit(rawLoopMain())
	}
}

// rawConfig is what the harness hands a raw-loop process (in a 0600 file:
// it holds external IDs). AWS credentials and endpoint come from the
// standard AWS_* variables, exactly as for `ferry work`.
type rawConfig struct {
	TasksURL        string                 `json:"tasks_url"`
	EventsURL       string                 `json:"events_url"`
	Bucket          string                 `json:"bucket"`
	Concurrency     int                    `json:"concurrency"`
	PartSize        int64                  `json:"part_size"`
	PartConcurrency int                    `json:"part_concurrency"`
	Customers       map[string]rawCustomer `json:"customers"`
}

type rawCustomer struct {
	Mode       string `json:"mode"`
	AccountID  string `json:"account_id"`
	RoleARN    string `json:"role_arn,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
}

func writeRawConfig(path string, w *world, concurrency int) error {
	rc := rawConfig{TasksURL: w.rawTasks, EventsURL: w.rawEvents, Bucket: w.env.Lookup("FERRY_BUCKET"),
		Concurrency: concurrency, PartSize: fetcher.DefaultPartSize, PartConcurrency: fetcher.DefaultPartConcurrency, Customers: map[string]rawCustomer{}}
	for _, c := range w.customers {
		rc.Customers[c.ID] = rawCustomer{Mode: c.Mode, AccountID: c.AccountID, RoleARN: c.RoleARN, ExternalID: c.ExternalID}
	}
	b, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// rawLoop is the limit ferry is measured against: per message, receive →
// GET → buffered multipart PUT (pooled buffers with ferry's default part size and parts in flight) →
// send an event → delete, with the SDK's own per-process credential cache
// and none of ferry's queue plumbing, Redis, hashing or bookkeeping.
type rawLoop struct {
	cfg     rawConfig
	sqs     *sqs.Client
	fleet   *s3.Client
	clients map[string]*s3.Client
	pool    sync.Pool
	log     zerolog.Logger
}

func rawLoopMain() int {
	log := zerolog.New(os.Stderr).With().Timestamp().Str("cmd", "ferrybench-rawloop").Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	data, err := os.ReadFile(os.Getenv(rawLoopConfigEnv))
	if err != nil {
		log.Error().Err(err).Msg("read config")
		return 1
	}
	var rc rawConfig
	if err := json.Unmarshal(data, &rc); err != nil {
		log.Error().Err(err).Msg("decode config")
		return 1
	}
	rc.Concurrency = max(rc.Concurrency, 1)
	conns := max(64, rc.Concurrency*(rc.PartConcurrency+2))
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns
		t.MaxIdleConnsPerHost = conns
	})
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(hc))
	if err != nil {
		log.Error().Err(err).Msg("aws config")
		return 1
	}
	awsclient.Guard(&awsCfg)
	pathStyle := func(o *s3.Options) { o.UsePathStyle = true }
	r := &rawLoop{cfg: rc, sqs: sqs.NewFromConfig(awsCfg), fleet: s3.NewFromConfig(awsCfg, pathStyle),
		clients: map[string]*s3.Client{}, log: log}
	r.pool.New = func() any { b := make([]byte, rc.PartSize); return &b }
	stsc := sts.NewFromConfig(awsCfg)
	for id, c := range rc.Customers {
		if c.Mode != modeDelegated {
			continue
		}
		prov := stscreds.NewAssumeRoleProvider(stsc, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(c.ExternalID)
			o.RoleSessionName = "ferrybench-raw"
		})
		cc := awsCfg.Copy()
		cc.Credentials = aws.NewCredentialsCache(prov)
		r.clients[id] = s3.NewFromConfig(cc, pathStyle)
	}
	fmt.Fprintln(os.Stderr, rawLoopReady)
	g, gctx := errgroup.WithContext(ctx)
	for range rc.Concurrency {
		g.Go(func() error { r.serve(gctx); return nil })
	}
	_ = g.Wait()
	return 0
}

// serve is one slot: it receives one message at a time until ctx ends.
func (r *rawLoop) serve(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(r.cfg.TasksURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1,
		})
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("receive")
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		for _, m := range out.Messages {
			r.handle(ctx, m.Body, m.ReceiptHandle)
		}
	}
}

func (r *rawLoop) handle(ctx context.Context, body, receipt *string) {
	var t task.Task
	if err := json.Unmarshal([]byte(aws.ToString(body)), &t); err != nil {
		r.log.Error().Err(err).Msg("decode task")
		return
	}
	ev := queue.Event{Version: queue.EventVersion, Type: queue.EventCompleted, TaskID: t.TaskID, CustomerID: t.CustomerID}
	for i, a := range t.Attachments {
		n, err := r.copy(ctx, t, i, a.URI)
		res := queue.AttachmentResult{Source: a.URI, Status: "copied", Size: n}
		if err != nil {
			ev.Type = queue.EventFailed
			res.Status = "failed"
			res.Error = &queue.AttachmentError{Stage: "copy", Code: "raw", Message: err.Error()}
			r.log.Error().Err(err).Str("task_id", t.TaskID).Msg("copy")
		}
		ev.Attachments = append(ev.Attachments, res)
	}
	ev.EventID = queue.EventID(t.TaskID, "", ev.Type)
	ev.OccurredAt = time.Now().UTC()
	b, _ := json.Marshal(ev)
	if _, err := r.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.cfg.EventsURL), MessageBody: aws.String(string(b))}); err != nil {
		r.log.Error().Err(err).Str("task_id", t.TaskID).Msg("send event")
		return
	}
	if _, err := r.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.cfg.TasksURL), ReceiptHandle: receipt}); err != nil {
		r.log.Error().Err(err).Str("task_id", t.TaskID).Msg("delete")
	}
}

func (r *rawLoop) copy(ctx context.Context, t task.Task, i int, uri string) (int64, error) {
	bucket, key, ok := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	if !ok || !strings.HasPrefix(uri, "s3://") {
		return 0, fmt.Errorf("not an s3:// uri")
	}
	c, ok := r.cfg.Customers[t.CustomerID]
	if !ok {
		return 0, fmt.Errorf("unknown customer")
	}
	client := r.clients[t.CustomerID]
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if client == nil {
		client = r.fleet
		in.ExpectedBucketOwner = aws.String(c.AccountID)
	}
	out, err := client.GetObject(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("get object: %w", err)
	}
	defer out.Body.Close()
	return r.upload(ctx, fmt.Sprintf("raw/%s/%d", t.TaskID, i), out.Body)
}

// upload is PutObject for one part's worth, else a multipart upload with
// PartConcurrency parts in flight from pooled, seekable buffers (signed
// payloads, as ferry sends them).
func (r *rawLoop) upload(ctx context.Context, key string, body io.Reader) (int64, error) {
	bucket := aws.String(r.cfg.Bucket)
	first := r.pool.Get().(*[]byte)
	n, err := io.ReadFull(body, *first)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		defer r.pool.Put(first)
		_, err := r.fleet.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key),
			Body: bytes.NewReader((*first)[:n]), ContentLength: aws.Int64(int64(n))})
		return int64(n), err
	}
	if err != nil {
		r.pool.Put(first)
		return 0, err
	}
	created, err := r.fleet.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(key)})
	if err != nil {
		r.pool.Put(first)
		return 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.PartConcurrency)
	var mu sync.Mutex
	var parts []s3types.CompletedPart
	size := int64(0)
	send := func(num int32, buf *[]byte, l int) {
		g.Go(func() error {
			defer r.pool.Put(buf)
			out, err := r.fleet.UploadPart(gctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String(key), UploadId: created.UploadId,
				PartNumber: aws.Int32(num), Body: bytes.NewReader((*buf)[:l]), ContentLength: aws.Int64(int64(l))})
			if err != nil {
				return err
			}
			mu.Lock()
			parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
			mu.Unlock()
			return nil
		})
	}
	num := int32(1)
	size += int64(n)
	send(num, first, n)
	var readErr error
	for gctx.Err() == nil {
		buf := r.pool.Get().(*[]byte)
		k, err := io.ReadFull(body, *buf)
		if k == 0 {
			r.pool.Put(buf)
			if err != io.EOF {
				readErr = err
			}
			break
		}
		num++
		size += int64(k)
		send(num, buf, k)
		if err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	if err := errors.Join(g.Wait(), readErr); err != nil {
		_, _ = r.fleet.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String(key), UploadId: created.UploadId})
		return 0, err
	}
	slices.SortFunc(parts, func(a, b s3types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err = r.fleet.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(key), UploadId: created.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	return size, err
}
