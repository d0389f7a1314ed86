package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/certs"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
	"github.com/credchain/credchain/webhook"
)

// warnings collects admission warnings the API server relays, as kubectl would print them.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

type cluster struct {
	env        *envtest.Environment
	c          client.Client
	warn       *warnings
	kubeconfig string
	readyz     string
	esVersion  string // API version the test writes ExternalSecrets with
	cfg        *rest.Config
}

// startCluster starts a real kube-apiserver + etcd with ESO's CRDs and credchain's own
// ValidatingWebhookConfiguration from manifests/ (envtest points its clientConfig at the local
// server and signs a serving certificate with a test CA), then runs `credchain webhook` against it.
func startCluster(t *testing.T, cfg webhook.Config) *cluster {
	t.Helper()
	testenv.KubebuilderAssets(t)
	env := testenv.Patient(&envtest.Environment{
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{installedVWC(t)},
		},
	})
	restCfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	wio := env.WebhookInstallOptions
	cfg.Host, cfg.Port, cfg.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	if cfg.CertMode == "self" {
		// The certificate Secret and the leader-election Lease live in credchain-system.
		c, err := client.New(restCfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "credchain-system"}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.HealthAddr = testenv.FreeAddrT(t)
	cfg.MetricsAddr = "0"
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- webhook.Run(ctx, cfg, rest.CopyConfig(restCfg), testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook.Run: %v", err)
		}
	})

	cl := &cluster{env: env, warn: &warnings{}, readyz: "http://" + cfg.HealthAddr + "/readyz", esVersion: "external-secrets.io/v1", cfg: restCfg}
	if cfg.ESOVersion != "" {
		cl.esVersion = "external-secrets.io/" + cfg.ESOVersion
	}
	userCfg := rest.CopyConfig(restCfg)
	userCfg.WarningHandler = cl.warn
	if cl.c, err = client.New(userCfg, client.Options{}); err != nil {
		t.Fatal(err)
	}
	user, err := env.AddUser(envtest.User{Name: "platform-engineer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	cl.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(cl.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(cl.readyz)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
	return cl
}

// installedVWC reads the install's ValidatingWebhookConfiguration. Only its timeout changes: 3s
// is right for a cluster, but a test process under -race on two busy cores can take longer, and
// several calls below are single-shot.
func installedVWC(t *testing.T) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "manifests", "default", "validatingwebhookconfiguration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(b, vwc); err != nil {
		t.Fatal(err)
	}
	if len(vwc.Webhooks) == 0 {
		t.Fatal("the install's ValidatingWebhookConfiguration has no webhooks")
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].TimeoutSeconds = ptr.To[int32](30)
	}
	return vwc
}

// eventually retries f until it succeeds: the webhook decides from informers, which see a write a
// few milliseconds after the API server acknowledges it.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cl *cluster) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := cl.c.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
}

// externalSecret creates an ExternalSecret through ESO's real CRD schema, the way a user applies one.
func (cl *cluster) externalSecret(t *testing.T, ns, name, target string) {
	t.Helper()
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": cl.esVersion,
		"kind":       "ExternalSecret",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"refreshInterval": "1h",
			"secretStoreRef":  map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
			"target": map[string]any{
				"name":     target,
				"template": map[string]any{"type": "kubernetes.io/dockerconfigjson"},
			},
			"data": []any{map[string]any{
				"secretKey": "password",
				"remoteRef": map[string]any{"key": "order-service", "property": "password"},
			}},
		},
	}}
	if err := cl.c.Create(t.Context(), es); err != nil {
		t.Fatal(err)
	}
}

// setReady writes the Ready condition through the status subresource, as ESO's controller does.
func (cl *cluster) setReady(t *testing.T, ns, name, status, reason, message string) {
	t.Helper()
	es := &unstructured.Unstructured{}
	es.SetAPIVersion(cl.esVersion)
	es.SetKind("ExternalSecret")
	if err := cl.c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, es); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	_ = unstructured.SetNestedSlice(es.Object, []any{map[string]any{
		"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": now,
	}}, "status", "conditions")
	_ = unstructured.SetNestedField(es.Object, now, "status", "refreshTime")
	if status == "True" { // ESO binds the Secret it wrote
		target, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name")
		_ = unstructured.SetNestedField(es.Object, target, "status", "binding", "name")
	}
	if err := cl.c.Status().Update(t.Context(), es); err != nil {
		t.Fatal(err)
	}
}

func (cl *cluster) warningEvent(t *testing.T, ns, es, reason, message string) {
	t.Helper()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: es + "."},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Namespace: ns, Name: es,
		},
		Type: corev1.EventTypeWarning, Reason: reason, Message: message,
		LastTimestamp: metav1.Now(), FirstTimestamp: metav1.Now(), Count: 1,
		Source: corev1.EventSource{Component: "external-secrets"},
	}
	if err := cl.c.Create(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
}

// restart does what `kubectl rollout restart` does: a new annotation in the pod template.
func (cl *cluster) restart(t *testing.T, ns, name string) error {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := cl.c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		return err
	}
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339Nano)
	return cl.c.Update(t.Context(), d)
}

// as is a client that impersonates user (in system:masters, so RBAC allows whatever the test
// does): the API server puts user in the AdmissionReview's userInfo and matches it in the
// registration's matchConditions, as for a real controller's requests.
func (cl *cluster) as(t *testing.T, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(cl.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters"}}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deployment(ns, name, sa string, pullSecrets ...string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa,
					Containers:         []corev1.Container{{Name: "app", Image: "registry.internal:5000/" + name + ":1.4.2"}},
				},
			},
		},
	}
	for _, s := range pullSecrets {
		d.Spec.Template.Spec.ImagePullSecrets = append(d.Spec.Template.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return d
}

// denial returns the webhook's message from a Forbidden admission error, or an error.
func denial(err error) (string, error) {
	if err == nil {
		return "", fmt.Errorf("admitted, want denied")
	}
	if !apierrors.IsForbidden(err) {
		return "", fmt.Errorf("error is not Forbidden: %w", err)
	}
	const prefix = `admission webhook "pullsecrets.credchain.io" denied the request: `
	msg := err.Error()
	i := strings.Index(msg, prefix)
	if i < 0 {
		return "", fmt.Errorf("not a credchain denial: %w", err)
	}
	return msg[i+len(prefix):], nil
}

// createDenied waits until a server-side dry run of creating obj is denied with a message check
// accepts, then creates it for real and requires the same. The webhook decides from informers that
// see a write a little after the API server acknowledges it; retrying the real create instead would
// leave the object created (AlreadyExists from then on) if a stale cache admitted the first try.
// Dry runs store nothing and are not reported as events.
func (cl *cluster) createDenied(t *testing.T, obj client.Object, check func(msg string) error) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		msg, err := denial(cl.c.Create(t.Context(), obj.DeepCopyObject().(client.Object), client.DryRunAll))
		if err != nil {
			return err
		}
		return check(msg)
	})
	msg, err := denial(cl.c.Create(t.Context(), obj))
	if err == nil {
		err = check(msg)
	}
	if err != nil {
		t.Fatalf("create after the dry run: %v", err)
	}
}

const (
	eso403 = "error processing spec.data[0] (key: order-service), err: Error making API request.\n\nURL: GET http://127.0.0.1:8200/v1/registry-creds/data/order-service\nCode: 403. Errors:\n\n* 1 error occurred:\n\t* permission denied\n\n"
)

func TestWebhookAgainstAPIServer(t *testing.T) {
	rec := &events.Recorder{}
	cl := startCluster(t, webhook.Config{Notifier: rec, Events: events.DeliveryConfig{NATS: events.NATSConfig{Cluster: "envtest"}}})
	ctx := t.Context()
	cl.namespace(t, "prod", nil)
	cl.namespace(t, "staging", map[string]string{webhook.EnforcementLabel: "warn"})
	cl.namespace(t, "sandbox", map[string]string{webhook.EnforcementLabel: "off"})

	cl.externalSecret(t, "prod", "order-service-regcred", "regcred-order-service")
	cl.setReady(t, "prod", "order-service-regcred", "False", "SecretSyncedError", "could not get secret data from provider")
	cl.warningEvent(t, "prod", "order-service-regcred", "UpdateFailed", eso403)

	wantDenied := func(name string) string {
		return fmt.Sprintf(`deployment prod/%s: a pull secret is not backed by a synced ExternalSecret: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since `, name)
	}

	t.Run("create denied while ExternalSecret is not synced, with Vault's 403", func(t *testing.T) {
		cl.createDenied(t, deployment("prod", "order-service", "", "regcred-order-service"), func(msg string) error {
			if !strings.HasPrefix(msg, wantDenied("order-service")) {
				return fmt.Errorf("message:\n%s\nwant prefix\n%s", msg, wantDenied("order-service"))
			}
			for _, want := range []string{"ESO's last warning (UpdateFailed): error processing spec.data[0]", "Code: 403. Errors: * 1 error occurred: * permission denied",
				"kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite"} {
				if !strings.Contains(msg, want) {
					return fmt.Errorf("message %q lacks %q", msg, want)
				}
			}
			return nil
		})
	})

	t.Run("kubectl apply shows the denial to the person", func(t *testing.T) {
		manifest := filepath.Join(t.TempDir(), "order-service.yaml")
		if err := os.WriteFile(manifest, []byte(testenv.OrderServiceDeployment), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, testenv.Kubectl(t), "--kubeconfig", cl.kubeconfig, "apply", "-f", manifest)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("kubectl apply succeeded, want denial:\n%s", out)
		}
		want := `Error from server (Forbidden): error when creating "` + manifest + `": admission webhook "pullsecrets.credchain.io" denied the request: ` + wantDenied("order-service")
		if !strings.HasPrefix(string(out), want) {
			t.Fatalf("kubectl output:\n%s\nwant prefix:\n%s", out, want)
		}
	})

	t.Run("kubectl apply -f dir/ writes the Deployment before its ExternalSecret: admitted", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string]string{
			// alphabetical: deployment.yaml is applied first, when no ExternalSecret writes its secret yet
			"deployment.yaml": strings.ReplaceAll(strings.ReplaceAll(testenv.OrderServiceDeployment, "regcred-order-service", "regcred-payments"), "name: order-service", "name: payments"),
			"externalsecret.yaml": `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: payments-regcred
  namespace: prod
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: ClusterSecretStore}
  target:
    name: regcred-payments
    template: {type: kubernetes.io/dockerconfigjson}
  data:
    - secretKey: password
      remoteRef: {key: payments, property: password}
`,
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.CommandContext(ctx, testenv.Kubectl(t), "--kubeconfig", cl.kubeconfig, "apply", "-f", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl apply -f dir/ failed:\n%s", out)
		}
		if !strings.Contains(string(out), `secret "regcred-payments" is not written by any ExternalSecret in namespace prod yet`) {
			t.Errorf("kubectl output lacks the not-backed-yet warning:\n%s", out)
		}
	})

	t.Run("the denial is one admission.denied event, however often it is retried", func(t *testing.T) {
		var got []events.Event
		eventually(t, 30*time.Second, func() error {
			if got = rec.OfType(events.AdmissionDenied); len(got) == 0 {
				return fmt.Errorf("no admission.denied event")
			}
			return nil
		})
		e := got[0]
		if len(got) != 1 || e.Reason != string(webhook.ReasonNotSynced) || e.Cluster != "envtest" || e.APIVersion != events.APIVersion ||
			*e.Workload != (events.ObjectRef{Kind: "Deployment", Namespace: "prod", Name: "order-service"}) ||
			e.Actor == nil || e.Actor.DisplayName == "" || !strings.HasPrefix(e.Message, wantDenied("order-service")) {
			t.Errorf("events = %+v", got)
		}
	})

	t.Run("admitted once Ready, and rollout restart checked again", func(t *testing.T) {
		cl.setReady(t, "prod", "order-service-regcred", "True", "SecretSynced", "secret synced")
		eventually(t, 30*time.Second, func() error {
			return cl.c.Create(ctx, deployment("prod", "order-service", "", "regcred-order-service"))
		})
		if w := cl.warn.take(); len(w) != 0 {
			t.Errorf("warnings on a healthy create: %q", w)
		}

		cl.setReady(t, "prod", "order-service-regcred", "False", "SecretSyncedError", "could not get secret data from provider")
		// kubectl rollout restart: a new annotation in the pod template.
		restart := func() error {
			d := &appsv1.Deployment{}
			if err := cl.c.Get(ctx, types.NamespacedName{Namespace: "prod", Name: "order-service"}, d); err != nil {
				return err
			}
			if d.Spec.Template.Annotations == nil {
				d.Spec.Template.Annotations = map[string]string{}
			}
			d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339Nano)
			return cl.c.Update(ctx, d)
		}
		eventually(t, 30*time.Second, func() error {
			msg, err := denial(restart())
			if err != nil {
				return err
			}
			if !strings.HasPrefix(msg, wantDenied("order-service")) {
				return fmt.Errorf("message %q", msg)
			}
			return nil
		})

		// Scaling creates no pods from a new template: never blocked, even now.
		d := &appsv1.Deployment{}
		if err := cl.c.Get(ctx, types.NamespacedName{Namespace: "prod", Name: "order-service"}, d); err != nil {
			t.Fatal(err)
		}
		d.Spec.Replicas = ptr.To[int32](5)
		d.Labels = map[string]string{"team": "orders"}
		if err := cl.c.Update(ctx, d); err != nil {
			t.Fatalf("replicas/label update denied: %v", err)
		}

		cl.setReady(t, "prod", "order-service-regcred", "True", "SecretSynced", "secret synced")
		eventually(t, 30*time.Second, restart)
	})

	t.Run("secret inherited from the ServiceAccount is checked", func(t *testing.T) {
		sa := &corev1.ServiceAccount{
			ObjectMeta:       metav1.ObjectMeta{Namespace: "prod", Name: "builder"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-builder"}},
		}
		if err := cl.c.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		// CREATE: the account's secret may be applied right after (not backed yet: a warning). The
		// webhook sees the new account once its informer has it: dry runs until then.
		const inherited = `serviceaccount "builder" imagePullSecrets[0] (inherited by pods that name no pull secret): secret "regcred-builder" is not written by any ExternalSecret in namespace prod yet`
		eventually(t, 30*time.Second, func() error {
			cl.warn.take()
			if err := cl.c.Create(ctx, deployment("prod", "builder", "builder"), client.DryRunAll); err != nil {
				return fmt.Errorf("dry-run create denied: %w", err)
			}
			if w := cl.warn.take(); len(w) != 1 || !strings.Contains(w[0], inherited) {
				return fmt.Errorf("warnings = %q", w)
			}
			return nil
		})
		cl.warn.take()
		if err := cl.c.Create(ctx, deployment("prod", "builder", "builder")); err != nil {
			t.Fatalf("create denied: %v", err)
		}
		if w := cl.warn.take(); len(w) != 1 || !strings.Contains(w[0], inherited) {
			t.Errorf("warnings = %q", w)
		}
		// The next template change enforces.
		want := `deployment prod/builder: a pull secret is not backed by a synced ExternalSecret: spec.template.spec.serviceAccountName: Forbidden: serviceaccount "builder" imagePullSecrets[0] (inherited by pods that name no pull secret): secret "regcred-builder" is not written by any ExternalSecret in namespace prod; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: regcred-builder, or label the namespace credchain.io/enforcement=warn; the whole chain: credchain explain deployment/builder -n prod`
		msg, err := denial(cl.restart(t, "prod", "builder"))
		if err != nil {
			t.Fatal(err)
		}
		if msg != want {
			t.Fatalf("message:\n%s\nwant:\n%s", msg, want)
		}
	})

	t.Run("other kinds are checked too", func(t *testing.T) {
		cl.setReady(t, "prod", "order-service-regcred", "False", "SecretSyncedError", "could not get secret data from provider")
		tmpl := deployment("prod", "x", "", "regcred-order-service").Spec.Template
		objs := map[string]client.Object{
			"cronjob": &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "nightly"},
				Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					Template: withRestart(tmpl, corev1.RestartPolicyOnFailure)}}}},
			"statefulset": &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "db"},
				Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, Template: tmpl}},
			"pod": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "debug"}, Spec: tmpl.Spec},
			"replicationcontroller": &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "legacy"},
				Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "x"}, Template: &tmpl}},
		}
		wantPath := map[string]string{"cronjob": "spec.jobTemplate.spec.template.spec.imagePullSecrets[0]",
			"statefulset": "spec.template.spec.imagePullSecrets[0]", "pod": "spec.imagePullSecrets[0]",
			"replicationcontroller": "spec.template.spec.imagePullSecrets[0]"}
		for name, obj := range objs {
			cl.createDenied(t, obj, func(msg string) error {
				if !strings.Contains(msg, wantPath[name]+`: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced`) {
					return fmt.Errorf("%s: message %q", name, msg)
				}
				return nil
			})
		}
	})

	t.Run("pods a ReplicaSet creates are admitted: scale-ups and drains keep working", func(t *testing.T) {
		// The ExternalSecret is still failing (previous subtest); the ReplicaSet's template was
		// checked when its Deployment was written, and blocking its pods would stop self-healing.
		tmpl := deployment("prod", "order-service", "", "regcred-order-service").Spec.Template
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "order-service-7d9f-x2x4q", Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "order-service-7d9f",
				UID: "5b1e7c2a-0000-4000-8000-000000000001", Controller: ptr.To(true)}}}, Spec: tmpl.Spec}
		if err := cl.as(t, "system:serviceaccount:kube-system:replicaset-controller").Create(ctx, pod); err != nil {
			t.Fatalf("the ReplicaSet's pod was denied: %v", err)
		}
		// The same pod without its controller is a bare pod, and checked.
		bare := pod.DeepCopy()
		bare.Name, bare.OwnerReferences = "order-service-by-hand", nil
		cl.createDenied(t, bare, func(msg string) error {
			if !strings.Contains(msg, `comes from ExternalSecret prod/order-service-regcred, which is not synced`) {
				return fmt.Errorf("message %q", msg)
			}
			return nil
		})
		// A person writing the controller reference by hand proves nothing: the API server does
		// not verify owners, so only the controller's own identity is trusted.
		forged := pod.DeepCopy()
		forged.Name = "order-service-forged-owner"
		cl.createDenied(t, forged, func(msg string) error {
			if !strings.Contains(msg, `comes from ExternalSecret prod/order-service-regcred, which is not synced`) {
				return fmt.Errorf("message %q", msg)
			}
			return nil
		})
	})

	t.Run("warn namespace admits with warnings", func(t *testing.T) {
		cl.warn.take()
		if err := cl.c.Create(ctx, deployment("staging", "order-service", "", "handmade")); err != nil {
			t.Fatalf("denied in a warn namespace: %v", err)
		}
		cl.warn.take() // not backed yet: see the decision tests
		if err := cl.restart(t, "staging", "order-service"); err != nil {
			t.Fatalf("denied in a warn namespace: %v", err)
		}
		got := cl.warn.take()
		want := `credchain.io/enforcement=warn, would deny: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "handmade" is not written by any ExternalSecret in namespace staging`
		if len(got) != 1 || !strings.HasPrefix(got[0], want) {
			t.Fatalf("warnings = %q, want one starting %q", got, want)
		}
	})

	t.Run("warn mode: one whole warning per problem, however many", func(t *testing.T) {
		// 12 failing ExternalSecrets with long provider errors: ~11,000 runes of warnings, which the
		// API server would cut to 256 runes each (dropping every fix) if credchain did not fit them.
		var secrets []string
		for i := range 12 {
			es, secret := fmt.Sprintf("es-%02d", i), fmt.Sprintf("regcred-%02d", i)
			cl.externalSecret(t, "staging", es, secret)
			cl.setReady(t, "staging", es, "False", "SecretSyncedError", strings.Repeat("could not get secret data from provider; ", 8))
			cl.warningEvent(t, "staging", es, "UpdateFailed", eso403+strings.Repeat(" retrying", 40))
			secrets = append(secrets, secret)
		}
		if err := cl.c.Create(ctx, deployment("staging", "many", "", secrets...)); err != nil {
			t.Fatal(err)
		}
		cl.warn.take()
		var got []string
		eventually(t, 30*time.Second, func() error {
			if err := cl.restart(t, "staging", "many"); err != nil {
				return err
			}
			if got = cl.warn.take(); len(got) != 12 {
				return fmt.Errorf("%d warnings, want 12: %q", len(got), got)
			}
			return nil
		})
		total := 0
		for i, w := range got {
			total += len([]rune(w))
			es := fmt.Sprintf("es-%02d", i)
			if !strings.Contains(w, "ExternalSecret staging/"+es) || !strings.HasSuffix(w, "kubectl annotate externalsecret "+es+" -n staging force-sync=$(date +%s) --overwrite") {
				t.Errorf("warning %d lost its ExternalSecret or its fix: %q", i, w)
			}
		}
		if total > 4096 {
			t.Errorf("warnings total %d runes, over the API server's 4096", total)
		}
	})

	t.Run("the warning is one admission.warned event", func(t *testing.T) {
		eventually(t, 30*time.Second, func() error {
			var got []events.Event
			for _, e := range rec.OfType(events.AdmissionWarned) {
				if e.Reason == string(webhook.ReasonUnmanaged) {
					got = append(got, e)
				}
			}
			if len(got) != 1 || got[0].Workload.Namespace != "staging" || !strings.HasPrefix(got[0].Message, "credchain.io/enforcement=warn, would deny: deployment staging/order-service") {
				return fmt.Errorf("admission.warned events = %+v", got)
			}
			return nil
		})
		// One real event per type for docs/events.md (CREDCHAIN_EVENTS_OUT).
		testenv.WriteExample(t, rec.OfType(events.AdmissionDenied)[0])
		testenv.WriteExample(t, rec.OfType(events.AdmissionWarned)[0])
	})

	t.Run("off namespace is not sent to the webhook", func(t *testing.T) {
		if err := cl.c.Create(ctx, deployment("sandbox", "order-service", "", "handmade")); err != nil {
			t.Fatalf("denied in an off namespace: %v", err)
		}
	})

	t.Run("delete is never blocked", func(t *testing.T) {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "order-service"}}
		if err := cl.c.Delete(ctx, d); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})

	t.Run("malformed reviews get 400", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(cl.env.WebhookInstallOptions.LocalServingCAData)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		url := fmt.Sprintf("https://%s%s", net.JoinHostPort(cl.env.WebhookInstallOptions.LocalServingHost,
			fmt.Sprint(cl.env.WebhookInstallOptions.LocalServingPort)), webhook.Path)
		bodies := map[string]string{
			"not json":                  `{"kind":"AdmissionReview",`,
			"object not a pod template": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"namespace":"prod","operation":"CREATE","object":{"spec":{"template":"x"}}}}`,
			"no namespace":              `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"2","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{}}}`,
		}
		for name, body := range bodies {
			resp, err := hc.Post(url, "application/json", bytes.NewBufferString(body))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if !strings.Contains(buf.String(), `"code":400`) {
				t.Errorf("%s: response %s %s, want code 400", name, resp.Status, buf.String())
			}
		}
	})
}

func withRestart(t corev1.PodTemplateSpec, p corev1.RestartPolicy) corev1.PodTemplateSpec {
	t = *t.DeepCopy()
	t.Spec.RestartPolicy = p
	return t
}

// TestWebhookESOv1beta1 runs against ESO's v1beta1 API (served by ESO ≤ 0.16 next to v1), pinned
// with --eso-version, and writes the ExternalSecret through that version.
func TestWebhookESOv1beta1(t *testing.T) {
	cl := startCluster(t, webhook.Config{ESOVersion: "v1beta1"})
	ctx := t.Context()
	cl.namespace(t, "prod", nil)
	cl.externalSecret(t, "prod", "order-service-regcred", "regcred-order-service")
	cl.setReady(t, "prod", "order-service-regcred", "False", "SecretSyncedError", "could not get secret data from provider")
	cl.createDenied(t, deployment("prod", "order-service", "", "regcred-order-service"), func(msg string) error {
		if !strings.Contains(msg, `comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError`) {
			return fmt.Errorf("message %q", msg)
		}
		return nil
	})
	cl.setReady(t, "prod", "order-service-regcred", "True", "SecretSynced", "")
	eventually(t, 30*time.Second, func() error {
		return cl.c.Create(ctx, deployment("prod", "order-service", "", "regcred-order-service"))
	})
}

// TestWebhookSelfManagedCerts runs the webhook with --cert-mode=self against the install's
// ValidatingWebhookConfiguration: credchain issues its own CA and serving certificate, injects the
// CA as caBundle, and the API server then reaches it over TLS — the Deployment is denied through it.
func TestWebhookSelfManagedCerts(t *testing.T) {
	cl := startCluster(t, webhook.Config{CertMode: "self", Certs: certs.Config{DNSNames: []string{"127.0.0.1"}, CheckInterval: 200 * time.Millisecond}})
	ctx := t.Context()
	cl.namespace(t, "prod", nil)
	cl.externalSecret(t, "prod", "order-service-regcred", "regcred-order-service")
	cl.setReady(t, "prod", "order-service-regcred", "False", "SecretSyncedError", "could not get secret data from provider")
	cl.createDenied(t, deployment("prod", "order-service", "", "regcred-order-service"), func(msg string) error {
		if !strings.Contains(msg, `comes from ExternalSecret prod/order-service-regcred, which is not synced`) {
			return fmt.Errorf("message %q", msg)
		}
		return nil
	})
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := cl.c.Get(ctx, types.NamespacedName{Name: "credchain"}, &vwc); err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := cl.c.Get(ctx, types.NamespacedName{Namespace: "credchain-system", Name: "credchain-webhook-tls"}, &s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"]) {
		t.Error("the API server reached the webhook, but the caBundle is not credchain's CA")
	}
}

// TestWebhookReadinessFollowsWatches: ESO's CRD removed (an upgrade dropping a version, a
// reinstall) breaks the ExternalSecret watch; /readyz must say so instead of deciding from a frozen
// cache, and turn green again once the watch is back.
func TestWebhookReadinessFollowsWatches(t *testing.T) {
	cl := startCluster(t, webhook.Config{WatchFailureGrace: time.Second})
	ctx := t.Context()
	readyz := func() error {
		resp, err := http.Get(cl.readyz + "?verbose")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	}
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	crd.SetName("externalsecrets.external-secrets.io")
	if err := cl.c.Delete(ctx, crd); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if err := readyz(); err == nil {
			return fmt.Errorf("readyz still green with the ExternalSecret watch failing")
		}
		return nil
	})
	if _, err := envtest.InstallCRDs(cl.cfg, envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, readyz)
}
