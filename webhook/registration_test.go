package webhook_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/testenv"
	"github.com/credchain/credchain/webhook"
)

// TestRegistrationSkipsControllers: the install's matchConditions carry exactly the identities the
// handler trusts (one list, webhook.MatchConditionExpression), in the kustomize base and the chart.
func TestRegistrationSkipsControllers(t *testing.T) {
	t.Parallel()
	want := webhook.MatchConditionExpression()
	for _, p := range []string{"default/validatingwebhookconfiguration.yaml", "charts/credchain/templates/validatingwebhookconfiguration.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "manifests", p))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `expression: "`+want+`"`) {
			t.Errorf("%s: matchConditions do not carry webhook.MatchConditionExpression():\n%s", p, want)
		}
		if !strings.Contains(string(b), "sideEffects: NoneOnDryRun") {
			t.Errorf("%s: sideEffects is not NoneOnDryRun", p)
		}
	}
}

// TestClusterWorksWithoutCredchain: every webhook replica stopped (nothing listens) or up but not
// synced (503): through the install's own registration on a real kube-apiserver, the built-in
// controllers and the kubelet still create pods, a person's write fails under failurePolicy Fail,
// and with failurePolicy Ignore the 503 lets it through (the failurePolicy decides, not credchain).
func TestClusterWorksWithoutCredchain(t *testing.T) {
	testenv.KubebuilderAssets(t)
	vwc := installedVWC(t)
	ignore := vwc.DeepCopy()
	ignore.Name = "credchain-ignore"
	ignore.Webhooks[0].FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	ignore.Webhooks[0].NamespaceSelector.MatchExpressions = append(ignore.Webhooks[0].NamespaceSelector.MatchExpressions,
		metav1.LabelSelectorRequirement{Key: "failure-policy", Operator: metav1.LabelSelectorOpIn, Values: []string{"ignore"}})
	vwc.Webhooks[0].NamespaceSelector.MatchExpressions = append(vwc.Webhooks[0].NamespaceSelector.MatchExpressions,
		metav1.LabelSelectorRequirement{Key: "failure-policy", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"ignore"}})
	env := testenv.Patient(&envtest.Environment{
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{vwc, ignore}},
	})
	restCfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(restCfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for ns, labels := range map[string]map[string]string{"prod": nil, "lenient": {"failure-policy": "ignore"}} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
		if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	as := func(user string) client.Client {
		cfg := rest.CopyConfig(restCfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters"}}
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	n := 0
	create := func(c client.Client, ns string) error {
		n++
		tmpl := deployment(ns, "order-service", "", "regcred-order-service").Spec.Template
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "order-service-" + string(rune('a'+n))}, Spec: tmpl.Spec}
		return c.Create(ctx, pod)
	}
	check := func(t *testing.T, state string) {
		for _, user := range append(webhook.ControllerUsernames(), "system:node:worker-1") {
			if err := create(as(user), "prod"); err != nil {
				t.Errorf("%s, %s creating a pod: %v", state, user, err)
			}
		}
		err := create(as("alice"), "prod")
		if err == nil || !strings.Contains(err.Error(), `failed calling webhook "pullsecrets.credchain.io"`) {
			t.Errorf("%s, a person's pod under failurePolicy Fail: err = %v, want the webhook call to fail", state, err)
		}
	}
	t.Run("every replica stopped", func(t *testing.T) { check(t, "no replica") })

	// A replica that is up but has not synced its informers answers 503.
	wio := env.WebhookInstallOptions
	pair, err := tls.LoadX509KeyPair(filepath.Join(wio.LocalServingCertDir, "tls.crt"), filepath.Join(wio.LocalServingCertDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)), &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	notSynced := &atomic.Bool{}
	srv := &http.Server{Handler: webhook.Unavailable(notSynced, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a review reached the handler before the caches synced")
	}))}
	srv.Handler = countCalls(&calls, srv.Handler)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	t.Run("a replica not synced yet", func(t *testing.T) {
		check(t, "not synced")
		if calls.Load() == 0 {
			t.Error("the API server never called the unsynced replica")
		}
		if err := create(as("alice"), "lenient"); err != nil {
			t.Errorf("failurePolicy Ignore with an unsynced replica: %v, want admitted", err)
		}
	})
}

func countCalls(n *atomic.Int32, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		next.ServeHTTP(w, r)
	})
}
