package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/testenv"
)

// Each process talks to the API server as its own user, so the audit log attributes every request
// (and the per-review API call count is read from it). All are cluster admins: the benchmark
// measures the webhooks' work, not RBAC.
const (
	userClient    = "peerbench-client"
	userCredchain = "peerbench-credchain"
	userKyverno   = "peerbench-kyverno"
)

// auditPolicy logs one Metadata entry per completed request of the two webhooks' users and nothing
// else, so the load itself (thousands of dry-run CREATEs) costs the API server no audit writes.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  users: [` + userCredchain + `, ` + userKyverno + `]
- level: None
`

// cluster is the envtest control plane (real etcd and kube-apiserver) with ESO's and Kyverno's
// CRDs, an audit log, and a kubeconfig per user.
type cluster struct {
	env         *envtest.Environment
	cfg         *rest.Config // the benchmark's own user (userClient)
	c           client.Client
	kube        kubernetes.Interface
	auditLog    string
	kubeconfigs map[string]string // user → kubeconfig path
}

func startCluster(dir string) (*cluster, error) {
	if _, err := testenv.Assets(); err != nil {
		return nil, fmt.Errorf("%w (run hack/testbin.sh k8s etcd)", err)
	}
	crds, err := testenv.CRDFiles()
	if err != nil {
		return nil, err
	}
	kyvernoCRDs, err := kyvernoCRDDirs()
	if err != nil {
		return nil, err
	}
	cl := &cluster{auditLog: filepath.Join(dir, "audit.log"), kubeconfigs: map[string]string{}}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	cl.env = testenv.Patient(&envtest.Environment{
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: append(crds, kyvernoCRDs...)},
		ErrorIfCRDPathMissing: true,
	})
	api := cl.env.ControlPlane.GetAPIServer()
	api.Configure().Set("audit-policy-file", policy).Set("audit-log-path", cl.auditLog).Set("audit-log-mode", "blocking")
	if _, err := cl.env.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver: %w", err)
	}
	for _, u := range []string{userClient, userCredchain, userKyverno} {
		if err := cl.addUser(dir, u); err != nil {
			cl.stop()
			return nil, err
		}
	}
	return cl, nil
}

func (cl *cluster) addUser(dir, name string) error {
	user, err := cl.env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding user %s: %w", name, err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return err
	}
	cl.kubeconfigs[name] = path
	if name != userClient {
		return nil
	}
	cl.cfg = rest.CopyConfig(user.Config())
	// The load generator must not be throttled by client-go's default 5 QPS.
	cl.cfg.QPS, cl.cfg.Burst = 10000, 10000
	cl.cfg.UserAgent = "peerbench"
	if cl.c, err = client.New(cl.cfg, client.Options{}); err != nil {
		return err
	}
	cl.kube, err = kubernetes.NewForConfig(cl.cfg)
	return err
}

func (cl *cluster) stop() {
	if cl.env != nil {
		_ = cl.env.Stop()
	}
}

// kyvernoCRDDirs are Kyverno's own CRD directories (config/crds/*) from its Go module, the version
// the binary was built from.
func kyvernoCRDDirs() ([]string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/kyverno/kyverno@v"+KyvernoVersion).Output()
	if err != nil {
		return nil, fmt.Errorf("downloading kyverno v%s for its CRDs: %w", KyvernoVersion, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	var dirs []string
	for _, d := range []string{"kyverno", "policies.kyverno.io", "policyreport", "reports"} {
		dirs = append(dirs, filepath.Join(m.Dir, "config", "crds", d))
	}
	return dirs, nil
}
