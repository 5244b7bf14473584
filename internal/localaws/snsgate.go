package localaws

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
)

// SNS behind the gate. kumo serves SNS (topics, subscriptions delivering to
// its SQS, filter policies on message attributes); the gate adds what AWS
// checks before that: every SNS action is authorised against the caller's
// IAM policies with the action "sns:<Action>" and the topic's ARN as the
// resource, and a caller may only use a topic of its own account (topic
// access policies, which could grant other accounts, are not modelled).
//
// https://docs.aws.amazon.com/sns/latest/dg/sns-using-identity-based-policies.html
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html

// topicOwners remembers which account created each topic through the gate;
// kumo names every topic with one fixed account id.
type topicOwners struct {
	mu    sync.Mutex
	owner map[string]string // topic ARN → account ID
}

func (t *topicOwners) set(arn, account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owner == nil {
		t.owner = map[string]string{}
	}
	if _, ok := t.owner[arn]; !ok {
		t.owner[arn] = account
	}
}

func (t *topicOwners) get(arn string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.owner[arn]
	return a, ok
}

var topicARNInResponse = regexp.MustCompile(`<TopicArn>([^<]+)</TopicArn>`)

// snsResource is the ARN a call is authorised on: the topic it names (a
// subscription's topic for subscription calls), or the topic a CreateTopic
// would make, or "*" for account-wide calls (ListTopics, …).
func (s *Stack) snsResource(form url.Values, account string) string {
	if arn := form.Get("TopicArn"); arn != "" {
		return arn
	}
	if sub := form.Get("SubscriptionArn"); sub != "" {
		if i := strings.LastIndex(sub, ":"); i > 0 {
			return sub[:i]
		}
	}
	if form.Get("Action") == "CreateTopic" {
		return "arn:aws:sns:" + s.opts.Region + ":" + account + ":" + form.Get("Name")
	}
	if arn := form.Get("ResourceArn"); arn != "" {
		return arn
	}
	return "*"
}

func (s *Stack) serveSNS(w http.ResponseWriter, r *http.Request, op string, k *accessKey, form url.Values) {
	p := k.principal()
	resource := s.snsResource(form, p.Account)
	action := "sns:" + form.Get("Action")
	s.mu.RLock()
	identity := s.identityDecision(p, iampolicy.EvalRequest{Principal: p, Action: action, Resource: resource,
		Context: map[string][]string{"aws:principalarn": {p.ARN}, "aws:principalaccount": {p.Account}}})
	s.mu.RUnlock()
	owner, known := s.topics.get(resource)
	if identity != iampolicy.Allow || (known && owner != p.Account) {
		s.stats.add(op, outcomeDenied)
		why := "because no identity-based policy allows the " + action + " action"
		if identity == iampolicy.Deny {
			why = "with an explicit deny in an identity-based policy"
		} else if identity == iampolicy.Allow {
			why = "because the topic belongs to another account"
		}
		s.log.Debug().Str("op", op).Str("principal", p.ARN).Str("resource", resource).Msg("sns call denied")
		writeError(w, r, svcSNS, apiError{Status: http.StatusForbidden, Code: "AuthorizationError",
			Message: "User: " + p.ARN + " is not authorized to perform: " + action + " on resource: " + resource + " " + why})
		return
	}
	st := &gateState{op: op}
	if form.Get("Action") == "CreateTopic" {
		st.onResponse = func(resp *http.Response) {
			if resp.StatusCode != http.StatusOK {
				return
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody))
			_ = resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if err == nil {
				if m := topicARNInResponse.FindSubmatch(body); m != nil {
					s.topics.set(string(m[1]), p.Account)
				}
			}
		}
	}
	s.forward(w, r, st)
}

// SNSClient returns an SNS client signing as acct in region.
func (s *Stack) SNSClient(acct Account, region string) *sns.Client {
	return sns.NewFromConfig(s.Config(acct, region))
}
