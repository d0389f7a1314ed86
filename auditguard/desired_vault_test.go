package auditguard_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// The desired state (issue 15 item 1) against the real dev Vault: the guard on its least-privilege
// token, fed by the socket device, with --desired-policies or --terraform.

// startDesired runs the guard as startGuard does (socket only), with configure's flags, and
// returns its stop. The audit devices are enabled once, by enableDevices.
func (e *env) startDesired(t *testing.T, configure func(*auditguard.Config)) func() {
	t.Helper()
	cfg := auditguard.Config{Listen: []string{"tcp://" + e.listen}, StateDir: e.stateDir, MetricsAddr: "0",
		HealthAddr: testenv.FreeAddrT(t), ReconcileInterval: time.Hour}
	if e.metrics != "" {
		cfg.MetricsAddr = e.metrics
	}
	configure(&cfg)
	cfg.SetDefaults()
	must(t, cfg.Validate())
	cfg.Notifier = e.events
	return runGuard(t, cfg, client(t, e.v.Addr, e.guardTok))
}

// bot logs in as cleanup-bot, the admin whose deletes and edits the guard sees.
func (e *env) bot(t *testing.T) *vault.Client {
	t.Helper()
	bot := client(t, e.v.Addr, "")
	secret, err := bot.Logical().Write("auth/userpass/login/cleanup-bot", map[string]any{"password": "s3cret"})
	must(t, err)
	bot.SetToken(secret.Auth.ClientToken)
	return bot
}

// settled waits until the guard has handled everything Vault logged so far (flush) and returns
// the events recorded after the first n, the marker's left out.
func (e *env) settled(t *testing.T, n int) []events.Event {
	t.Helper()
	e.flush(t)
	var out []events.Event
	for _, ev := range e.events.All()[n:] {
		if ev.Policy != "marker" {
			out = append(out, ev)
		}
	}
	return out
}

func ofType(evs []events.Event, typ string) []events.Event {
	var out []events.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(content), 0o644))
}

// A desired body that differs from the policy the runbook's Vault holds: one rule more.
const desiredOrderService = orderServicePolicy + `path "registry-creds/metadata/order-service" {
  capabilities = ["read"]
}
`

const inventoryPolicy = `path "registry-creds/data/inventory" { capabilities = ["read"] }
`

// TestDesiredRestore: a desired policy is restored from its desired body, not from the guard's
// snapshot, whether or not a role references it, and reconcile creates one missing from Vault;
// the event names the rule and the file.
func TestDesiredRestore(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := setup(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "eso-order-service.hcl"), desiredOrderService)
	writeFile(t, filepath.Join(dir, "eso-inventory-service.hcl"), inventoryPolicy)
	e.startDesired(t, func(c *auditguard.Config) { c.DesiredPolicies = dir })
	e.enableDevices(t)
	bot := e.bot(t)

	t.Run("reconcile at start creates a desired policy Vault lacks and reports the one that drifted", func(t *testing.T) {
		e.waitPolicy(t, "eso-inventory-service", inventoryPolicy)
		ev := e.events.wait(t, events.PolicyRestored, "eso-inventory-service", 0)
		if ev.Rule != events.RuleIaC || ev.Actor != nil || len(ev.Roles) != 0 || ev.SnapshotFrom == nil ||
			ev.SnapshotFrom.Source != "iac" || ev.SnapshotFrom.Origin != filepath.Join(dir, "eso-inventory-service.hcl") {
			t.Errorf("event = %+v", ev)
		}
		ev = e.events.wait(t, events.PolicyDrifted, "eso-order-service", 0)
		want := &events.Drift{Removed: []events.RuleChange{{Path: "registry-creds/metadata/order-service", Desired: "read"}}}
		if ev.Action != "none" || ev.Rule != events.RuleIaC || !reflect.DeepEqual(ev.Drift, want) {
			t.Errorf("event = %+v, drift %+v", ev, ev.Drift)
		}
		if got := e.policy(t, "eso-order-service"); got != orderServicePolicy {
			t.Errorf("eso-order-service was changed without --correct-drift: %q", got)
		}
	})

	t.Run("a referenced desired policy deleted comes back with its desired body", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		e.waitPolicy(t, "eso-order-service", desiredOrderService)
		ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		if ev.Rule != events.RuleIaC || ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" ||
			!slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}) ||
			ev.SnapshotFrom.Origin != filepath.Join(dir, "eso-order-service.hcl") || !strings.Contains(ev.Message, "its desired body") {
			t.Errorf("event = %+v", ev)
		}
		// The restore's own write comes back through the audit log: no drift, no second restore.
		if got := e.settled(t, n); len(got) != 1 {
			t.Errorf("events = %+v, want the restore only", got)
		}
		testenv.WriteExample(t, ev)
	})

	t.Run("an unreferenced desired policy deleted comes back too", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-inventory-service"))
		e.waitPolicy(t, "eso-inventory-service", inventoryPolicy)
		if ev := e.events.wait(t, events.PolicyRestored, "eso-inventory-service", n); ev.Rule != events.RuleIaC || len(ev.Roles) != 0 ||
			!strings.Contains(ev.Message, "defined by the IaC") {
			t.Errorf("event = %+v", ev)
		}
	})
}

// The incident's edit as drift: ESO's read taken away, a rule added.
const driftedOrderService = `path "registry-creds/creds/order-service" { capabilities = ["read"] }
path "registry-creds/data/order-service" { capabilities = [] }
path "sys/policies/acl/*" { capabilities = ["update"] }
`

// orderServiceReformatted grants what orderServicePolicy grants, written differently.
const orderServiceReformatted = `# order-service's registry credentials, for ESO
path "registry-creds/data/order-service" { capabilities = [ "read" ] } // the dockerconfigjson
path "/registry-creds/creds/order-service" {
    capabilities = ["read"]
}
`

// TestDesiredDrift: a write that changes what a desired policy grants is reported, naming the
// writer and the rules; one that only reformats it is not; with --correct-drift the desired body
// is written back, by reconcile for a drift made while the guard was down and at once for one it
// sees, and the guard's own write is not taken for another drift.
func TestDesiredDrift(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := setup(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "eso-order-service.hcl"), orderServicePolicy)
	stop := e.startDesired(t, func(c *auditguard.Config) { c.DesiredPolicies = dir })
	e.enableDevices(t)
	bot := e.bot(t)
	wantDrift := &events.Drift{
		Added:   []events.RuleChange{{Path: "sys/policies/acl/*", Vault: "update"}},
		Changed: []events.RuleChange{{Path: "registry-creds/data/order-service", Desired: "read", Vault: "none"}},
	}

	t.Run("an edit that takes ESO's read away is drift", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", driftedOrderService))
		ev := e.events.wait(t, events.PolicyDrifted, "eso-order-service", n)
		if ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" || ev.Action != "none" || ev.Rule != events.RuleIaC ||
			!reflect.DeepEqual(ev.Drift, wantDrift) || !strings.Contains(ev.Message, "changed rule registry-creds/data/order-service (read → none)") ||
			len(ev.Roles) != 1 {
			t.Errorf("event = %+v, drift %+v", ev, ev.Drift)
		}
		if got := e.policy(t, "eso-order-service"); got != driftedOrderService {
			t.Errorf("policy = %q, want the edit left in place", got)
		}
		testenv.WriteExample(t, ev)
	})

	t.Run("reformatted, reordered, commented: no drift", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", orderServiceReformatted))
		if got := e.settled(t, n); len(got) != 0 {
			t.Errorf("events = %+v, want none", got)
		}
	})

	outer := t
	t.Run("--correct-drift: reconcile at start corrects a drift made while the guard was down", func(t *testing.T) {
		stop()
		must(t, bot.Sys().PutPolicy("eso-order-service", driftedOrderService))
		n := e.events.Count()
		e.startDesired(outer, func(c *auditguard.Config) { c.DesiredPolicies, c.CorrectDrift = dir, true })
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		ev := e.events.wait(t, events.PolicyDrifted, "eso-order-service", n)
		if ev.Action != "corrected" || ev.Actor != nil || !reflect.DeepEqual(ev.Drift, wantDrift) || !strings.Contains(ev.Message, "wrote the desired body back") {
			t.Errorf("event = %+v", ev)
		}
		// Let every job the start queued finish first: a reconcile still to run when the next
		// edit lands would correct it before its audit entry names the writer.
		e.settled(t, n)
	})

	t.Run("--correct-drift: an edit is corrected at once, and the correction is no drift", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", driftedOrderService))
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		ev := e.events.wait(t, events.PolicyDrifted, "eso-order-service", n)
		if ev.Action != "corrected" || ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" {
			t.Errorf("event = %+v", ev)
		}
		if got := ofType(e.settled(t, n), events.PolicyDrifted); len(got) != 1 {
			t.Errorf("policy.drifted events = %+v, want one", got)
		}
		testenv.WriteExample(t, ev)
	})

	t.Run("--correct-drift leaves a reformatted policy alone", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("eso-order-service", orderServiceReformatted))
		if got := e.settled(t, n); len(got) != 0 {
			t.Errorf("events = %+v, want none", got)
		}
		if got := e.policy(t, "eso-order-service"); got != orderServiceReformatted {
			t.Errorf("policy = %q, want the reformatted one", got)
		}
	})
}

// metric reads one series from the guard's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	v, err := testenv.Metric(t.Context(), "http://"+addr+"/metrics", name)
	must(t, err)
	return v
}

// TestDesiredBroken: a desired directory that stops loading mid-run (a file written half-way)
// keeps the last desired state in force — a delete is restored from its body, a policy only the
// broken file names is not taken for desired — with the metric, the event and its file:line; the
// fix, delivered as git-sync delivers a commit (a new worktree, the symlink swapped), is picked up.
func TestDesiredBroken(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := setup(t)
	e.metrics = testenv.FreeAddrT(t)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "v1", "eso-order-service.hcl"), orderServicePolicy)
	must(t, os.Symlink("v1", filepath.Join(root, "current")))
	current := filepath.Join(root, "current")
	e.startDesired(t, func(c *auditguard.Config) { c.DesiredPolicies, c.DesiredPoll = current, 20*time.Millisecond })
	e.enableDevices(t)
	bot := e.bot(t)
	if v := metric(t, e.metrics, "credchain_auditguard_desired_state_valid"); v != 1 {
		t.Fatalf("desired_state_valid = %v at start", v)
	}

	t.Run("a half-written file: the last desired state stays in force", func(t *testing.T) {
		n := e.events.Count()
		writeFile(t, filepath.Join(root, "v1", "eso-payment-service.hcl"), "path \"registry-creds/data/payment-service\" {\n  capabilities = [\"read\"\n")
		ev := e.waitEvents(t, n, events.DesiredStateInvalid)()[0]
		if !strings.Contains(ev.Error, filepath.Join(current, "eso-payment-service.hcl")+":") || ev.Object != "--desired-policies "+current ||
			!strings.Contains(ev.Message, "keeps acting on the last one that loaded (1 policy,") {
			t.Errorf("event = %+v", ev)
		}
		e.waitGauge(t, "credchain_auditguard_desired_state_valid", 0)
		if v := metric(t, e.metrics, "credchain_auditguard_desired_state_errors_total"); v != 1 {
			t.Errorf("desired_state_errors_total = %v", v)
		}
		testenv.WriteExample(t, ev)

		n = e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		if ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n); ev.Rule != events.RuleIaC {
			t.Errorf("event = %+v", ev)
		}
		must(t, bot.Sys().DeletePolicy("eso-payment-service"))
		if ev := e.events.wait(t, events.PolicyRestored, "eso-payment-service", n); ev.Rule != events.RuleActiveRole || ev.Active == nil {
			t.Errorf("eso-payment-service, only in the broken file: event = %+v", ev)
		}
		if got := ofType(e.settled(t, n), events.DesiredStateInvalid); len(got) != 0 {
			t.Errorf("reported again: %+v", got)
		}
	})

	t.Run("the fix, as a new worktree behind the symlink, is picked up", func(t *testing.T) {
		payment := strings.ReplaceAll(orderServicePolicy, "order", "payment")
		writeFile(t, filepath.Join(root, "v2", "eso-order-service.hcl"), desiredOrderService)
		writeFile(t, filepath.Join(root, "v2", "eso-payment-service.hcl"), payment)
		must(t, os.Symlink("v2", filepath.Join(root, "current.new")))
		n := e.events.Count()
		must(t, os.Rename(filepath.Join(root, "current.new"), current))
		e.waitGauge(t, "credchain_auditguard_desired_state_valid", 1)
		// The new state is reconciled at once: eso-order-service now differs from its desired body.
		if ev := e.events.wait(t, events.PolicyDrifted, "eso-order-service", n); ev.Actor != nil || ev.Action != "none" {
			t.Errorf("event = %+v", ev)
		}
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		e.waitPolicy(t, "eso-order-service", desiredOrderService)
		if ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n); ev.Rule != events.RuleIaC ||
			ev.SnapshotFrom.Origin != filepath.Join(current, "eso-order-service.hcl") {
			t.Errorf("event = %+v", ev)
		}
		if v := metric(t, e.metrics, "credchain_auditguard_desired_policies"); v != 2 {
			t.Errorf("desired_policies = %v", v)
		}
	})
}

// TestDesiredAuthoritative: with --terraform and --desired-authoritative, a policy the IaC does not
// define stays deleted although a role names it, and the role's dangling reference is reported; a
// policy it defines is restored from the vault_policy's text.
func TestDesiredAuthoritative(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := setup(t)
	dir := t.TempDir()
	payment := strings.ReplaceAll(orderServicePolicy, "order", "payment")
	writeFile(t, filepath.Join(dir, "policies", "eso-payment-service.hcl"), payment)
	writeFile(t, filepath.Join(dir, "main.tf"), `# eso-order-service was removed from the IaC; the role still names it.
resource "vault_policy" "eso_payment_service" {
  name   = "eso-payment-service"
  policy = file("${path.module}/policies/eso-payment-service.hcl")
}
`)
	e.startDesired(t, func(c *auditguard.Config) { c.Terraform, c.DesiredAuthoritative = dir, true })
	e.enableDevices(t)
	bot := e.bot(t)

	t.Run("a policy the IaC does not define stays deleted; the role's reference is reported", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		ev := e.events.wait(t, events.DanglingReference, "eso-order-service", n)
		if ev.Rule != events.RuleAuthoritative || ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" || ev.Action != "none" ||
			!slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}) ||
			!strings.Contains(ev.Message, "authoritative") {
			t.Errorf("event = %+v", ev)
		}
		if got := e.settled(t, n); len(got) != 1 {
			t.Errorf("events = %+v, want the dangling reference only", got)
		}
		if body := e.policy(t, "eso-order-service"); body != "" {
			t.Errorf("restored: %q", body)
		}
		testenv.WriteExample(t, ev)
	})

	t.Run("a policy the IaC defines is restored from its Terraform text", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-payment-service"))
		e.waitPolicy(t, "eso-payment-service", payment)
		ev := e.events.wait(t, events.PolicyRestored, "eso-payment-service", n)
		if ev.Rule != events.RuleIaC || ev.SnapshotFrom.Origin != "vault_policy.eso_payment_service ("+filepath.Join(dir, "main.tf")+":2)" {
			t.Errorf("event = %+v, from %+v", ev, ev.SnapshotFrom)
		}
	})
}
