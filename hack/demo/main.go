// Command demo replays the order-service incident against a real local kube-apiserver + etcd: an
// ExternalSecret that cannot sync, `kubectl apply` of the Deployment denied by `credchain webhook`
// with the reason, the ExternalSecret recovering, the same apply admitted. It cleans up after itself.
//
// Run it with `make demo`, which builds the servers (hack/testbin.sh) and credchain first.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/testenv"
)

func main() {
	credchain := flag.String("credchain", "bin/credchain", "credchain binary")
	manifests := flag.String("manifests", "manifests/default", "directory with the ValidatingWebhookConfiguration")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *credchain, *manifests)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

type demo struct {
	kubectl, kubeconfig, dir string
}

func say(format string, a ...any) { fmt.Printf("\n\033[1m==> "+format+"\033[0m\n", a...) }

// sh shows a command the way a person would type it and runs it; expectFail marks the denials.
func (d *demo) kubectlRun(stdin string, expectFail bool, args ...string) (string, error) {
	fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
	cmd := exec.Command(d.kubectl, append([]string{"--kubeconfig", d.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	fmt.Print(indent(out.String()))
	if expectFail && err == nil {
		return out.String(), errors.New("kubectl succeeded but should have been denied")
	}
	if !expectFail && err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w", args[0], err)
	}
	return out.String(), nil
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func run(ctx context.Context, credchain, manifests string) error {
	assets, err := testenv.Assets()
	if err != nil {
		return fmt.Errorf("%w (run `make testbin`)", err)
	}
	crds, err := testenv.CRDFiles()
	if err != nil {
		return err
	}
	say("Part 1 — the symptom. Starting a real kube-apiserver v%s + etcd v%s with ESO %s's CRDs and credchain's ValidatingWebhookConfiguration",
		testenv.K8sVersion, testenv.EtcdVersion, testenv.ESOVersion)
	env := &envtest.Environment{
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: crds},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(manifests, "validatingwebhookconfiguration.yaml")}},
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	defer func() {
		say("Cleaning up: stopping credchain, kube-apiserver and etcd")
		_ = env.Stop()
	}()
	dir, err := os.MkdirTemp("", "credchain-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	user, err := env.AddUser(envtest.User{Name: "platform-engineer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	d := &demo{kubectl: filepath.Join(assets, "kubectl"), kubeconfig: filepath.Join(dir, "kubeconfig"), dir: dir}
	if err := os.WriteFile(d.kubeconfig, kc, 0o600); err != nil {
		return err
	}

	wio := env.WebhookInstallOptions
	health := freeAddr()
	say("Starting credchain webhook (https://%s:%d/validate)", wio.LocalServingHost, wio.LocalServingPort)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wh := exec.CommandContext(wctx, credchain, "webhook", "--kubeconfig", d.kubeconfig,
		"--host", wio.LocalServingHost, "--port", fmt.Sprint(wio.LocalServingPort), "--cert-dir", wio.LocalServingCertDir,
		"--health-addr", health, "--metrics-addr", freeAddr())
	logf, err := os.Create(filepath.Join(dir, "webhook.log"))
	if err != nil {
		return err
	}
	wh.Stdout, wh.Stderr = logf, logf
	wh.Cancel = func() error { return wh.Process.Signal(syscall.SIGTERM) }
	if err := wh.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", credchain, err)
	}
	defer func() { cancel(); _ = wh.Wait() }()
	if err := waitReady(ctx, "http://"+health+"/readyz"); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("credchain webhook never became ready: %w\n%s", err, log)
	}
	fmt.Println("    /readyz: ok (informer caches synced)")

	say("The platform: namespace prod, ExternalSecret order-service-regcred writing the pull secret regcred-order-service")
	steps := []struct {
		stdin      string
		expectFail bool
		args       []string
		narrate    string
	}{
		{args: []string{"create", "namespace", "prod"}},
		{stdin: storeYAML, args: []string{"apply", "-f", "-"}},
		{stdin: externalSecretYAML, args: []string{"apply", "-f", "-"}},
		{narrate: "Someone deletes Vault policy eso-order-service. ESO's next refresh gets 403 and marks the ExternalSecret " +
			"not synced (here we write the status ESO writes; the e2e runs the real ESO against a real Vault)"},
		{args: []string{"patch", "externalsecret", "order-service-regcred", "-n", "prod", "--subresource=status", "--type=merge",
			"-p", statusPatch("False", "SecretSyncedError", "could not get secret data from provider")}},
		{stdin: eventYAML, args: []string{"create", "-f", "-"}},
		{args: []string{"get", "externalsecret", "order-service-regcred", "-n", "prod"}},
		{narrate: "Someone runs the rollout. Without credchain, the pods would sit in ImagePullBackOff once the old credential expires. With it:"},
		{stdin: testenv.OrderServiceDeployment, expectFail: true, args: []string{"apply", "-f", "-"}},
		{narrate: "The runbook's fix: restore the policy, force a resync; ESO reports SecretSynced"},
		{args: []string{"patch", "externalsecret", "order-service-regcred", "-n", "prod", "--subresource=status", "--type=merge",
			"-p", statusPatch("True", "SecretSynced", "secret synced")}},
		{args: []string{"get", "externalsecret", "order-service-regcred", "-n", "prod"}},
		{narrate: "The same apply is now admitted"},
		{stdin: testenv.OrderServiceDeployment, args: []string{"apply", "-f", "-"}},
	}
	for _, s := range steps {
		if s.narrate != "" {
			say("%s", s.narrate)
			continue
		}
		var out string
		var err error
		// The webhook reads informers; give a status change a moment to arrive before the apply.
		for attempt := 0; attempt < 40; attempt++ {
			out, err = d.kubectlRun(s.stdin, s.expectFail, s.args...)
			if err == nil || !strings.Contains(strings.Join(s.args, " "), "apply -f -") || s.stdin != testenv.OrderServiceDeployment {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		if s.expectFail && !strings.Contains(out, "pullsecrets.credchain.io\" denied the request") {
			return fmt.Errorf("apply failed, but not by credchain: %s", out)
		}
	}
	say("credchain said at apply time what Kubernetes would only have shown as ImagePullBackOff")
	if err := runGuard(ctx, credchain, manifests, dir, d.kubeconfig); err != nil {
		return err
	}
	say("Done: the webhook stops the broken rollout; the audit guard undoes the delete that broke it")
	return nil
}

func statusPatch(status, reason, msg string) string {
	now := time.Now().UTC().Format(time.RFC3339)
	return fmt.Sprintf(`{"status":{"refreshTime":%q,"conditions":[{"type":"Ready","status":%q,"reason":%q,"message":%q,"lastTransitionTime":%q}]}}`,
		now, status, reason, msg, now)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("timeout after 60s")
}

const storeYAML = `apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: vault
spec:
  provider:
    vault:
      server: http://vault.vault:8200
      path: registry-creds
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: external-secrets-operator
          serviceAccountRef: {name: external-secrets, namespace: external-secrets}
`

const externalSecretYAML = `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: order-service-regcred
  namespace: prod
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: vault
    kind: ClusterSecretStore
  target:
    name: regcred-order-service
    template:
      type: kubernetes.io/dockerconfigjson
      data:
        .dockerconfigjson: '{"auths":{"registry.internal:5000":{"username":"{{ .username }}","password":"{{ .password }}"}}}'
  data:
    - secretKey: username
      remoteRef: {key: order-service, property: username}
    - secretKey: password
      remoteRef: {key: order-service, property: password}
`

const eventYAML = `apiVersion: v1
kind: Event
metadata:
  generateName: order-service-regcred.
  namespace: prod
involvedObject:
  apiVersion: external-secrets.io/v1
  kind: ExternalSecret
  name: order-service-regcred
  namespace: prod
type: Warning
reason: UpdateFailed
message: "error processing spec.data[1] (key: order-service), err: Error making API request.\n\nURL: GET http://vault.vault:8200/v1/registry-creds/data/order-service\nCode: 403. Errors:\n\n* 1 error occurred:\n\t* permission denied\n\n"
source:
  component: external-secrets
`
