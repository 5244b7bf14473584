package credcache

import "encoding/json"

// TrustPolicy is the trust policy of the customer's integration role: the
// fleet's account may assume it when it presents one of externalIDs. With one
// ID it is what the AWS console produces for "another AWS account" +
// "require external ID"; with several (an external ID rotation, newest
// first) the condition lists them all, which IAM reads as "any of":
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
func TrustPolicy(fleetAccountID string, externalIDs ...string) string {
	return policyJSON(TrustPolicyDocument(fleetAccountID, externalIDs...))
}

// TrustPolicyDocument is TrustPolicy as a value, for templates that embed
// the document rather than its JSON text.
func TrustPolicyDocument(fleetAccountID string, externalIDs ...string) map[string]any {
	var ext any = externalIDs
	if len(externalIDs) == 1 {
		ext = externalIDs[0]
	}
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": "arn:aws:iam::" + fleetAccountID + ":root"},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": ext}},
		}},
	}
}

// RolePolicy is the sample permission policy of the integration role: read
// objects and list the bucket (so a missing key reads as 404, not 403).
// Statement ids say what the statement grants, in the letters and digits IAM
// allows in a Sid:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html
func RolePolicy(bucket string) string {
	return policyJSON(ReadPolicyDocument([]string{bucket}, nil))
}

// ReadPolicyDocument is the integration role's permission policy for several
// buckets (RolePolicy's statement, naming each) and, when kmsKeyARNs is not
// empty, a second statement allowing kms:Decrypt on those keys, which
// reading SSE-KMS objects needs unless the key policy names the role itself.
func ReadPolicyDocument(buckets, kmsKeyARNs []string) map[string]any {
	resources := make([]string, 0, 2*len(buckets))
	for _, b := range buckets {
		resources = append(resources, "arn:aws:s3:::"+b+"/*", "arn:aws:s3:::"+b)
	}
	statements := []any{map[string]any{
		"Sid":      "ScaleReadObjectsAndListBucket",
		"Action":   []string{"s3:GetObject", "s3:ListBucket"},
		"Effect":   "Allow",
		"Resource": resources,
	}}
	if len(kmsKeyARNs) > 0 {
		statements = append(statements, map[string]any{
			"Sid":      "ScaleDecryptObjects",
			"Action":   "kms:Decrypt",
			"Effect":   "Allow",
			"Resource": append([]string(nil), kmsKeyARNs...),
		})
	}
	return map[string]any{"Version": "2012-10-17", "Statement": statements}
}

// BucketPolicy is the sample bucket policy for cross-account access: the
// fleet's account may read objects (GetObject only, so a missing key answers
// 403).
func BucketPolicy(bucket, fleetAccountID string) string {
	return policyJSON(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "ScaleFleetReadObjects",
			"Action":    []string{"s3:GetObject"},
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": []string{"arn:aws:iam::" + fleetAccountID + ":root"}},
			"Resource":  "arn:aws:s3:::" + bucket + "/*",
		}},
	})
}

// PolicyJSON is the indented JSON text of a policy document made by this
// file, as ferry prints it and the customer pastes it.
func PolicyJSON(doc map[string]any) string { return policyJSON(doc) }

func policyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // static shapes of strings and maps always marshal
	}
	return string(b)
}
