package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// The incident's objects.
const (
	Namespace      = "prod"
	ExternalSecret = "order-service-regcred"
	PullSecret     = "regcred-order-service"
	Workload       = "order-service"
	Policy         = "eso-order-service"
)

// storeAndSecretYAML is the ClusterSecretStore `vault` (Kubernetes auth as ESO's service account,
// the runbook's role) and the ExternalSecret rendering the registry's dockerconfigjson.
func (s *Stack) storeAndSecretYAML() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: vault
spec:
  provider:
    vault:
      server: %[1]s
      path: registry-creds
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: external-secrets-operator
          serviceAccountRef: {name: external-secrets, namespace: external-secrets}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: order-service-regcred
  namespace: prod
spec:
  refreshInterval: 1h
  secretStoreRef: {name: vault, kind: ClusterSecretStore}
  target:
    name: regcred-order-service
    template:
      type: kubernetes.io/dockerconfigjson
      data:
        .dockerconfigjson: '{"auths":{"%[2]s":{"username":"{{ .username }}","password":"{{ .password }}"}}}'
  data:
    - secretKey: username
      remoteRef: {key: order-service, property: username}
    - secretKey: password
      remoteRef: {key: order-service, property: password}
`, s.vault.Addr, s.registry)
}

// deploymentYAML is order-service pulling from the local registry with the ESO-written secret.
func (s *Stack) deploymentYAML() string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: order-service, namespace: prod}
spec:
  replicas: 3
  selector: {matchLabels: {app: order-service}}
  template:
    metadata: {labels: {app: order-service}}
    spec:
      imagePullSecrets: [{name: regcred-order-service}]
      containers:
        - {name: app, image: %s/order-service:1.4.2}
`, s.registry)
}

// SyncState is the ExternalSecret's Ready condition and last sync, as ESO wrote them.
type SyncState struct {
	Status, Reason, Message string
	// SyncedResourceVersion is what ESO records after a successful sync: the ExternalSecret's
	// generation and a hash of its labels and annotations, so it changes once a force-sync
	// annotation has been synced.
	SyncedResourceVersion string
}

func (s *Stack) syncState(ctx context.Context) (SyncState, error) {
	es := &unstructured.Unstructured{}
	es.SetGroupVersionKind(schema.GroupVersionKind{Group: "external-secrets.io", Version: "v1", Kind: "ExternalSecret"})
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: ExternalSecret}, es); err != nil {
		return SyncState{}, err
	}
	var st SyncState
	st.SyncedResourceVersion, _, _ = unstructured.NestedString(es.Object, "status", "syncedResourceVersion")
	conds, _, _ := unstructured.NestedSlice(es.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			st.Status, _ = m["status"].(string)
			st.Reason, _ = m["reason"].(string)
			st.Message, _ = m["message"].(string)
		}
	}
	return st, nil
}

// waitSync waits until ESO reports Ready=status with reason; for a success after a force-sync, also
// until that sync is the one recorded (the synced version differs from before's).
func (s *Stack) waitSync(ctx context.Context, status, reason string, before SyncState) (SyncState, error) {
	var st SyncState
	err := eventually(ctx, 60*time.Second, func() error {
		var err error
		if st, err = s.syncState(ctx); err != nil {
			return err
		}
		if st.Status != status || st.Reason != reason {
			return fmt.Errorf("ExternalSecret %s/%s is Ready=%s (%s: %s), want Ready=%s (%s)", Namespace, ExternalSecret, st.Status, st.Reason, st.Message, status, reason)
		}
		if status == "True" && before.SyncedResourceVersion != "" && st.SyncedResourceVersion == before.SyncedResourceVersion {
			return fmt.Errorf("ExternalSecret still at synced version %s: the force-sync was not synced yet", st.SyncedResourceVersion)
		}
		return nil
	})
	return st, err
}

// forceSync is the runbook's step 2; it returns the sync state from before the annotation.
func (s *Stack) forceSync(ctx context.Context) (SyncState, error) {
	before, err := s.syncState(ctx)
	if err != nil {
		return before, err
	}
	_, err = s.kubectl(ctx, "", "annotate", "externalsecret", ExternalSecret, "-n", Namespace, "force-sync="+strconv.FormatInt(time.Now().UnixNano(), 10), "--overwrite")
	return before, err
}

// PullCredential reads the registry credential out of the Secret ESO wrote, as the runbook's step 3 does.
func (s *Stack) PullCredential(ctx context.Context) (user, pass string, err error) {
	var sec corev1.Secret
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: PullSecret}, &sec); err != nil {
		return "", "", err
	}
	if sec.Type != corev1.SecretTypeDockerConfigJson {
		return "", "", fmt.Errorf("secret %s/%s has type %s", Namespace, PullSecret, sec.Type)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password string }
	}
	if err := json.Unmarshal(sec.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		return "", "", fmt.Errorf("secret %s/%s: %w", Namespace, PullSecret, err)
	}
	a, ok := cfg.Auths[s.registry]
	if !ok {
		return "", "", fmt.Errorf("secret %s/%s has no auth for %s", Namespace, PullSecret, s.registry)
	}
	return a.Username, a.Password, nil
}

// verifyCredential is the runbook's step 3: the credential in the Secret authenticates at /v2/.
func (s *Stack) verifyCredential(ctx context.Context) error {
	user, pass, err := s.PullCredential(ctx)
	if err != nil {
		return err
	}
	code, body, err := s.RegistryAuth(ctx, user, pass)
	if err != nil {
		return err
	}
	s.Narrator.Command(fmt.Sprintf("curl -u %s:<password from the secret> http://%s/v2/", user, s.registry), fmt.Sprintf("%s   (HTTP %d)\n", body, code))
	if code != http.StatusOK || body != "{}" {
		return fmt.Errorf("registry /v2/ with the synced credential: %d %q, want 200 {}", code, body)
	}
	return nil
}

// admissionDryRun asks the API server (and so the webhook) whether a rollout restart would be
// admitted, without changing anything: "" when admitted, the denial otherwise.
func (s *Stack) admissionDryRun(ctx context.Context) (string, error) {
	d := &unstructured.Unstructured{}
	d.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	d.SetNamespace(Namespace)
	d.SetName(Workload)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	err := s.c.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(patch)), client.DryRunAll)
	if err == nil {
		return "", nil
	}
	if strings.Contains(err.Error(), "denied the request") {
		return err.Error(), nil
	}
	return "", err
}

// EventsSince returns the credchain events NATS carried from index from on, and the next index.
func (s *Stack) EventsSince(from int) ([]events.Event, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.Event(nil), s.events[from:]...), len(s.events)
}

// SlackPostsSince is EventsSince for the Slack stand-in.
func (s *Stack) SlackPostsSince(from int) ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.posts[from:]...), len(s.posts)
}

// waitEvent waits for an event of type typ about subject (policy or workload name) among those
// arriving after index from.
func (s *Stack) waitEvent(ctx context.Context, from int, typ, subject string) (events.Event, error) {
	var found events.Event
	err := eventually(ctx, 30*time.Second, func() error {
		evs, _ := s.EventsSince(from)
		for _, e := range evs {
			if e.Type == typ && (e.Policy == subject || (e.Workload != nil && e.Workload.Name == subject)) {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no %s event for %s on NATS (got %d others)", typ, subject, len(evs))
	})
	return found, err
}

// waitSlack waits for a Slack post after index from that contains every one of want.
func (s *Stack) waitSlack(ctx context.Context, from int, want ...string) (string, error) {
	var found string
	err := eventually(ctx, 30*time.Second, func() error {
		posts, _ := s.SlackPostsSince(from)
	next:
		for _, p := range posts {
			for _, w := range want {
				if !strings.Contains(p, w) {
					continue next
				}
			}
			found = p
			return nil
		}
		return fmt.Errorf("no Slack post containing %q among %d", want, len(posts))
	})
	return found, err
}

// GuardMetric reads one sample from the guard's /metrics ("" labels: the unlabelled series); a
// series that does not exist is an error (the guard creates every series it has at start).
func (s *Stack) GuardMetric(ctx context.Context, name, labels string) (float64, error) {
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	return testenv.Metric(ctx, "http://"+s.guardMetr+"/metrics", series)
}
