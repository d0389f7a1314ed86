// Package e2e replays the order-service incident on real servers, all on loopback: etcd and
// kube-apiserver (with TokenRequest/TokenReview), a Vault dev server whose Kubernetes auth really
// reviews ESO's token, the real External Secrets Operator controller, a registry with htpasswd auth,
// NATS with JetStream, a Slack stand-in, and `credchain webhook` and `credchain auditguard` as
// processes configured from manifests/default. The same stack drives `make demo` (narrated for a
// person) and the acceptance test (asserting on Vault, Kubernetes, registry and NATS state).
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Cluster is the installation name the stack gives credchain: events arrive on credchain.e2e.<type>.
const Cluster = "e2e"

// Options configure a Stack.
type Options struct {
	// Credchain is the credchain binary (built by the caller).
	Credchain string
	// Manifests is the repository's manifests directory: the webhook and guard run with the args
	// and RBAC of manifests/default, the guard's Vault policy is manifests/vault's.
	Manifests string
	// Dir holds every log, state directory and kubeconfig; the caller removes it.
	Dir string
	// Narrator is told what happens; nil is silent.
	Narrator Narrator
}

// Stack is the running set of servers.
type Stack struct {
	Options
	kubectlBin, adminKubeconfig string
	env                         *envtest.Environment
	cfg                         *rest.Config
	c                           client.Client

	vault      *testenv.DevVault
	root       *vaultapi.Client
	aliceToken string

	registry, regUser, regPass string
	regProc, eso               *proc

	webhook                   *proc
	webhookArgs, guardArgs    []string
	guardEnv                  []string
	webhookAdr, webhookHealth string
	guard                     *proc
	guardAdr, guardHealth     string
	guardMetr                 string

	natsSrv *server.Server
	nc      *nats.Conn
	mu      sync.Mutex
	events  []events.Event
	slack   *httptest.Server
	posts   []string
}

// Start brings the whole stack up: Kubernetes, NATS and the Slack stand-in, registry, Vault,
// credchain's install and webhook (right after the install, which picked its port), ESO. The guard
// is started by the scenarios (it comes and goes).
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Narrator == nil {
		o.Narrator = Logf(func(string, ...any) {})
	}
	s := &Stack{Options: o}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	for _, f := range []func(context.Context) error{s.startKube, s.startNATS, s.startRegistry, s.startVault,
		s.setupKubeAuth, s.install, s.startWebhook, s.startESO} {
		if err := f(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Stop stops every process and server; safe on a partly started stack.
func (s *Stack) Stop() {
	s.guard.stop()
	s.webhook.stop()
	s.eso.stop()
	s.regProc.stop()
	if s.vault != nil {
		s.vault.Stop()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.natsSrv != nil {
		s.natsSrv.Shutdown()
	}
	if s.slack != nil {
		s.slack.Close()
	}
	if s.env != nil {
		_ = s.env.Stop()
	}
}

func (s *Stack) path(name string) string { return filepath.Join(s.Dir, name) }

func (s *Stack) startKube(ctx context.Context) error {
	assets, err := testenv.Assets()
	if err != nil {
		return fmt.Errorf("%w (run `make testbin`)", err)
	}
	crdDir, err := testenv.CRDDir()
	if err != nil {
		return err
	}
	s.Narrator.Step("Starting etcd v%s and kube-apiserver v%s (TokenRequest and TokenReview on), with ESO %s's CRDs",
		testenv.EtcdVersion, testenv.K8sVersion, testenv.ESOVersion)
	// envtest gives the API server a service-account issuer and signing key, so TokenRequest (ESO
	// asking for its account's token) and TokenReview (Vault checking it) work. Every ESO CRD: the
	// controller watches its generators and PushSecrets too.
	s.env = testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: []string{crdDir}}, ErrorIfCRDPathMissing: true})
	if s.cfg, err = s.env.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	if s.c, err = client.New(s.cfg, client.Options{}); err != nil {
		return err
	}
	user, err := s.env.AddUser(envtest.User{Name: "platform-engineer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	s.kubectlBin, s.adminKubeconfig = filepath.Join(assets, "kubectl"), s.path("admin.kubeconfig")
	return os.WriteFile(s.adminKubeconfig, kc, 0o600)
}

// startNATS runs nats-server in this process and collects every credchain event it carries, and a
// Slack stand-in that records the messages posted to it.
func (s *Stack) startNATS(context.Context) error {
	srv, err := testenv.NATS(s.path("nats"), 0)
	if err != nil {
		return err
	}
	s.natsSrv = srv
	if s.nc, err = nats.Connect(srv.ClientURL()); err != nil {
		return err
	}
	if _, err := s.nc.Subscribe("credchain."+Cluster+".>", func(m *nats.Msg) {
		var e events.Event
		if json.Unmarshal(m.Data, &e) == nil {
			s.mu.Lock()
			s.events = append(s.events, e)
			s.mu.Unlock()
		}
	}); err != nil {
		return err
	}
	s.slack = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posts = append(s.posts, m.Text)
		s.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	s.Narrator.Say("nats", "nats-server with JetStream at "+srv.ClientURL()+"; Slack stand-in at "+s.slack.URL)
	return os.WriteFile(s.path("slack-webhook-url"), []byte(s.slack.URL+"/services/T0/B0/e2e"), 0o600)
}

// startRegistry runs distribution's registry with htpasswd auth; its only account is the one Vault
// will hold, so "the credential authenticates" is a real /v2/ call.
func (s *Stack) startRegistry(ctx context.Context) error {
	bin, err := testenv.RegistryBin()
	if err != nil {
		return fmt.Errorf("%w (run `make testbin`)", err)
	}
	if s.registry, err = testenv.FreeAddr(); err != nil {
		return err
	}
	s.regUser, s.regPass = "order-service-puller", randomHex(16)
	hash, err := bcrypt.GenerateFromPassword([]byte(s.regPass), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.path("htpasswd"), []byte(s.regUser+":"+string(hash)+"\n"), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {inmemory: {}}\nhttp: {addr: %q}\nauth: {htpasswd: {realm: registry, path: %q}}\n",
		s.registry, s.path("htpasswd"))
	if err := os.WriteFile(s.path("registry.yaml"), []byte(conf), 0o600); err != nil {
		return err
	}
	s.Narrator.Step("Starting an OCI registry (distribution v%s) at %s with htpasswd auth", testenv.RegistryVersion, s.registry)
	if s.regProc, err = startProc("registry", s.path("registry.log"), nil, bin, "serve", s.path("registry.yaml")); err != nil {
		return err
	}
	return s.regProc.waitHTTP(ctx, "http://"+s.registry+"/v2/", http.StatusUnauthorized, 30*time.Second)
}

// RegistryAuth calls the registry's /v2/ with basic auth (none when user is empty) and returns the
// status and body: 200 {} means the credential authenticates.
func (s *Stack) RegistryAuth(ctx context.Context, user, pass string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.registry+"/v2/", nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, strings.TrimSpace(b.String()), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// kubectl runs the kubectl built from k8s.io/kubernetes as the platform engineer, narrating it.
func (s *Stack) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	out, err := s.quietKubectl(ctx, stdin, args...)
	s.Narrator.Command("kubectl "+strings.Join(args, " "), out)
	return out, err
}

// quietKubectl is kubectl without narration (set-up plumbing a person would not type).
func (s *Stack) quietKubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	return run(ctx, s.kubectlBin, nil, stdin, append([]string{"--kubeconfig", s.adminKubeconfig}, args...)...)
}

// run runs a command to completion and returns its combined output; the error quotes it.
func run(ctx context.Context, bin string, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), args[0], err, out)
	}
	return string(out), nil
}

// Logs returns the tail of every process's log, for a failed run.
func (s *Stack) Logs() string {
	var b strings.Builder
	for _, p := range []*proc{s.eso, s.webhook, s.guard, s.regProc} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, p.tail())
		}
	}
	return b.String()
}
