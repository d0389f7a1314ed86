package manifests

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/cmd/credchain/app"
)

// TestInstallFitsBounds: with the arguments each install gives the guard, its worst-case memory
// (auditguard.Config.MemoryBound: every line buffer, read buffer, queued byte, the line being
// processed and the events read from the outboxes, twice for the garbage collector, plus a measured
// baseline) fits 90% of the container's memory limit (the Go runtime's soft limit), and its worst-case state store (DiskBound: full
// outboxes and dead letters) fits the volume. A flood then hits a bound, which is counted and
// alerted, and never the OOM killer or a full disk. The arguments go through the real command, so a
// flag the chart renders wrong fails here too.
func TestInstallFitsBounds(t *testing.T) {
	t.Parallel()
	for name, render := range map[string]func(t *testing.T) []byte{
		"kustomize manifests/default": func(t *testing.T) []byte { return kustomize(t, "default") },
		"helm defaults":               func(t *testing.T) []byte { return helmTemplate(t, "credchain-system") },
		// The largest outboxes: both sinks, with a file device tailed beside the socket.
		"helm with NATS, Slack and an audit file": func(t *testing.T) []byte {
			return helmTemplate(t, "credchain-system", "auditguard.nats.urls={nats://nats.nats.svc:4222}",
				"auditguard.slackWebhookFile=/etc/credchain/slack/url", "auditguard.auditFiles={/vault/audit/audit.log}")
		},
		"helm values for every knob": func(t *testing.T) []byte { return helmTemplate(t, "credchain-knobs", knobs...) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objs, err := parseObjects(render(t))
			if err != nil {
				t.Fatal(err)
			}
			var dep, pvc map[string]any
			for k, o := range objs {
				switch {
				case k.Kind == "Deployment" && k.Name == "credchain-auditguard":
					dep = o
				case k.Kind == "PersistentVolumeClaim" && k.Name == "credchain-auditguard-state":
					pvc = o
				}
			}
			if dep == nil || pvc == nil {
				t.Fatal("no guard Deployment or state PVC rendered")
			}
			var args []string
			for _, a := range field(dep, "spec.template.spec.containers.0.args").([]any) {
				args = append(args, a.(string))
			}
			cfg := guardConfig(t, args)
			limit := quantity(t, field(dep, "spec.template.spec.containers.0.resources.limits.memory"))
			volume := quantity(t, field(pvc, "spec.resources.requests.storage"))

			m := cfg.MemoryBound()
			t.Logf("worst case %s of %s: 2 × (line buffers %s + read buffers %s + queue %s + processing %s + outbox %s + disable waits %s) + baseline %s",
				mib(m.Total), mib(limit), mib(m.LineBuffers), mib(m.ReadBuffers), mib(m.Queue), mib(m.Processing), mib(m.Outbox), mib(m.DisableWaits), mib(m.Baseline))
			// Within the Go runtime's soft limit (90% of the container's, auditguard/memlimit.go): the
			// rest is for what the runtime does not count, such as the binary's mapped pages.
			if soft := limit * 9 / 10; m.Total > soft {
				t.Errorf("the guard's worst-case memory %s exceeds 90%% of its limit %s", mib(m.Total), mib(limit))
			}
			if d := cfg.DiskBound(); d > volume {
				t.Errorf("the state store's worst case %s exceeds its volume %s", mib(d), mib(volume))
			} else {
				t.Logf("state store worst case %s of %s", mib(d), mib(volume))
			}
		})
	}
}

// guardConfig is the Config `credchain auditguard` runs with for args (defaulted and validated).
func guardConfig(t *testing.T, args []string) auditguard.Config {
	t.Helper()
	var got *auditguard.Config
	root := app.NewRootCommand(context.Background(), app.Runners{Auditguard: func(_ context.Context, c auditguard.Config, _ logr.Logger) error {
		got = &c
		return nil
	}})
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("credchain %v: %v", args, err)
	}
	if got == nil {
		t.Fatalf("credchain %v did not run the guard", args)
	}
	return *got
}

func quantity(t *testing.T, v any) int64 {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("quantity %#v is not a string", v)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q.Value()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
