package testenv

import (
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Patient gives an envtest environment the time a loaded two-core CI machine running -race tests
// needs. envtest's defaults (20s per control-plane component, 10s for CRDs to be served) suit a
// developer's laptop; a cold apiserver installing ESO's, cert-manager's and prometheus-operator's
// CRDs next to other test binaries can take longer, and a timeout there fails a run that would pass.
func Patient(env *envtest.Environment) *envtest.Environment {
	env.ControlPlaneStartTimeout = 2 * time.Minute
	env.ControlPlaneStopTimeout = time.Minute
	env.CRDInstallOptions.MaxTime = 2 * time.Minute
	env.WebhookInstallOptions.MaxTime = time.Minute
	return env
}
