package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
)

func TestAuditguardCommand(t *testing.T) {
	for name, tc := range map[string]struct {
		args    []string
		want    func(*testing.T, auditguard.Config)
		wantErr string
	}{
		"defaults": {args: []string{"--listen", "tcp://127.0.0.1:9090"}, want: func(t *testing.T, c auditguard.Config) {
			if c.RotateGrace != 30*time.Second || c.AuditDisableWait != 5*time.Second || c.ReconcileInterval != time.Minute {
				t.Errorf("defaults: rotate grace %s, disable wait %s, reconcile %s", c.RotateGrace, c.AuditDisableWait, c.ReconcileInterval)
			}
			if c.FlapDeletes != 5 || c.FlapWindow != 10*time.Minute {
				t.Errorf("defaults: flap %d deletes within %s", c.FlapDeletes, c.FlapWindow)
			}
			want := events.Limits{}
			want.SetDefaults()
			if c.Events.Limits != want {
				t.Errorf("defaults: event limits %+v, want %+v", c.Events.Limits, want)
			}
		}},
		"event delivery limits": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--event-outbox-max-events", "500", "--event-outbox-max-bytes", "1048576",
				"--event-max-attempts", "7", "--event-max-age", "2h"},
			want: func(t *testing.T, c auditguard.Config) {
				l := c.Events.Limits
				if l.MaxPending != 500 || l.MaxPendingBytes != 1<<20 || l.MaxAttempts != 7 || l.MaxAge != 2*time.Hour {
					t.Errorf("event limits %+v", l)
				}
				if l.MaxDeadLetters != events.DefaultMaxDeadLetters || l.MaxDeadLetterBytes != events.DefaultMaxDeadLetterBytes {
					t.Errorf("dead-letter limits %+v, want the defaults", l)
				}
			},
		},
		"an outbox smaller than the largest event is refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--event-outbox-max-bytes", "1000", "--event-max-attempts", "-1"},
			wantErr: "event max attempts: must not be negative\nevent max pending bytes 1000: must be at least 262144, the largest event",
		},
		"file device timings": {
			args: []string{"--audit-file", "/vault/audit.log", "--audit-file-rotate-grace", "2m", "--audit-disable-wait", "10s"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.RotateGrace != 2*time.Minute || c.AuditDisableWait != 10*time.Second || c.AuditFiles[0] != "/vault/audit.log" {
					t.Errorf("config: %+v", c)
				}
			},
		},
		"flap detection": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--flap-deletes", "3", "--flap-window", "1h"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.FlapDeletes != 3 || c.FlapWindow != time.Hour {
					t.Errorf("flap %d deletes within %s", c.FlapDeletes, c.FlapWindow)
				}
			},
		},
		"flap detection off": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--flap-deletes", "-1"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.FlapDeletes != -1 {
					t.Errorf("flap deletes %d", c.FlapDeletes)
				}
			},
		},
		"flap detection that would never restore is refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--flap-deletes", "1", "--flap-window", "-1m"},
			wantErr: "--flap-deletes 1: must be at least 2 (-1 disables)\n--flap-window -1m0s: must be positive",
		},
		"negative waits are refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--audit-file-rotate-grace", "-1s", "--audit-disable-wait", "-5s"},
			wantErr: "--audit-file-rotate-grace -1s: must be positive\n--audit-disable-wait -5s: must be positive",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := execute(t, "auditguard", tc.args, func(run func(context.Context, auditguard.Config, logr.Logger) error) Runners {
				return Runners{Auditguard: run}
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if got != nil {
					t.Fatal("run called with an invalid config")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want(t, *got)
		})
	}
}
