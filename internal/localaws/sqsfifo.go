package localaws

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// kumo keeps a FIFO message's group and deduplication ids but does not
// return them as the MessageGroupId / MessageDeduplicationId system
// attributes that SQS adds to received messages when asked. Without the
// group a consumer cannot keep a group's messages in order, so the gate
// remembers the ids of messages sent to FIFO queues and adds them to
// ReceiveMessage answers.
type fifoIDs struct {
	mu sync.Mutex
	m  map[string]fifoID // by message id
}

type fifoID struct{ group, dedupe string }

func (f *fifoIDs) put(messageID string, id fifoID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]fifoID{}
	}
	f.m[messageID] = id
}

func (f *fifoIDs) get(messageID string) (fifoID, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.m[messageID]
	return id, ok
}

type sqsSendRequest struct {
	QueueURL               string `json:"QueueUrl"`
	MessageGroupID         string `json:"MessageGroupId"`
	MessageDeduplicationID string `json:"MessageDeduplicationId"`
	Entries                []struct {
		ID                     string `json:"Id"`
		MessageGroupID         string `json:"MessageGroupId"`
		MessageDeduplicationID string `json:"MessageDeduplicationId"`
	} `json:"Entries"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
}

// fifoHook returns the response hook for an SQS call that sends to or
// receives from a FIFO queue, or nil.
func (s *Stack) fifoHook(op string, body []byte) func(*http.Response) {
	var req sqsSendRequest
	if json.Unmarshal(body, &req) != nil || !strings.HasSuffix(req.QueueURL, ".fifo") {
		return nil
	}
	switch op {
	case "sqs:SendMessage":
		return func(resp *http.Response) {
			var out struct {
				MessageID string `json:"MessageId"`
			}
			if resp.StatusCode == http.StatusOK && peekJSON(resp, &out) && out.MessageID != "" {
				s.fifo.put(out.MessageID, fifoID{req.MessageGroupID, req.MessageDeduplicationID})
			}
		}
	case "sqs:SendMessageBatch":
		return func(resp *http.Response) {
			var out struct {
				Successful []struct {
					ID        string `json:"Id"`
					MessageID string `json:"MessageId"`
				} `json:"Successful"`
			}
			if resp.StatusCode != http.StatusOK || !peekJSON(resp, &out) {
				return
			}
			for _, ok := range out.Successful {
				for _, e := range req.Entries {
					if e.ID == ok.ID {
						s.fifo.put(ok.MessageID, fifoID{e.MessageGroupID, e.MessageDeduplicationID})
					}
				}
			}
		}
	case "sqs:ReceiveMessage":
		names := append(req.AttributeNames, req.MessageSystemAttributeNames...)
		wants := func(name string) bool {
			for _, n := range names {
				if n == "All" || n == name {
					return true
				}
			}
			return false
		}
		if !wants("MessageGroupId") && !wants("MessageDeduplicationId") {
			return nil
		}
		return func(resp *http.Response) {
			if resp.StatusCode != http.StatusOK {
				return
			}
			raw, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				resp.Body = io.NopCloser(bytes.NewReader(raw))
				return
			}
			var out map[string]json.RawMessage
			var msgs []map[string]json.RawMessage
			if json.Unmarshal(raw, &out) == nil && json.Unmarshal(out["Messages"], &msgs) == nil {
				for _, m := range msgs {
					var mid string
					_ = json.Unmarshal(m["MessageId"], &mid)
					id, ok := s.fifo.get(mid)
					if !ok {
						continue
					}
					attrs := map[string]string{}
					_ = json.Unmarshal(m["Attributes"], &attrs)
					if wants("MessageGroupId") {
						attrs["MessageGroupId"] = id.group
					}
					if wants("MessageDeduplicationId") && id.dedupe != "" {
						attrs["MessageDeduplicationId"] = id.dedupe
					}
					m["Attributes"], _ = json.Marshal(attrs)
				}
				if b, err := json.Marshal(msgs); err == nil {
					out["Messages"] = b
					if b, err := json.Marshal(out); err == nil {
						raw = b
					}
				}
			}
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			resp.ContentLength = int64(len(raw))
			resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		}
	}
	return nil
}

// peekJSON decodes a small JSON answer and puts the body back for the client.
func peekJSON(resp *http.Response, v any) bool {
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return err == nil && json.Unmarshal(raw, v) == nil
}
