package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/credchain/credchain/internal/testenv"
)

// ESO's Ready gauge as the alerts and dashboard select it. ESO is not a dependency of credchain's
// module, so TestESOMetricSource checks this against ESO's source instead of its registry.
const esoConditionMetric = "externalsecret_status_condition"

var esoConditionLabels = []string{"name", "namespace", "condition", "status"}

// TestESOMetricSource reads ESO v0.16.2's source (the module the tests' ESO CRDs come from) and checks
// the declarations esoConditionMetric and ExternalSecretSyncFailed rely on: the metric's subsystem,
// name and labels, and that the condition label carries condition types ("Ready") while
// "SecretSynced" is only a reason, which is why the alert selects condition="Ready".
func TestESOMetricSource(t *testing.T) {
	t.Parallel()
	crds, err := testenv.CRDDir()
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Dir(filepath.Dir(filepath.Dir(crds))) // <module>/config/crds/bases
	for name, tc := range map[string]struct{ file, decl string }{
		"subsystem externalsecret": {"pkg/controllers/externalsecret/esmetrics/esmetrics.go", `ExternalSecretSubsystem\s*=\s*"externalsecret"`},
		"name status_condition":    {"pkg/controllers/externalsecret/esmetrics/esmetrics.go", `ExternalSecretStatusConditionKey\s*=\s*"status_condition"`},
		"a gauge with the condition labels": {"pkg/controllers/externalsecret/esmetrics/esmetrics.go",
			`NewGaugeVec\(prometheus\.GaugeOpts\{\s*Subsystem: ExternalSecretSubsystem,\s*Name:\s*ExternalSecretStatusConditionKey,[^}]*\}, ctrlmetrics\.ConditionMetricLabelNames\)`},
		"labels name, namespace, condition, status": {"pkg/controllers/metrics/labels.go",
			`ConditionMetricLabelNames = \[\]string\{"name", "namespace", "condition", "status"\}`},
		"condition=type, status=status": {"pkg/controllers/externalsecret/esmetrics/esmetrics.go",
			`"condition": string\(condition\.Type\),\s*"status":\s*string\(condition\.Status\),`},
		"Ready is a condition type": {"apis/externalsecrets/v1/externalsecret_types.go", `ExternalSecretReady\s+ExternalSecretConditionType = "Ready"`},
		"SecretSynced is a reason":  {"apis/externalsecrets/v1/externalsecret_types.go", `ConditionReasonSecretSynced = "SecretSynced"`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(filepath.Join(mod, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(tc.decl).Match(src) {
				t.Errorf("%s@%s %s no longer declares %s", testenv.ESOModule, testenv.ESOVersion, tc.file, tc.decl)
			}
		})
	}
}
