package deadletter

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/task"
)

// Uploads is the fleet's internal bucket as the copies of dead-lettered
// tasks used it: FERRY_BUCKET and FERRY_KEY_PREFIX of the workers.
//
// A worker killed in the middle of a multipart copy cannot abort its upload.
// The next attempt of the task aborts it (the stored key is deterministic),
// but a task that exhausted its receives and is then purged from the DLQ
// never has a next attempt: its open upload would hold storage until a
// lifecycle rule removes it (docs/runbook.md). Purging therefore aborts them.
type Uploads struct {
	S3        fetcher.UploadAPI
	Bucket    string
	KeyPrefix string
}

// UploadCleanup is what Uploads.Abort did.
type UploadCleanup struct {
	// Tasks and Attachments count the distinct tasks and attachments looked
	// at; Aborted the open uploads aborted under their keys.
	Tasks       int `json:"tasks"`
	Attachments int `json:"attachments"`
	Aborted     int `json:"aborted"`
}

// Abort aborts every multipart upload left open under the stored keys of
// the tasks' attachments (fetcher.StoredKey). A task listed twice (copies of
// one dead letter) is looked at once. An error names the keys it could not
// clean; the cleanup goes on past them.
func (u Uploads) Abort(ctx context.Context, tasks []task.Task) (UploadCleanup, error) {
	var c UploadCleanup
	var errs []error
	seen := map[string]bool{}
	for _, t := range tasks {
		if seen[t.DedupeKey()] {
			continue
		}
		seen[t.DedupeKey()] = true
		c.Tasks++
		for i, a := range t.Attachments {
			key, err := fetcher.StoredKey(u.KeyPrefix, fetcher.Request{CustomerID: t.CustomerID, TaskID: t.TaskID, Index: i, URI: a.URI, Name: a.Name})
			if err != nil {
				// Never copied: the worker refuses such a URI before any upload.
				continue
			}
			c.Attachments++
			n, err := fetcher.AbortUploads(ctx, u.S3, u.Bucket, key)
			c.Aborted += n
			if err != nil {
				errs = append(errs, err)
			}
			if ctx.Err() != nil {
				return c, errors.Join(append(errs, ctx.Err())...)
			}
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%d attachments of dead-lettered tasks keep open uploads (a lifecycle rule on %s removes them, see docs/runbook.md): %w",
			len(errs), u.Bucket, errors.Join(errs...))
	}
	return c, nil
}

// Tasks reads up to scan dead letters without consuming them and returns
// the valid tasks among them under the fleet's limits (invalid messages were
// never copied), with how many messages were read. An error with tasks means
// the read stopped early.
func (in *Inspector) Tasks(ctx context.Context, dlqURL string, scan int, limits task.Limits) (tasks []task.Task, read int, err error) {
	msgs, err := in.DL.Peek(ctx, dlqURL, max(scan, 1))
	for _, m := range msgs {
		if t, derr := task.Decode([]byte(m.Body), limits); derr == nil {
			tasks = append(tasks, t)
		}
	}
	return tasks, len(msgs), err
}
