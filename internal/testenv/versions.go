package testenv

// Versions of everything the tests run for real, in one place; hack/testbin.sh builds the same
// ones (its cache directories are keyed by them).
const (
	K8sVersion  = "1.37.2"
	EtcdVersion = "3.6.8"
	ESOModule   = "github.com/external-secrets/external-secrets"
	ESOVersion  = "v0.16.2"
)

// VaultVersion is the Vault hack/testbin.sh builds.
const VaultVersion = "1.21.4"

// RegistryVersion is the registry hack/testbin.sh builds.
const RegistryVersion = "3.1.2"

// Versions of the install tools hack/testbin.sh builds, and cert-manager, whose CRDs come from its
// Go module (deploy/crds) like ESO's.
const (
	HelmVersion               = "3.22.0"
	PrometheusOperatorVersion = "0.95.2"
	PrometheusVersion         = "0.316.0"
	// PromCheckRevision keys promcheck's cache together with PrometheusVersion; hack/testbin.sh's
	// PROMCHECK_REVISION is the same number. Bump both when hack/testbin/promql changes.
	PromCheckRevision  = 2
	CertManagerModule  = "github.com/cert-manager/cert-manager"
	CertManagerVersion = "v1.21.2"
)
