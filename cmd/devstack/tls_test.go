package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferryworks/ferry/internal/demo"
)

// lookTool finds an external client the test drives. `make test` installs
// the ones it needs; run by hand without them the test is skipped, in CI it
// fails.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed but CI is set: `make test` installs it", name)
		}
		t.Skipf("%s is not installed; `make test` installs it", name)
	}
	return p
}

// startBinary runs the devstack binary with args until it prints "devstack
// ready", and stops it (SIGTERM, clean exit expected) at cleanup.
func startBinary(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	sc := bufio.NewScanner(stderrPipe)
	ready := false
	for sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if sc.Text() == "devstack ready" {
			ready = true
			break
		}
	}
	if !ready {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("devstack never became ready:\n%s", logs.String())
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stderrPipe); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if err := cmd.Wait(); err != nil {
			t.Errorf("devstack exit after SIGTERM: %v", err)
		}
	})
}

// `devstack -tls` as a user drives it: a shell sources the env file and
// runs the aws CLI and rclone with no flag about certificates or endpoints.
// The caller's environment stays as it is (this machine image sets
// AWS_CA_BUNDLE to the system bundle, which the env file must override).
func TestTLSFromEnvFile(t *testing.T) {
	t.Parallel()
	awsCLI := lookTool(t, "aws")
	rclone := lookTool(t, "rclone")
	bin := builtDevstack.Path(t)
	dir := t.TempDir()
	envFile, manifestFile := filepath.Join(dir, ".devstack.env"), filepath.Join(dir, "manifest.json")
	env := append(environWithout("FERRY_REDIS_URL", "HOME"), "HOME="+dir)
	startBinary(t, bin, env, "-tls", "-addr", "127.0.0.1:0", "-env-file", envFile, "-manifest", manifestFile)

	envData, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := demo.ParseEnvScript(bytes.NewReader(envData))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(vars["AWS_ENDPOINT_URL"], "https://127.0.0.1:") {
		t.Fatalf("AWS_ENDPOINT_URL %q, want https", vars["AWS_ENDPOINT_URL"])
	}
	ca := filepath.Join(dir, ".devstack-ca.pem")
	if vars["AWS_CA_BUNDLE"] != ca || vars["RCLONE_CA_CERT"] != ca {
		t.Fatalf("AWS_CA_BUNDLE %q, RCLONE_CA_CERT %q, want both %q (beside the env file)", vars["AWS_CA_BUNDLE"], vars["RCLONE_CA_CERT"], ca)
	}
	var m demo.Manifest
	if data, err := os.ReadFile(manifestFile); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	globex, _ := m.Customer("globex")

	out := filepath.Join(dir, "out")
	script := `set -eu
. "$ENV_FILE"
aws sts get-caller-identity --query Account --output text
aws s3 cp "s3://globex-data/docs/readme.txt" "$OUT.aws"
aws sqs send-message --queue-url "$FERRY_QUEUE_URL" --message-body from-the-cli --query MessageId --output text
aws sqs receive-message --queue-url "$FERRY_QUEUE_URL" --wait-time-seconds 5 --query 'Messages[0].Body' --output text
rclone copyto "devstack:globex-data/docs/readme.txt" "$OUT.rclone" --no-traverse -q
# Uploads: over https the aws CLI sends aws-chunked bodies with a trailing
# CRC32 (put-object: SHA-256); each comes back as sent.
head -c 3000000 /dev/urandom > "$OUT.up"
aws s3 cp "$OUT.up" s3://ferry-internal/cli/cp >/dev/null
aws s3api put-object --bucket ferry-internal --key cli/put --body "$OUT.up" --checksum-algorithm SHA256 >/dev/null
rclone copyto "$OUT.up" devstack:ferry-internal/cli/rclone -q
aws s3 cp --recursive s3://ferry-internal/cli/ "$OUT.back/" >/dev/null
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(env, "ENV_FILE="+envFile, "OUT="+out, "PATH="+filepath.Dir(awsCLI)+":"+filepath.Dir(rclone)+":"+os.Getenv("PATH"))
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws CLI / rclone from the env file: %v\n%s", err, got)
	}
	lines := strings.Fields(string(got))
	if len(lines) < 3 || lines[0] != m.FleetAccountID || lines[len(lines)-1] != "from-the-cli" {
		t.Errorf("CLI output %q: want the fleet account first and the sent message last", got)
	}
	up, err := os.ReadFile(out + ".up")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cp", "put", "rclone"} {
		back, err := os.ReadFile(filepath.Join(out+".back", k))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, up) {
			t.Errorf("upload %s: %d bytes back, %d sent, or they differ", k, len(back), len(up))
		}
	}
	for _, tool := range []string{"aws", "rclone"} {
		b, err := os.ReadFile(out + "." + tool)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != globex.SHA256["docs/readme.txt"] {
			t.Errorf("%s downloaded %d bytes that differ from the seeded object", tool, len(b))
		}
	}
}
