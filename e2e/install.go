package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/internal/testenv"
)

// install applies manifests/default the way a cluster admin would, with one change an
// out-of-cluster run needs: the ValidatingWebhookConfiguration calls the webhook by URL on loopback
// instead of through its Service. The webhook's and guard's container args and env are kept to run
// them as processes, and each runs as its ServiceAccount (a token from TokenRequest), so the
// install's RBAC is what they get.
func (s *Stack) install(ctx context.Context) error {
	var err error
	if s.webhookAdr, err = testenv.FreeAddr(); err != nil {
		return err
	}
	s.Narrator.Step("Installing credchain: kubectl apply --server-side -k %s (webhook called at https://%s/validate)",
		filepath.Join(s.Manifests, "default"), s.webhookAdr)
	rendered, err := s.quietKubectl(ctx, "", "kustomize", filepath.Join(s.Manifests, "default"))
	if err != nil {
		return err
	}
	objs, err := decodeAll(rendered)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for _, o := range objs {
		switch o.GetKind() {
		case "ValidatingWebhookConfiguration":
			hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for i := range hooks {
				h := hooks[i].(map[string]any)
				h["clientConfig"] = map[string]any{"url": "https://" + s.webhookAdr + "/validate"}
			}
			if err := unstructured.SetNestedSlice(o.Object, hooks, "webhooks"); err != nil {
				return err
			}
		case "Deployment":
			args, env, err := containerArgs(o)
			if err != nil {
				return err
			}
			switch o.GetName() {
			case "credchain-webhook":
				s.webhookArgs = args
			case "credchain-auditguard":
				s.guardArgs, s.guardEnv = args, env
			}
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	if s.webhookArgs == nil || s.guardArgs == nil {
		return fmt.Errorf("%s: no credchain-webhook or credchain-auditguard Deployment", s.Manifests)
	}
	if _, err := s.kubectl(ctx, out.String(), "apply", "--server-side", "-f", "-"); err != nil {
		return err
	}
	for _, sa := range []string{"credchain-webhook", "credchain-auditguard"} {
		tok, err := s.quietKubectl(ctx, "", "create", "token", sa, "-n", "credchain-system", "--duration=24h")
		if err != nil {
			return err
		}
		if err := os.WriteFile(s.path(sa+".token"), []byte(strings.TrimSpace(tok)), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(s.path(sa+".kubeconfig"), s.saKubeconfig(strings.TrimSpace(tok)), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// saKubeconfig is what in-cluster config gives a pod of that ServiceAccount: the API server, its
// CA, the token.
func (s *Stack) saKubeconfig(token string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: sa}}]
current-context: e2e
`, s.cfg.Host, base64.StdEncoding.EncodeToString(s.cfg.CAData), token))
}

func decodeAll(docs string) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(docs), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err == io.EOF {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// containerArgs returns the first container's args and literal env (NAME=value).
func containerArgs(o *unstructured.Unstructured) (args, env []string, err error) {
	cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		return nil, nil, fmt.Errorf("deployment %s has no containers", o.GetName())
	}
	c, _ := cs[0].(map[string]any)
	as, _ := c["args"].([]any)
	if len(as) == 0 {
		return nil, nil, fmt.Errorf("deployment %s: its container has no args", o.GetName())
	}
	for _, a := range as {
		str, _ := a.(string)
		args = append(args, str)
	}
	if es, ok := c["env"].([]any); ok {
		for _, e := range es {
			m, _ := e.(map[string]any)
			name, _ := m["name"].(string)
			if v, ok := m["value"].(string); ok {
				env = append(env, name+"="+v)
			}
		}
	}
	return args, env, nil
}

// localize rewrites the install's args for a process on this machine: each flag in set replaces the
// manifest's value (or is added); flags the manifest sets and set does not mention are kept as they are.
func localize(args []string, set [][2]string) []string {
	out := make([]string, 0, len(args)+len(set))
	replaced := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		kept := true
		for _, kv := range set {
			if kv[0] == name {
				kept = false
				if !replaced[name] {
					out = append(out, kv[0]+"="+kv[1])
				}
				replaced[name] = true
			}
		}
		if kept {
			out = append(out, a)
		}
	}
	for _, kv := range set {
		if !replaced[kv[0]] {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	return out
}

// startESO runs the real External Secrets Operator controller out of cluster.
func (s *Stack) startESO(ctx context.Context) error {
	bin, err := testenv.ESOBin()
	if err != nil {
		return fmt.Errorf("%w (run `make testbin`)", err)
	}
	metrics, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	s.Narrator.Step("Starting the External Secrets Operator controller %s (out of cluster)", testenv.ESOVersion)
	if s.eso, err = startProc("external-secrets", s.path("eso.log"), []string{"KUBECONFIG=" + s.adminKubeconfig}, bin,
		"--metrics-addr="+metrics, "--loglevel=info"); err != nil {
		return err
	}
	return s.eso.waitHTTP(ctx, "http://"+metrics+"/metrics", 200, 90*time.Second)
}

// startWebhook runs `credchain webhook` with the install's args (self-managed certificates, issued
// for the loopback address it is called at) as its ServiceAccount, delivering events to NATS and Slack.
func (s *Stack) startWebhook(ctx context.Context) error {
	var err error
	if s.webhookHealth, err = testenv.FreeAddr(); err != nil {
		return err
	}
	host, port, _ := strings.Cut(s.webhookAdr, ":")
	args := localize(s.webhookArgs, [][2]string{
		{"--cert-dir", s.path("webhook-certs")},
		{"--state-dir", s.path("webhook-state")},
		{"--kubeconfig", s.path("credchain-webhook.kubeconfig")},
		{"--host", host}, {"--port", port},
		{"--cert-dns-names", host},
		{"--health-addr", s.webhookHealth}, {"--metrics-addr", "0"},
		{"--cluster", Cluster}, {"--nats-url", s.natsSrv.ClientURL()}, {"--nats-create-stream", "true"},
		{"--slack-webhook-file", s.path("slack-webhook-url")},
	})
	s.Narrator.Step("Starting credchain %s", strings.Join(args, " "))
	if s.webhook, err = startProc("credchain webhook", s.path("webhook.log"), []string{"POD_NAMESPACE=credchain-system"},
		s.Credchain, args...); err != nil {
		return err
	}
	if err := s.webhook.waitHTTP(ctx, "http://"+s.webhookHealth+"/readyz", 200, 60*time.Second); err != nil {
		return err
	}
	s.Narrator.Say("webhook", "/readyz ok: informer caches synced, its certificate issued and the caBundle injected")
	return nil
}

// StartGuard runs `credchain auditguard` with the install's args, logging in to Vault with
// Kubernetes auth as its ServiceAccount, and (re-)enables Vault's socket audit device pointing at it.
// The listen address and state directory survive restarts.
func (s *Stack) StartGuard(ctx context.Context) error {
	var err error
	if s.guardAdr == "" {
		if s.guardAdr, err = testenv.FreeAddr(); err != nil {
			return err
		}
		if s.guardHealth, err = testenv.FreeAddr(); err != nil {
			return err
		}
		if s.guardMetr, err = testenv.FreeAddr(); err != nil {
			return err
		}
	}
	args := localize(s.guardArgs, [][2]string{
		{"--listen", "tcp://" + s.guardAdr},
		{"--state-dir", s.path("guard-state")},
		{"--kubeconfig", s.path("credchain-auditguard.kubeconfig")},
		{"--vault-k8s-jwt-file", s.path("credchain-auditguard.token")},
		{"--health-addr", s.guardHealth}, {"--metrics-addr", s.guardMetr},
		{"--cluster", Cluster}, {"--nats-url", s.natsSrv.ClientURL()}, {"--nats-create-stream", "true"},
		{"--slack-webhook-file", s.path("slack-webhook-url")},
	})
	env := []string{"VAULT_ADDR=" + s.vault.Addr}
	for _, e := range s.guardEnv {
		if !strings.HasPrefix(e, "VAULT_ADDR=") {
			env = append(env, e)
		}
	}
	s.Narrator.Step("Starting credchain %s", strings.Join(args, " "))
	if s.guard, err = startProc("credchain auditguard", s.path("auditguard.log"), env, s.Credchain, args...); err != nil {
		return err
	}
	if err := s.guard.waitHTTP(ctx, "http://"+s.guardHealth+"/readyz", 200, 60*time.Second); err != nil {
		return err
	}
	s.Narrator.Say("auditguard", "/readyz ok: logged in to Vault as Kubernetes auth role credchain-auditguard, role index and policy snapshots loaded")
	// Readiness is about guarding (restores need only Vault); the blast radius' caches sync in the
	// background. The scenarios assert on it, so wait for it too.
	if err := eventually(ctx, 60*time.Second, func() error {
		v, err := s.GuardMetric(ctx, "credchain_auditguard_blast_radius_ready", "")
		if err == nil && v != 1 {
			err = errors.New("credchain_auditguard_blast_radius_ready is 0")
		}
		return err
	}); err != nil {
		return fmt.Errorf("the guard's blast radius: %w", err)
	}
	audits, err := s.root.Sys().ListAuditWithContext(ctx)
	if err != nil {
		return err
	}
	if _, ok := audits["credchain/"]; !ok {
		_, err = s.vaultCLI(ctx, s.vault.RootToken, "", "audit", "enable", "-path=credchain", "socket", "address="+s.guardAdr, "socket_type=tcp")
	}
	return err
}

// StopGuard stops the guard (SIGTERM), leaving Vault's socket device pointing at nobody: Vault keeps
// serving because the file device still logs.
func (s *Stack) StopGuard() {
	s.guard.stop()
	s.guard = nil
}
