// Package render writes ferry's answers for people (-o text): tables,
// reports and the setup steps a customer is sent. Machine formats (-o json,
// -o yaml) come from the same values through internal/output; the command
// chooses which.
package render

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/queue"
)

// CheckReport writes one check-access answer for people: the URI, whether
// it is readable, how ferry reads it, and for a refusal the stage, the AWS
// code and the hint the customer can act on.
func CheckReport(w io.Writer, r fetcher.CheckReport) {
	status := "READABLE"
	if !r.OK {
		status = "NOT READABLE"
	}
	fmt.Fprintf(w, "%s\n  %s\n", r.URI, status)
	if r.Location != nil {
		fmt.Fprintf(w, "  parsed:       %s\n", r.Location.String())
	}
	if r.Mode != "" {
		fmt.Fprintf(w, "  mode:         %s\n", r.Mode)
	}
	if r.AssumeRole != "" {
		fmt.Fprintf(w, "  assume role:  %s\n", r.AssumeRole)
	}
	if r.ExpectedBucketOwner != "" {
		fmt.Fprintf(w, "  bucket owner: %s (expected)\n", r.ExpectedBucketOwner)
	}
	if r.Region != "" {
		fmt.Fprintf(w, "  region:       %s\n", r.Region)
	}
	if r.Object != nil {
		fmt.Fprintf(w, "  object:       %d bytes, %s\n", r.Object.Size, r.Object.ContentType)
	}
	if e := r.Error; e != nil {
		fmt.Fprintf(w, "  error:        %s at %s: %s %s\n", e.Kind, e.Stage, e.Code, e.Message)
		if e.Hint != "" {
			fmt.Fprintf(w, "  hint:         %s\n", e.Hint)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "  note:         %s\n", r.Note)
		}
	}
}

// VerifyReport writes an integration verification for people: a line
// naming the customer, its access mode and account, then one line per
// check with ok or the refusal and the hint to send the customer.
func VerifyReport(w io.Writer, rep fetcher.VerifyReport) {
	if e := rep.Error; e != nil {
		fmt.Fprintf(w, "%s: cannot verify: %s\n", rep.CustomerID, e.Message)
		if e.Hint != "" {
			fmt.Fprintf(w, "  hint: %s\n", e.Hint)
		}
		return
	}
	head := fmt.Sprintf("%s: %s", rep.CustomerID, rep.Mode)
	if rep.AccountID != "" {
		head += ", account " + rep.AccountID
	}
	if rep.Attempts > 1 {
		head += fmt.Sprintf(", %d attempts", rep.Attempts)
	}
	fmt.Fprintln(w, head)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, chk := range rep.Checks {
		result := "ok"
		if e := chk.Error; e != nil {
			result = string(e.Kind)
			if e.Code != "" {
				result += ": " + e.Code
			}
			if e.Message != "" {
				result += ": " + e.Message
			}
			if e.Hint != "" {
				result += "; hint: " + e.Hint
			}
			if chk.Note != "" {
				result += "; note: " + chk.Note
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", chk.Check, chk.Target, result)
	}
	_ = tw.Flush()
}

// Event writes one event for people: a summary line and one indented
// line per attachment, with the hint when it failed.
func Event(w io.Writer, ev queue.Event) {
	fmt.Fprintf(w, "%s  %-19s %-10s %s", ev.OccurredAt.Local().Format(time.TimeOnly), ev.Type, ev.CustomerID, ev.TaskID)
	if ev.Reason != "" {
		fmt.Fprintf(w, "  reason=%s", ev.Reason)
	}
	fmt.Fprintln(w)
	for _, at := range ev.Attachments {
		switch {
		case at.Error == nil:
			fmt.Fprintf(w, "    %-13s %-13s %s -> %s (%d bytes)\n", at.Status, at.Mode, at.Source, at.Stored, at.Size)
		default:
			fmt.Fprintf(w, "    %-13s %-13s %s  [%s %s]\n", at.Status, at.Mode, at.Source, at.Error.Stage, at.Error.Code)
			if at.Error.Hint != "" {
				fmt.Fprintf(w, "                  hint: %s\n", at.Error.Hint)
			}
		}
	}
}

// Integrations writes a table of integrations; withExternalID adds the
// external ID column (show has it, list leaves the secret out), statuses
// (list) add STATUS, LAST USED and LAST ERROR.
func Integrations(w io.Writer, all []credcache.Integration, statuses map[string]credcache.IntegrationStatus, withExternalID bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withExternalID {
		fmt.Fprintln(tw, "CUSTOMER\tACCOUNT\tMODE\tROLE\tEXTERNAL ID\tUPDATED")
	} else {
		fmt.Fprintln(tw, "CUSTOMER\tACCOUNT\tMODE\tROLE\tUPDATED\tSTATUS\tLAST USED\tLAST ERROR")
	}
	for _, in := range all {
		mode, role := fetcher.ModeCrossAccount, "-"
		if in.Enabled {
			mode, role = fetcher.ModeDelegated, in.RoleName
		}
		acct := in.AccountID
		if acct == "" {
			acct = "-"
		}
		if withExternalID {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.CustomerID, acct, mode, role, in.ExternalID, in.UpdatedAt.Format("2006-01-02 15:04"))
		} else {
			st := statuses[in.CustomerID]
			if st.Status == "" {
				st.Status = credcache.StatusPending
			}
			lastErr := "-"
			if e := st.LastError; e != nil {
				lastErr = e.Summary() + " " + e.At.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.CustomerID, acct, mode, role, in.UpdatedAt.Format("2006-01-02 15:04"),
				st.Status, TimeOrDash(st.LastUsed), lastErr)
		}
	}
	_ = tw.Flush()
}

// Indent prefixes every line of s with pad.
func Indent(s, pad string) string {
	out := pad
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += pad
		}
	}
	return out
}

// RotationSteps is what the customer must do during a rotation.
func RotationSteps(w io.Writer, in credcache.Integration, fleet, both string) error {
	_, err := fmt.Fprintf(w, `External ID rotation started for %s.

Send the customer these steps:

 1. Change the trust policy of the role %s to accept
    both the new and the old external ID:
%s
 2. Once that is saved, change it to accept only the new external ID:
%s
 3. Tell us, and we finish the rotation.

Until then ferry presents the new external ID first and falls back to the old
one; the old one stops working at %s, or when you run
    ferry integration rotate-external-id %s --finish
`, in.CustomerID, in.RoleARN(), Indent(both, "      "), Indent(credcache.TrustPolicy(fleet, in.ExternalID), "      "),
		in.PreviousExternalIDExpires.Format(time.RFC3339), in.CustomerID)
	return err
}

// TrustPolicy is `integration show`'s account of what the customer's role must
// trust: every external ID ferry presents now, and the state of a rotation.
func TrustPolicy(w io.Writer, in credcache.Integration, fleet string, now time.Time) {
	ids := in.ExternalIDs(now)
	if len(ids) == 0 || in.AccountID == "" {
		return
	}
	if fleet == "" {
		fleet = "FLEET_ACCOUNT_ID"
	}
	fmt.Fprintf(w, "\ntrust policy the role %s must have:\n%s\n", in.RoleARN(), Indent(credcache.TrustPolicy(fleet, ids...), "  "))
	switch {
	case in.Rotating(now):
		fmt.Fprintf(w, "external ID rotation in progress: the old ID is presented after the new one until %s;\n"+
			"once the trust policy accepts the new one alone: ferry integration rotate-external-id %s --finish\n",
			in.PreviousExternalIDExpires.Format(time.RFC3339), in.CustomerID)
	case in.PreviousExternalID != "":
		fmt.Fprintf(w, "external ID rotation expired at %s: the old ID is no longer presented (clean up with `ferry integration rotate-external-id %s --finish`)\n",
			in.PreviousExternalIDExpires.Format(time.RFC3339), in.CustomerID)
	}
}

// Verification tells the customer how to prove bucket ownership and
// lists the buckets already verified.
func Verification(w io.Writer, in credcache.Integration) {
	if in.VerificationToken == "" {
		return
	}
	fmt.Fprintf(w, "\nverification token: %s\n", in.VerificationToken)
	fmt.Fprintf(w, "  to prove control of a bucket, the customer puts it at s3://BUCKET/%s, then: ferry integration verify-bucket %s BUCKET\n",
		credcache.VerificationKey(in.CustomerID), in.CustomerID)
	for _, v := range in.VerifiedBuckets {
		state := "verified"
		if v.AccountID != in.AccountID {
			state = "verified under a former account, not counted"
		}
		fmt.Fprintf(w, "  %s: %s (account %s, %s)\n", v.Bucket, state, v.AccountID, v.VerifiedAt.Format("2006-01-02 15:04"))
	}
}

// SendResult writes enqueue's line for one task: its id, and the message id
// SQS gave it or why it was not enqueued.
func SendResult(w io.Writer, r queue.SendResult) error {
	if r.Err != nil {
		_, err := fmt.Fprintf(w, "%-24s error     %v\n", r.TaskID, r.Err)
		return err
	}
	_, err := fmt.Fprintf(w, "%-24s enqueued  %s\n", r.TaskID, r.MessageID)
	return err
}

// Setup writes what support sends a customer once delegated access is
// enabled: the role to create in their account, trusting the fleet's
// account fleet (trustPolicy), the permission policy readPolicy for bucket,
// and how to check it. The external ID is shown only here.
func Setup(w io.Writer, in credcache.Integration, fleet, trustPolicy, readPolicy, bucket string) error {
	_, err := fmt.Fprintf(w, `Delegated access enabled for %s.

Send the customer these steps (they are shown the external ID only now):

 1. In AWS account %s, create an IAM role:
      type:             another AWS account, account ID %s
      require external ID: yes, %s
      require MFA:      no
      role name:        %s
 2. Attach a permission policy that lets the role read the bucket:
%s
 3. The role's trust policy must read:
%s

ferry will assume %s.
Check it with: ferry check-access --customer %s s3://%s/SOME_KEY
(or send a ready-made template: the same command with -o cloudformation or -o terraform)
`, in.CustomerID, in.AccountID, fleet, in.ExternalID, in.RoleName,
		Indent(readPolicy, "      "), Indent(trustPolicy, "      "), in.RoleARN(), in.CustomerID, bucket)
	return err
}

// StatusDetail is the status part of `ferry integration show`: when the
// integration was last used, succeeded and verified, and its last error.
func StatusDetail(w io.Writer, st credcache.IntegrationStatus) {
	fmt.Fprintf(w, "\nstatus:          %s\n", st.Status)
	fmt.Fprintf(w, "last used:       %s\n", TimeOrDash(st.LastUsed))
	fmt.Fprintf(w, "last success:    %s\n", TimeOrDash(st.LastSuccess))
	fmt.Fprintf(w, "last verified:   %s\n", TimeOrDash(st.LastVerified))
	if st.AssumeRoleFailures > 0 {
		fmt.Fprintf(w, "refused tasks:   %d in a row at assume_role\n", st.AssumeRoleFailures)
	}
	if e := st.LastError; e != nil {
		fmt.Fprintf(w, "last error:      %s, %s: %s\n", e.Summary(), e.At.UTC().Format(time.RFC3339), e.Message)
		if e.Hint != "" {
			fmt.Fprintf(w, "hint:            %s\n", e.Hint)
		}
	}
}

// TimeOrDash is t in UTC to the minute, or "-" when zero.
func TimeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
