package localaws

import (
	"bytes"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// BenchmarkGateGetObject reads an 8 MiB object through the gate and
// straight from kumo, to show what verification, authorisation and the
// proxy hop cost.
func BenchmarkGateGetObject(b *testing.B) {
	s := startStack(b, Options{})
	ctx := testCtx(b)
	acct := mustAccount(b, s, "")
	const size = 8 << 20
	if err := s.CreateBucket(ctx, Bucket{Name: "bench", Owner: acct.ID}); err != nil {
		b.Fatal(err)
	}
	if err := s.PutObject(ctx, "bench", "obj", bytes.NewReader(make([]byte, size)), size, ""); err != nil {
		b.Fatal(err)
	}
	direct := s3.NewFromConfig(s.Config(acct, ""), func(o *s3.Options) {
		o.UsePathStyle = true
		o.BaseEndpoint = aws.String(s.KumoURL)
	})
	for _, bc := range []struct {
		name string
		c    *s3.Client
	}{{"gate", s.S3Client(acct, "")}, {"kumo", direct}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				out, err := bc.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("obj")})
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, out.Body)
				out.Body.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
		})
	}
}

// BenchmarkGateSQSSendReceive measures a send-batch, receive, delete-batch
// round of 10 messages through the gate.
func BenchmarkGateSQSSendReceive(b *testing.B) {
	s := startStack(b, Options{})
	ctx := testCtx(b)
	acct := mustAccount(b, s, "")
	q, err := s.CreateQueue(ctx, Queue{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c := s.SQSClient(acct, "")
	entries := make([]sqstypes.SendMessageBatchRequestEntry, 10)
	for i := range entries {
		entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), MessageBody: aws.String(`{"version":1,"task_id":"t"}`)}
	}
	for b.Loop() {
		if _, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q), Entries: entries}); err != nil {
			b.Fatal(err)
		}
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10})
		if err != nil {
			b.Fatal(err)
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for _, m := range out.Messages {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: m.MessageId, ReceiptHandle: m.ReceiptHandle})
		}
		if len(del) > 0 {
			if _, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: del}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
