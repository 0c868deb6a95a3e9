package cluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRedisSecretScript runs hack/redis-secret.sh, the one writer of the Secret usher-redis that
// Usher and the in-cluster Valkey read, against the real API server with kubectl (from PATH, or
// built from this module's pinned Kubernetes as hack/lib.sh does): a check that fails while the
// Secret is the manifests' empty placeholder; --in-cluster writing the URL the Valkey Service
// answers at and a random password, once; --rotate; an external URL with a password from a file
// (which never appears in the output), then without one (the password key goes); and re-applying
// the manifests leaving the data alone.
func TestRedisSecretScript(t *testing.T) {
	c := requireCluster(t)
	c.applyOverlay(t, "kind")
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, c.env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(repoRoot(t), "hack", "redis-secret.sh")
	run := func(t *testing.T, stdin string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "KUBECTL_CONTEXT=")
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	secret := func(t *testing.T) map[string]string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := c.kube.CoreV1().Secrets("usher-system").Get(ctx, "usher-redis", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Labels["app.kubernetes.io/name"] != "usher" {
			t.Errorf("the Secret lost the manifests' labels: %v", s.Labels)
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out
	}
	host, port := inClusterRedisAddr(t)
	wantURL := "redis://" + host + ":" + strconv.Itoa(port) + "/0"
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)

	// Start from the manifests' placeholder, whatever an earlier run (-count) left.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	placeholder := find(t, objectsOf(t, "kind"), "Secret", "usher-system", "usher-redis")
	if err := c.kube.CoreV1().Secrets("usher-system").Delete(ctx, "usher-redis", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := c.applyStrict(ctx, placeholder, false); err != nil {
		t.Fatal(err)
	}

	if out, err := run(t, "", "--url", "http://x"); err == nil || !strings.Contains(out, "redis:// or rediss://") {
		t.Fatalf("--url http://x: %v, %q; want refused", err, out)
	}
	if d := secret(t); len(d) != 0 {
		t.Fatalf("the placeholder holds %v before the script ran", d)
	}
	if out, err := run(t, ""); err == nil || !strings.Contains(out, "holds no Redis URL") {
		t.Fatalf("check on the empty placeholder: %v, %q; want a failure naming what to run", err, out)
	}

	out, err := run(t, "", "--in-cluster")
	if err != nil {
		t.Fatalf("--in-cluster: %v\n%s", err, out)
	}
	d := secret(t)
	if d["url"] != wantURL || !hex64.MatchString(d["password"]) {
		t.Fatalf("after --in-cluster: url %q, password of %d characters; want %q and 64 hex digits", d["url"], len(d["password"]), wantURL)
	}
	first := d["password"]
	if strings.Contains(out, first) {
		t.Error("the output shows the password")
	}
	if out, err := run(t, "", "--in-cluster"); err != nil || secret(t)["password"] != first {
		t.Errorf("--in-cluster again: %v, %s; want the password kept", err, out)
	}
	if out, err := run(t, "", "--in-cluster", "--rotate"); err != nil || secret(t)["password"] == first || !hex64.MatchString(secret(t)["password"]) {
		t.Errorf("--in-cluster --rotate: %v, %s; want a new random password", err, out)
	}

	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("file-password-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const external = "rediss://usher:url-password-4567@redis.home.arpa:6380/1"
	out, err = run(t, "", "--url", external, "--password-file", pwFile)
	if err != nil {
		t.Fatalf("--url … --password-file: %v\n%s", err, out)
	}
	if d := secret(t); d["url"] != external || d["password"] != "file-password-0123" {
		t.Errorf("after --url with --password-file: %v", d)
	}
	if strings.Contains(out, "url-password-4567") || strings.Contains(out, "file-password-0123") || !strings.Contains(out, "rediss://redis.home.arpa:6380/1") {
		t.Errorf("output %q: want the URL without its user and password, and no password", out)
	}
	if out, err := run(t, "from-stdin-89\n", "--url", "redis://redis.home.arpa:6379/0", "--password-file", "-"); err != nil || secret(t)["password"] != "from-stdin-89" {
		t.Errorf("--password-file -: %v, %s, password %q", err, out, secret(t)["password"])
	}
	if out, err := run(t, "", "--url", "redis://redis.home.arpa:6379/0"); err != nil {
		t.Errorf("--url alone: %v\n%s", err, out)
	} else if d := secret(t); d["url"] != "redis://redis.home.arpa:6379/0" || len(d) != 1 {
		t.Errorf("after --url alone: %v; want the url and no password", d)
	}

	// Re-applying the manifests (their placeholder, another field manager) keeps the data.
	if err := c.applyStrict(ctx, placeholder, false); err != nil {
		t.Fatal(err)
	}
	if d := secret(t); d["url"] != "redis://redis.home.arpa:6379/0" {
		t.Errorf("after re-applying the manifests: %v; want the data kept", d)
	}
	if out, err := run(t, ""); err != nil || !strings.Contains(out, "holds a Redis URL") {
		t.Errorf("check with a URL: %v, %q", err, out)
	}
}
