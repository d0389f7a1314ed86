package testenv

import (
	"encoding/json"
	"os"
	"testing"
)

// OrderServiceDeployment is the incident's Deployment as a person applies it: 3 replicas pulling
// from registry.internal:5000 with the pull secret regcred-order-service.
const OrderServiceDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: order-service
  namespace: prod
spec:
  replicas: 3
  selector:
    matchLabels: {app: order-service}
  template:
    metadata:
      labels: {app: order-service}
    spec:
      imagePullSecrets:
        - name: regcred-order-service
      containers:
        - name: app
          image: registry.internal:5000/order-service:1.4.2
`

// WriteExample appends v as one JSON line to $CREDCHAIN_EVENTS_OUT when set: the tests that
// produce each event type feed docs/events.md's real examples this way.
func WriteExample(t testing.TB, v any) {
	t.Helper()
	out := os.Getenv("CREDCHAIN_EVENTS_OUT")
	if out == "" {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}
