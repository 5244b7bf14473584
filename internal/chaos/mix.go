package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
)

// Kinds of task the campaign submits; each has one deterministic outcome,
// which is what lets the ledger call any second outcome a conflict.
const (
	kindDelegated   = "delegated"        // acme: assume role, copy → completed
	kindCross       = "cross_account"    // globex / hooli: fleet credentials → completed
	kindDeniedRole  = "denied_assume"    // initech: wrong external ID → access_denied
	kindDeniedGet   = "denied_get"       // umbrella: no grant → access_denied
	kindNotFound    = "not_found"        // acme, one key missing → failed
	kindDeputy      = "confused_deputy"  // globex naming hooli's bucket → access_denied
	kindDuplicate   = "duplicate"        // a completed task sent twice
	kindInvalidJSON = "invalid_not_json" // DLQ only; no task id, no event
	kindInvalidVer  = "invalid_version"  // DLQ + task.failed invalid_message
	kindInvalidURI  = "invalid_uri"      // DLQ + task.failed invalid_message
	kindInvalidID   = "invalid_task_id"  // DLQ only; the task id is not valid
)

// planned is one task of the campaign and what must become of it.
type planned struct {
	ID   string
	Kind string
	// Bodies are the messages sent for it (two for a duplicate).
	Bodies []string
	// WantEvent is the terminal event type, "" when none can be announced.
	WantEvent string
	// WantDLQ: the message must end in the DLQ (rejected as invalid).
	WantDLQ bool
	// Marker identifies a body that carries no readable task id.
	Marker string
}

// object is a source object the campaign may name.
type object struct {
	URI  string
	Size int64
	SHA  string
}

// sizeWeights spread attachments from 1 KiB to 64 MiB, with big objects rare
// enough that a 10,000-task run stays within the emulator's memory (kumo
// never returns memory; see docs/architecture.md, Local AWS in tests).
var extraSizes = []struct {
	name   string
	size   int64
	weight int
}{
	{"1KiB", 1 << 10, 300},
	{"64KiB", 64 << 10, 150},
	{"1MiB", 1 << 20, 30},
	{"6MiB", 6 << 20, 8},   // two parts at the campaign's 5 MiB part size
	{"17MiB", 17 << 20, 2}, // four parts
	{"64MiB", 64 << 20, 1},
}

// seedObjects puts the extra objects into the delegated and cross-account
// demo buckets and returns every object the campaign may name, by bucket.
func seedObjects(ctx context.Context, stack *localaws.Stack, m demo.Manifest, maxSize int64) (map[string][]weighted, map[string]object, error) {
	byBucket := map[string][]weighted{}
	all := map[string]object{}
	for _, c := range m.Customers {
		for _, k := range c.Objects {
			o := object{URI: "s3://" + c.Bucket + "/" + k, Size: c.Sizes[k], SHA: c.SHA256[k]}
			all[o.URI] = o
			w := 100
			if o.Size > 1<<20 {
				w = 20
			}
			byBucket[c.Bucket] = append(byBucket[c.Bucket], weighted{o, w})
		}
		if c.ID != "acme" && c.ID != "globex" {
			continue
		}
		for _, s := range extraSizes {
			if s.size > maxSize {
				continue
			}
			key := "chaos/" + s.name + ".bin"
			h := sha256.New()
			body := io.TeeReader(demo.SampleContent(c.Bucket, key, s.size), h)
			if err := stack.PutObject(ctx, c.Bucket, key, body, s.size, "application/octet-stream"); err != nil {
				return nil, nil, fmt.Errorf("seed %s/%s: %w", c.Bucket, key, err)
			}
			o := object{URI: "s3://" + c.Bucket + "/" + key, Size: s.size, SHA: hex.EncodeToString(h.Sum(nil))}
			all[o.URI] = o
			byBucket[c.Bucket] = append(byBucket[c.Bucket], weighted{o, s.weight})
		}
	}
	return byBucket, all, nil
}

type weighted struct {
	o object
	w int
}

func pick(r *rand.Rand, list []weighted) object {
	total := 0
	for _, x := range list {
		total += x.w
	}
	n := r.IntN(total)
	for _, x := range list {
		if n < x.w {
			return x.o
		}
		n -= x.w
	}
	return list[len(list)-1].o
}

// kindWeights is the mix, in per mille.
var kindWeights = []struct {
	kind string
	w    int
}{
	{kindDelegated, 330}, {kindCross, 300}, {kindDeniedRole, 50}, {kindDeniedGet, 50}, {kindNotFound, 50},
	{kindDeputy, 50}, {kindDuplicate, 60}, {kindInvalidJSON, 25}, {kindInvalidVer, 30}, {kindInvalidURI, 30},
	{kindInvalidID, 25},
}

// plan builds n tasks deterministically from seed.
func plan(n int, seed uint64, objs map[string][]weighted) []planned {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for _, k := range kindWeights {
		total += k.w
	}
	out := make([]planned, 0, n)
	for i := range n {
		x := r.IntN(total)
		kind := kindWeights[len(kindWeights)-1].kind
		for _, k := range kindWeights {
			if x < k.w {
				kind = k.kind
				break
			}
			x -= k.w
		}
		id := fmt.Sprintf("c%05d-%s", i, kind)
		p := planned{ID: id, Kind: kind}
		tk := task.Task{Version: 1, TaskID: id}
		atts := func(cust, bucket string, max int) {
			tk.CustomerID = cust
			for range 1 + r.IntN(max) {
				tk.Attachments = append(tk.Attachments, task.Attachment{URI: pick(r, objs[bucket]).URI})
			}
		}
		switch kind {
		case kindDelegated:
			atts("acme", "acme-data", 3)
			p.WantEvent = queue.EventCompleted
		case kindCross:
			if r.IntN(4) == 0 {
				atts("hooli", "hooli-data-eu", 2)
			} else {
				atts("globex", "globex-data", 3)
			}
			p.WantEvent = queue.EventCompleted
		case kindDuplicate:
			atts("globex", "globex-data", 2)
			p.WantEvent = queue.EventCompleted
		case kindDeniedRole:
			atts("initech", "initech-data", 2)
			p.WantEvent = queue.EventAccessDenied
		case kindDeniedGet:
			atts("umbrella", "umbrella-data", 2)
			p.WantEvent = queue.EventAccessDenied
		case kindNotFound:
			atts("acme", "acme-data", 2)
			tk.Attachments = append(tk.Attachments, task.Attachment{URI: fmt.Sprintf("s3://acme-data/chaos/missing-%d.bin", i)})
			p.WantEvent = queue.EventFailed
		case kindDeputy:
			atts("globex", "hooli-data-eu", 1)
			p.WantEvent = queue.EventAccessDenied
		case kindInvalidVer:
			atts("acme", "acme-data", 1)
			tk.Version = 9
			p.WantEvent, p.WantDLQ = queue.EventFailed, true
		case kindInvalidURI:
			atts("acme", "acme-data", 1)
			tk.Attachments[0].URI = "ftp://acme-data/x"
			p.WantEvent, p.WantDLQ = queue.EventFailed, true
		case kindInvalidID:
			atts("acme", "acme-data", 1)
			tk.TaskID = "../" + id
			p.Marker, p.WantDLQ = tk.TaskID, true
		case kindInvalidJSON:
			p.Marker, p.WantDLQ = "chaos-marker-"+id, true
			p.Bodies = []string{"this is not json " + p.Marker}
			out = append(out, p)
			continue
		}
		b, _ := json.Marshal(tk)
		p.Bodies = []string{string(b)}
		if kind == kindDuplicate {
			p.Bodies = append(p.Bodies, string(b))
		}
		out = append(out, p)
	}
	return out
}
