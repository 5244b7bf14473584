package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ferryworks/ferry/internal/awscli"
	"github.com/ferryworks/ferry/internal/demo"
)

// startSeededBinary runs the devstack binary with args until "devstack ready" and
// returns its manifest and exported variables; it is killed at cleanup.
func startSeededBinary(t *testing.T, bin string, args ...string) (demo.Manifest, map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	envFile, manifestFile := filepath.Join(dir, "env"), filepath.Join(dir, "manifest.json")
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-env-file", envFile, "-manifest", manifestFile}, args...)...)
	cmd.Env = environWithout("FERRY_REDIS_URL", "AWS_ENDPOINT_URL")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var logs strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if sc.Text() == "devstack ready" {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			envData, err := os.ReadFile(envFile)
			if err != nil {
				t.Fatal(err)
			}
			vars, err := demo.ParseEnvScript(strings.NewReader(string(envData)))
			if err != nil {
				t.Fatal(err)
			}
			var m demo.Manifest
			data, err := os.ReadFile(manifestFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("manifest: %v", err)
			}
			return m, vars, manifestFile
		}
	}
	t.Fatalf("devstack never became ready:\n%s", logs.String())
	return demo.Manifest{}, nil, ""
}

// With only the manifest, anyone can act as a customer: the demo accounts'
// and the spare accounts' admin keys drive the aws CLI, and -iam-delay holds
// a new role back from STS while IAM already shows it.
// Not parallel: aws CLI round trips would hold a parallel slot long enough
// to run the contexts of waiting tests out on a loaded machine.
func TestBinaryCustomerAccounts(t *testing.T) {
	bin := builtDevstack.Path(t)
	m, vars, manifestFile := startSeededBinary(t, bin, "-accounts", "2", "-iam-delay", "10m")
	if st, err := os.Stat(manifestFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("manifest with admin keys: %v, mode %v, want 0600", err, st.Mode())
	}
	if len(m.SpareAccounts) != 2 || m.SpareAccounts[0].AccountID != demo.SpareAccountID(1) || m.SpareAccounts[1].AdminSecretAccessKey == "" {
		t.Fatalf("spare accounts: %+v", m.SpareAccounts)
	}
	acme, _ := m.Customer("acme")
	cli := func(keyID, secret string) *awscli.Session {
		return awscli.Start(t, map[string]string{"AWS_ENDPOINT_URL": vars["AWS_ENDPOINT_URL"], "AWS_ACCESS_KEY_ID": keyID,
			"AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": m.Region})
	}
	if out := cli(acme.AdminAccessKeyID, acme.AdminSecretAccessKey).Run(t, "s3api", "list-buckets", "--query", "Buckets[].Name", "--output", "text"); strings.TrimSpace(out) != acme.Bucket {
		t.Errorf("acme's admin keys list %q, want its bucket %s", out, acme.Bucket)
	}

	spare := m.SpareAccounts[0]
	c := cli(spare.AdminAccessKeyID, spare.AdminSecretAccessKey)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + m.FleetAccountID +
		`:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"spare-ext-1"}}}]}`
	roleARN := strings.TrimSpace(c.Run(t, "iam", "create-role", "--role-name", "ScaleAI-Integration",
		"--assume-role-policy-document", trust, "--query", "Role.Arn", "--output", "text"))
	if roleARN != "arn:aws:iam::"+spare.AccountID+":role/ScaleAI-Integration" {
		t.Fatalf("role arn %q", roleARN)
	}
	if out := c.Run(t, "iam", "get-role", "--role-name", "ScaleAI-Integration", "--query", "Role.CreateDate", "--output", "text"); strings.TrimSpace(out) == "" {
		t.Error("get-role shows no CreateDate")
	}
	fleet := sts.New(sts.Options{Region: m.Region, BaseEndpoint: aws.String(vars["AWS_ENDPOINT_URL"]), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], "")})
	_, err := fleet.AssumeRole(t.Context(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("ferry-spare"),
		ExternalId: aws.String("spare-ext-1")})
	if err == nil {
		t.Fatal("a role created within -iam-delay was assumed")
	}
}
