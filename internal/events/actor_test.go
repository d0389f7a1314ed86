package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 11 item 12: an event's actor is what Vault logged in an audit entry, which the guard
// received over an unauthenticated socket or file, and the event says so — in its JSON and in Slack.
func TestActorIsMarkedAsLogged(t *testing.T) {
	t.Parallel()
	e := event(1)
	e.Actor = &Actor{DisplayName: "userpass-cleanup-bot", RemoteAddress: "10.0.0.7", Source: ActorFromAuditEntry}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Actor map[string]any `json:"actor"`
	}
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Actor["source"] != "audit-entry" {
		t.Errorf("actor.source = %v, want audit-entry: %s", back.Actor["source"], raw)
	}
	text := SlackMessage("prod", []Event{e}).Text
	if !strings.Contains(text, "userpass-cleanup-bot from 10.0.0.7, as Vault's audit entry names them") {
		t.Errorf("Slack does not say the actor is as logged:\n%s", text)
	}
	adm := event(2)
	adm.Type, adm.Actor = AdmissionDenied, &Actor{DisplayName: "alice", Operation: "CREATE", Source: ActorFromAdmission}
	if text := SlackMessage("prod", []Event{adm}).Text; strings.Contains(text, "audit entry") || !strings.Contains(text, "alice (CREATE)") {
		t.Errorf("an admission actor is the API server's, not an audit entry's:\n%s", text)
	}
}
