package credcache

import "encoding/json"

// TrustPolicy is the trust policy of the customer's integration role: the
// fleet's account may assume it when it presents externalID. It is what the
// AWS console produces for "another AWS account" + "require external ID".
func TrustPolicy(fleetAccountID, externalID string) string {
	return policyJSON(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": "arn:aws:iam::" + fleetAccountID + ":root"},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": externalID}},
		}},
	})
}

// RolePolicy is the sample permission policy of the integration role: read
// objects and list the bucket (so a missing key reads as 404, not 403).
// Statement ids say what the statement grants, in the letters and digits IAM
// allows in a Sid:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html
func RolePolicy(bucket string) string {
	return policyJSON(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":      "ScaleReadObjectsAndListBucket",
			"Action":   []string{"s3:GetObject", "s3:ListBucket"},
			"Effect":   "Allow",
			"Resource": []string{"arn:aws:s3:::" + bucket + "/*", "arn:aws:s3:::" + bucket},
		}},
	})
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

func policyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // static shapes of strings and maps always marshal
	}
	return string(b)
}
