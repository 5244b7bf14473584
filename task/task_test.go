package task

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeTaskRejects(t *testing.T) {
	t.Parallel()
	att := `"attachments":[{"uri":"s3://b/k"}]`
	many := `"attachments":[` + strings.Repeat(`{"uri":"s3://b/k"},`, 3) + `{"uri":"s3://b/k"}]`
	cases := []struct {
		name       string
		body       string
		limits     Limits
		wantReason string
		wantTaskID string
	}{
		{"not json", `{"version":1,`, Limits{}, ReasonNotJSON, ""},
		{"json array", `[1,2]`, Limits{}, ReasonNotJSON, ""},
		{"json string", `"t-1"`, Limits{}, ReasonNotJSON, ""},
		{"empty body", ``, Limits{}, ReasonNotJSON, ""},
		{"wrong field type", `{"version":1,"task_id":"t-1","customer_id":7,` + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"version as string", `{"version":"1","task_id":"t-1","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"missing version", `{"task_id":"t-1","customer_id":"c",` + att + `}`, Limits{}, ReasonUnknownVersion, "t-1"},
		{"version 2", `{"version":2,"task_id":"t-1","customer_id":"c",` + att + `}`, Limits{}, ReasonUnknownVersion, "t-1"},
		{"missing task id", `{"version":1,"customer_id":"c",` + att + `}`, Limits{}, ReasonMissingTaskID, ""},
		{"task id with slash", `{"version":1,"task_id":"a/b","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidTaskID, "a/b"},
		{"task id dot", `{"version":1,"task_id":".","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidTaskID, "."},
		{"task id dotdot", `{"version":1,"task_id":"..","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidTaskID, ".."},
		{"task id too long", `{"version":1,"task_id":"` + strings.Repeat("x", 129) + `","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidTaskID, strings.Repeat("x", 129)},
		{"task id with space", `{"version":1,"task_id":"t 1","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidTaskID, "t 1"},
		{"missing customer", `{"version":1,"task_id":"t-1",` + att + `}`, Limits{}, ReasonMissingCustomerID, "t-1"},
		{"customer with brace", `{"version":1,"task_id":"t-1","customer_id":"{acme}",` + att + `}`, Limits{}, ReasonInvalidCustomerID, "t-1"},
		{"bad submission", `{"version":1,"task_id":"t-1","customer_id":"c","submission_id":"s/1",` + att + `}`, Limits{}, ReasonInvalidSubmissionID, "t-1"},
		{"no attachments field", `{"version":1,"task_id":"t-1","customer_id":"c"}`, Limits{}, ReasonNoAttachments, "t-1"},
		{"empty attachments", `{"version":1,"task_id":"t-1","customer_id":"c","attachments":[]}`, Limits{}, ReasonNoAttachments, "t-1"},
		{"too many attachments", `{"version":1,"task_id":"t-1","customer_id":"c",` + many + `}`, Limits{MaxAttachments: 3}, ReasonTooManyAttachments, "t-1"},
		{"empty uri", `{"version":1,"task_id":"t-1","customer_id":"c","attachments":[{"uri":"s3://b/k"},{"name":"x"}]}`, Limits{}, ReasonEmptyURI, "t-1"},
		{"key in upper case", `{"version":1,"TASK_ID":"t-1","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidField, ""},
		{"key in mixed case", `{"version":1,"task_id":"t-1","Customer_Id":"c",` + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"key folded by unicode", "{\"version\":1,\"task_id\":\"t-1\",\"cu\u017ftomer_id\":\"c\"," + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"duplicate customer", `{"version":1,"task_id":"t-1","customer_id":"a","customer_id":"b",` + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"duplicate task id", `{"version":1,"task_id":"t-1","task_id":"t-2","customer_id":"c",` + att + `}`, Limits{}, ReasonInvalidField, ""},
		{"duplicate via escape", `{"version":1,"task_id":"t-1","customer\u005fid":"a","customer_id":"b",` + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"duplicate unknown key", `{"version":1,"task_id":"t-1","customer_id":"c","x":1,"x":2,` + att + `}`, Limits{}, ReasonInvalidField, "t-1"},
		{"attachment key case", `{"version":1,"task_id":"t-1","customer_id":"c","attachments":[{"uri":"s3://b/k"},{"URI":"s3://b/j"}]}`, Limits{}, ReasonInvalidField, "t-1"},
		{"attachment duplicate uri", `{"version":1,"task_id":"t-1","customer_id":"c","attachments":[{"uri":"s3://b/k","uri":"s3://b/j"}]}`, Limits{}, ReasonInvalidField, "t-1"},
		{"too large", `{"version":1,"task_id":"t-1","customer_id":"c",` + att + `}`, Limits{MaxBodyBytes: 20}, ReasonTooLarge, "t-1"},
		{"too large default", `{"version":1,"task_id":"t-big","customer_id":"c","pad":"` + strings.Repeat("p", 256*1024) + `",` + att + `}`, Limits{}, ReasonTooLarge, "t-big"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tc.body), tc.limits)
			var ite *InvalidError
			if !errors.As(err, &ite) {
				t.Fatalf("Decode error = %v, want *InvalidError", err)
			}
			if ite.Reason != tc.wantReason {
				t.Errorf("Reason = %q, want %q (detail %q)", ite.Reason, tc.wantReason, ite.Detail)
			}
			if ite.TaskID != tc.wantTaskID {
				t.Errorf("TaskID = %q, want %q", ite.TaskID, tc.wantTaskID)
			}
			if ite.Detail == "" {
				t.Error("Detail is empty")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("errors.Is(err, ErrInvalid) = false")
			}
		})
	}
}

func TestDecodeTaskAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		body  string
		check func(Task) bool
	}{
		{"design example", `{"version":1,"task_id":"t-123","customer_id":"acme",
 "attachments":[{"uri":"s3://acme-data/img/1.jpg"},{"uri":"https://example.com/a.png","name":"a.png"}]}`,
			func(t Task) bool {
				return t.TaskID == "t-123" && t.CustomerID == "acme" && len(t.Attachments) == 2 && t.Attachments[1].Name == "a.png"
			}},
		{"submission id", `{"version":1,"task_id":"t-1","customer_id":"c","submission_id":"s-2","attachments":[{"uri":"x"}]}`,
			func(t Task) bool { return t.SubmissionID == "s-2" }},
		{"unknown fields ignored", `{"version":1,"task_id":"t-1","customer_id":"c","priority":3,"attachments":[{"uri":"x"}]}`,
			func(t Task) bool { return t.TaskID == "t-1" }},
		{"id charset edges", `{"version":1,"task_id":"A.z_0:9-...","customer_id":"` + strings.Repeat("c", 128) + `","attachments":[{"uri":"x"}]}`,
			func(t Task) bool { return t.TaskID == "A.z_0:9-..." }},
		{"same key in separate objects", `{"version":1,"task_id":"t-1","customer_id":"c","meta":{"task_id":"x","TASK_ID":"y","k":1,"k":2},"attachments":[{"uri":"x","extra":{"uri":1}},{"uri":"y"}]}`,
			func(t Task) bool { return t.TaskID == "t-1" && len(t.Attachments) == 2 && t.Attachments[1].URI == "y" }},
		{"exactly max attachments", `{"version":1,"task_id":"t-1","customer_id":"c","attachments":[` + strings.TrimSuffix(strings.Repeat(`{"uri":"x"},`, 100), ",") + `]}`,
			func(t Task) bool { return len(t.Attachments) == 100 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task, err := Decode([]byte(tc.body), Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !tc.check(task) {
				t.Errorf("decoded %+v", task)
			}
		})
	}
}

func TestEncodeTaskRoundTrip(t *testing.T) {
	t.Parallel()
	in := Task{Version: 1, TaskID: "t-9", CustomerID: "acme", SubmissionID: "s-1",
		Attachments: []Attachment{{URI: "s3://b/k", Name: "k.bin"}, {URI: "https://e.com/x"}}}
	b, err := Encode(in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"task_id":"t-9","customer_id":"acme","submission_id":"s-1","attachments":[{"uri":"s3://b/k","name":"k.bin"},{"uri":"https://e.com/x"}]}`
	if string(b) != want {
		t.Errorf("Encode = %s\nwant %s", b, want)
	}
	out, err := Decode(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if out.DedupeKey() != "t-9/s-1" || len(out.Attachments) != 2 {
		t.Errorf("round trip = %+v", out)
	}
	if _, err := Encode(Task{Version: 1, TaskID: "t/1", CustomerID: "c", Attachments: in.Attachments}, Limits{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of invalid task: err = %v", err)
	}
	big := in
	big.Attachments = []Attachment{{URI: strings.Repeat("u", 300)}}
	var ite *InvalidError
	if _, err := Encode(big, Limits{MaxBodyBytes: 200}); !errors.As(err, &ite) || ite.Reason != ReasonTooLarge {
		t.Errorf("Encode over the limit: err = %v", err)
	}
}

func TestDedupeKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		task Task
		want string
	}{
		{Task{TaskID: "t-1"}, "t-1"},
		{Task{TaskID: "t-1", SubmissionID: "s-2"}, "t-1/s-2"},
	}
	for _, tc := range cases {
		if got := tc.task.DedupeKey(); got != tc.want {
			t.Errorf("DedupeKey(%+v) = %q, want %q", tc.task, got, tc.want)
		}
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"t-1": true, "a.b_c:d-e": true, strings.Repeat("z", 128): true, "...": true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, "{a}": false, "é": false,
		strings.Repeat("z", 129): false, "a\nb": false, "a*": false,
	}
	for id, want := range cases {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestBodyIDs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body                string
		task, customer, sub string
	}{
		{`{"task_id":"t-1","customer_id":"acme","submission_id":"s-2"}`, "t-1", "acme", "s-2"},
		{`{"task_id":"t-1","customer_id":7,"attachments":"not a list"}`, "t-1", "", ""},
		{`{"task_id":"has space","customer_id":"a b"}`, "has space", "a b", ""}, // unchecked
		{`[1,2]`, "", "", ""},
		{`not json`, "", "", ""},
		{``, "", "", ""},
	}
	for _, tc := range cases {
		task, customer, sub := BodyIDs([]byte(tc.body))
		if task != tc.task || customer != tc.customer || sub != tc.sub {
			t.Errorf("BodyIDs(%s) = %q, %q, %q; want %q, %q, %q", tc.body, task, customer, sub, tc.task, tc.customer, tc.sub)
		}
	}
}

func TestReadTasks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		ids      []string
		errLine  string
	}{
		{"object", `{"task_id":"a","customer_id":"c","attachments":[{"uri":"s3://b/k"}]}`, []string{"a"}, ""},
		{"array", " [ {\"task_id\":\"a\"}, {\"task_id\":\"b\",\"version\":1} ]\n", []string{"a", "b"}, ""},
		{"json lines", "{\"task_id\":\"a\"}\n\n{\"task_id\":\"b\"}\n{\"task_id\":\"c\"}\n", []string{"a", "b", "c"}, ""},
		{"empty", "  \n", nil, ""},
		{"bad line", "{\"task_id\":\"a\"}\n\n{\"task_id\": nope}\n", nil, "line 3"},
		{"bad array", `[{"task_id":"a"},]`, nil, "array"},
	}
	for _, tc := range cases {
		ts, err := ReadAll(strings.NewReader(tc.in))
		if tc.errLine != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errLine) {
				t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.errLine)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var ids []string
		for _, task := range ts {
			ids = append(ids, task.TaskID)
			if task.Version != Version {
				t.Errorf("%s: task %s has version %d, want %d filled in", tc.name, task.TaskID, task.Version, Version)
			}
		}
		if strings.Join(ids, ",") != strings.Join(tc.ids, ",") {
			t.Errorf("%s: ids %v, want %v", tc.name, ids, tc.ids)
		}
	}
}
