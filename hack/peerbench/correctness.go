package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// caseEnv is what a case needs: the client whose warnings are recorded, the cluster, and the
// deliveries the webhooks' events reach.
type caseEnv struct {
	cl       *cluster
	vc       *verdictClient
	sink     *eventSink
	asRSCtrl *verdictClient // impersonates the ReplicaSet controller
	route    string
}

// testCase is one request the correctness pass sends to each webhook. claim is the line of
// docs/kyverno.md the case shows.
type testCase struct {
	name, claim string
	run         func(ctx context.Context, e caseEnv) (verdict, error)
}

// createCase is a dry-run CREATE of a Deployment with the given pull secrets.
func createCase(serviceAccount string, pullSecrets ...string) func(context.Context, caseEnv) (verdict, error) {
	return func(ctx context.Context, e caseEnv) (verdict, error) {
		e.vc.warnings.take()
		_, err := e.vc.kube.AppsV1().Deployments(casesNamespace).Create(ctx, deployment(casesNamespace, "order-service", serviceAccount, pullSecrets...), dryRun)
		return verdictOf(e.vc, err), nil
	}
}

var cases = []testCase{
	{"healthy", "both admit a Deployment whose pull secret has a Ready ExternalSecret of its name", createCase("", "regcred-ok")},
	{"not synced: Vault's 403", "both deny Ready=False; only ESO's Warning Event carries Vault's 403", createCase("", "regcred-failing")},
	{"ServiceAccount inheritance", "a template naming no pull secret inherits its ServiceAccount's (here: the failing one)", createCase("puller")},
	{"spec.target.name differs", "UPDATE keeping pull secret regcred-target, written by ExternalSecret order-service-regcred (spec.target.name)", updateCase("target-app")},
	{"status.binding", "UPDATE keeping pull secret regcred-v1: ESO last wrote it (status.binding) while spec.target.name moves to regcred-v2", updateCase("binding-app")},
	{"spec.target.name defaulting", "ExternalSecret regcred-default without spec.target.name writes Secret regcred-default", createCase("", "regcred-default")},
	{"same name, other Secret", "UPDATE keeping pull secret regcred-decoy: the ExternalSecret of that name writes regcred-elsewhere", updateCase("decoy-app")},
	{"grace: ExternalSecret first", "applied together: the ExternalSecret exists, ESO has not reconciled it yet", createCase("", "regcred-fresh")},
	{"grace: workload first", "applied together (kubectl apply -f dir/ writes deployment.yaml first): no ExternalSecret yet", createCase("", "regcred-coming")},
	{"controller-created pod", "the ReplicaSet controller creates a pod whose pull secret is failing (scale-up during the incident)", controllerCreatedPod},
	{"bare pod by a person", "a person creates a pod whose pull secret is failing", barePod},
	{"events to NATS/Slack", "a real (not dry-run) denied CREATE: who hears of it", deniedForReal},
}

// updateApps are the running Deployments of the UPDATE cases and the pull secret each keeps.
var updateApps = map[string]string{"decoy-app": "regcred-decoy", "target-app": "regcred-target", "binding-app": "regcred-v1"}

// updateCase is a dry-run UPDATE of a running Deployment that changes only its template (what
// kubectl rollout restart does), keeping its pull secret.
func updateCase(name string) func(context.Context, caseEnv) (verdict, error) {
	return func(ctx context.Context, e caseEnv) (verdict, error) { return restart(ctx, e, name) }
}

func restart(ctx context.Context, e caseEnv, name string) (verdict, error) {
	apps := e.vc.kube.AppsV1().Deployments(casesNamespace)
	d, err := apps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return verdict{}, err
	}
	d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().UTC().Format(time.RFC3339)}
	e.vc.warnings.take()
	_, err = apps.Update(ctx, d, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	return verdictOf(e.vc, err), nil
}

func controllerCreatedPod(ctx context.Context, e caseEnv) (verdict, error) {
	e.asRSCtrl.warnings.take()
	_, err := e.asRSCtrl.kube.CoreV1().Pods(casesNamespace).Create(ctx, controllerPod(casesNamespace, "regcred-failing"), dryRun)
	return verdictOf(e.asRSCtrl, err), nil
}

func barePod(ctx context.Context, e caseEnv) (verdict, error) {
	p := controllerPod(casesNamespace, "regcred-failing")
	p.OwnerReferences = nil
	e.vc.warnings.take()
	_, err := e.vc.kube.CoreV1().Pods(casesNamespace).Create(ctx, p, dryRun)
	return verdictOf(e.vc, err), nil
}

// deniedForReal sends a real CREATE the webhooks deny and reports, in the detail, what reached
// NATS, Slack and the Kubernetes Events of the namespace within 5 seconds.
func deniedForReal(ctx context.Context, e caseEnv) (verdict, error) {
	name := "events-" + e.route
	nats0, slack0 := e.sink.counts(name)
	e.vc.warnings.take()
	_, err := e.vc.kube.AppsV1().Deployments(casesNamespace).Create(ctx, deployment(casesNamespace, name, "", "regcred-failing"), metav1.CreateOptions{})
	v := verdictOf(e.vc, err)
	time.Sleep(5 * time.Second)
	nats1, slack1 := e.sink.counts(name)
	evs, lerr := e.cl.kube.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if lerr != nil {
		return v, lerr
	}
	violations := 0
	for _, ev := range evs.Items {
		if ev.Reason == "PolicyViolation" && strings.Contains(ev.Message, name) {
			violations++
		}
	}
	v.message = fmt.Sprintf("NATS: %d event(s), Slack: %d post(s), Kubernetes Events naming it: %d PolicyViolation", nats1-nats0, slack1-slack0, violations)
	v.warnings = nil
	return v, nil
}

// correctness runs every case against credchain, then Kyverno, and prints the table.
func correctness(ctx context.Context, cl *cluster, vc *verdictClient, sink *eventSink, settle time.Duration, out io.Writer) error {
	rs, err := newVerdictClient(impersonating(cl.cfg, "system:serviceaccount:kube-system:replicaset-controller",
		"system:serviceaccounts", "system:serviceaccounts:kube-system"))
	if err != nil {
		return err
	}
	results := map[string][]verdict{}
	for _, w := range []string{routeCredchain, routeKyverno} {
		if err := route(ctx, cl, vc, settle, w, casesNamespace); err != nil {
			return err
		}
		env := caseEnv{cl: cl, vc: vc, sink: sink, asRSCtrl: rs, route: w}
		for _, c := range cases {
			v, err := c.run(ctx, env)
			if err != nil {
				return caseErr(c.name, err)
			}
			results[c.name] = append(results[c.name], v)
		}
	}
	printCases(out, results)
	return nil
}
