package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

var (
	taskFields       = []string{"version", "task_id", "customer_id", "submission_id", "attachments"}
	attachmentFields = []string{"uri", "name"}
)

// keyError is a key of the wire format spelled in a way encoding/json would
// quietly accept: twice in one object (the last would win) or in another
// case than the contract's (TASK_ID for task_id). Either way the producer
// meant something the task would not say, so the message is invalid.
type keyError struct {
	detail string
	// taskID is the top-level task_id when it is present once, spelled
	// exactly and a string, so the rejection can still name the task.
	taskID string
}

// checkKeys walks a body that is valid JSON and reports the first duplicate
// or wrongly-cased key of the task object or of an attachment object.
// Unknown keys are left alone (forward compatibility); keys inside other
// values are not the contract's business. A body that is not an object is
// for json.Unmarshal to reject.
func checkKeys(body []byte) *keyError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var (
		ke      keyError
		idCount int
		idValue string
	)
	err := walkObject(dec, "", taskFields, func(key string) error {
		switch key {
		case "task_id":
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			idCount++
			if s, ok := tok.(string); ok {
				idValue = s
			} else if d, ok := tok.(json.Delim); ok {
				return skipRest(dec, d)
			}
			return nil
		case "attachments":
			return walkAttachments(dec)
		}
		return skipValue(dec)
	})
	if err == nil {
		return nil
	}
	// A second or wrongly-cased task_id makes the id itself ambiguous.
	var bk *badKeyError
	if idCount == 1 && !(errors.As(err, &bk) && bk.path == "" && strings.EqualFold(bk.key, "task_id")) {
		ke.taskID = idValue
	}
	ke.detail = err.Error()
	return &ke
}

type badKeyError struct{ path, key, msg string }

func (e *badKeyError) Error() string { return e.path + e.msg }

// walkObject reads the keys of an object whose '{' was consumed, checking
// each against fields; value consumes the key's value.
func walkObject(dec *json.Decoder, path string, fields []string, value func(key string) error) error {
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return &badKeyError{path, key, fmt.Sprintf("key %q appears more than once", key)}
		}
		seen[key] = true
		for _, f := range fields {
			if key != f && strings.EqualFold(key, f) {
				return &badKeyError{path, key, fmt.Sprintf("key %q: field names are case-sensitive, use %q", key, f)}
			}
		}
		if err := value(key); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func walkAttachments(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if d != '[' {
		return skipRest(dec, d)
	}
	for i := 0; dec.More(); i++ {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		switch {
		case !ok:
			continue
		case d == '{':
			path := fmt.Sprintf("attachments[%d]: ", i)
			if err := walkObject(dec, path, attachmentFields, func(string) error { return skipValue(dec) }); err != nil {
				return err
			}
		default:
			if err := skipRest(dec, d); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // ']'
	return err
}

// skipValue consumes one value.
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); ok {
		return skipRest(dec, d)
	}
	return nil
}

// skipRest consumes the rest of an object or array whose opening delimiter
// was read.
func skipRest(dec *json.Decoder, open json.Delim) error {
	if open != '{' && open != '[' {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}
