package deadletter_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ferryworks/ferry/deadletter"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
)

// A worker killed mid-copy leaves its multipart upload open; when the task
// then dead-letters and is purged, no later attempt closes it. Tasks reads
// the dead letters to clean up after, and Abort closes exactly the uploads
// under their attachments' stored keys, against a real S3 (localaws).
func TestAbortUploadsOfDeadLetteredTasks(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	ctx := context.Background()
	api := e.Client
	s3c := e.Stack.S3Client(e.Account, "")
	// The internal bucket, named after the account so that no other test
	// on the shared stack has it.
	bucket, dlq, prefix := "internal-"+e.Account.ID, e.Queue(t, localaws.Queue{Name: "tasks-dlq"}), "attachments/"
	if err := e.Stack.CreateBucket(ctx, localaws.Bucket{Name: bucket, Owner: e.Account.ID}); err != nil {
		t.Fatal(err)
	}
	att := func(key, name string) task.Attachment {
		return task.Attachment{URI: "s3://acme-data/" + key, Name: name}
	}
	dead := task.Task{Version: 1, TaskID: "t-dead", CustomerID: "acme",
		Attachments: []task.Attachment{att("a/big.bin", ""), att("b/other.bin", "renamed.bin")}}
	alive := task.Task{Version: 1, TaskID: "t-alive", CustomerID: "acme", Attachments: []task.Attachment{att("a/big.bin", "")}}
	for _, r := range queue.NewProducer(api, dlq, task.Limits{}).Send(ctx, []task.Task{dead, dead}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String("{not json")}); err != nil {
		t.Fatal(err)
	}

	stored := func(task task.Task, i int) string {
		k, err := fetcher.StoredKey(prefix, fetcher.Request{CustomerID: task.CustomerID, TaskID: task.TaskID, Index: i,
			URI: task.Attachments[i].URI, Name: task.Attachments[i].Name})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// What killed attempts left: two uploads of the first attachment (two
	// attempts), one of the second; and one of a task that is not dead.
	open := func(key string) {
		up, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part")), ContentLength: aws.Int64(4)}); err != nil {
			t.Fatal(err)
		}
	}
	open(stored(dead, 0))
	open(stored(dead, 0))
	open(stored(dead, 1))
	open(stored(alive, 0))
	// A key the dead one's is a prefix of belongs to another copy.
	open(stored(dead, 0) + ".gz")

	in := &deadletter.Inspector{DL: queue.NewDeadLetter(api)}
	tasks, read, err := in.Tasks(ctx, dlq, 100, task.Limits{})
	if err != nil || read != 3 || len(tasks) != 2 {
		t.Fatalf("Tasks = %d tasks of %d read, %v; want the 2 valid of 3", len(tasks), read, err)
	}
	got, err := deadletter.Uploads{S3: s3c, Bucket: bucket, KeyPrefix: prefix}.Abort(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	if want := (deadletter.UploadCleanup{Tasks: 1, Attachments: 2, Aborted: 3}); got != want {
		t.Errorf("Abort = %+v, want %+v", got, want)
	}
	out, err := s3c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]int{}
	for _, u := range out.Uploads {
		left[aws.ToString(u.Key)]++
	}
	want := map[string]int{stored(alive, 0): 1, stored(dead, 0) + ".gz": 1}
	if len(left) != len(want) || left[stored(alive, 0)] != 1 || left[stored(dead, 0)+".gz"] != 1 {
		t.Errorf("open uploads after Abort = %v, want only %v", left, want)
	}
	// The dead letters are still there: reading does not consume.
	if n, err := deadletter.Count(ctx, api, dlq); err != nil || n != 3 {
		t.Errorf("DLQ holds %d, %v after Tasks; want 3", n, err)
	}
}
