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
			if c.ActiveWindow != 30*24*time.Hour {
				t.Errorf("defaults: active window %s", c.ActiveWindow)
			}
			if c.ListenMode != 0o600 || c.ListenGroup != "" || c.MaxConnections != 16 || c.LineBufferBytes != 96<<20 || c.QueueBytes != 16<<20 {
				t.Errorf("defaults: listen mode %#o group %q, max connections %d, line buffers %d, queue bytes %d",
					c.ListenMode, c.ListenGroup, c.MaxConnections, c.LineBufferBytes, c.QueueBytes)
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
		// The desired state (issue 15 item 1).
		"desired state off by default": {args: []string{"--listen", "tcp://127.0.0.1:9090"}, want: func(t *testing.T, c auditguard.Config) {
			if c.DesiredPolicies != "" || c.Terraform != "" || c.DesiredAuthoritative || c.CorrectDrift || c.DesiredPoll != 10*time.Second {
				t.Errorf("desired %q, terraform %q, authoritative %v, correct drift %v, poll %s", c.DesiredPolicies, c.Terraform,
					c.DesiredAuthoritative, c.CorrectDrift, c.DesiredPoll)
			}
		}},
		"desired state from both inputs": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--desired-policies", "/iac/policies", "--terraform", "/iac/terraform",
				"--desired-poll", "30s", "--desired-authoritative", "--correct-drift"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.DesiredPolicies != "/iac/policies" || c.Terraform != "/iac/terraform" || !c.DesiredAuthoritative || !c.CorrectDrift || c.DesiredPoll != 30*time.Second {
					t.Errorf("desired %q, terraform %q, authoritative %v, correct drift %v, poll %s", c.DesiredPolicies, c.Terraform,
						c.DesiredAuthoritative, c.CorrectDrift, c.DesiredPoll)
				}
			},
		},
		"authoritative and drift correction without a desired state are refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--desired-authoritative", "--correct-drift", "--desired-poll", "0"},
			wantErr: "--desired-poll 0s: must be positive\n--desired-authoritative: needs the desired state, --desired-policies and/or --terraform\n--correct-drift: needs the desired state, --desired-policies and/or --terraform",
		},
		// Defaults once, before flags (issue 12 item 1): a zero on the command line is the
		// operator's value, checked, never silently replaced by the default.
		"zero given on the command line is kept and refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--max-connections", "0", "--queue-size", "0"},
			wantErr: "--max-connections 0: must be at least 1\n--queue-size 0: must be positive",
		},
		// One way to name the cluster (issue 12 item 1): --kubeconfig as the webhook's, and
		// --blast-radius to use it; the old --kube PATH|in-cluster still means both.
		"blast radius off by default": {args: []string{"--listen", "tcp://127.0.0.1:9090"}, want: func(t *testing.T, c auditguard.Config) {
			if c.BlastRadius || c.Kubeconfig != "" {
				t.Errorf("blast radius %v, kubeconfig %q", c.BlastRadius, c.Kubeconfig)
			}
		}},
		"blast radius with the webhook's kubeconfig flag": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--blast-radius", "--kubeconfig", "/etc/kube/config"},
			want: func(t *testing.T, c auditguard.Config) {
				if !c.BlastRadius || c.Kubeconfig != "/etc/kube/config" {
					t.Errorf("blast radius %v, kubeconfig %q", c.BlastRadius, c.Kubeconfig)
				}
			},
		},
		"deprecated --kube": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--kube", "in-cluster"},
			want: func(t *testing.T, c auditguard.Config) {
				if !c.BlastRadius || c.Kubeconfig != "in-cluster" {
					t.Errorf("blast radius %v, kubeconfig %q", c.BlastRadius, c.Kubeconfig)
				}
			},
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
		"active window in days": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--active-window", "7d"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.ActiveWindow != 7*24*time.Hour {
					t.Errorf("active window %s", c.ActiveWindow)
				}
			},
		},
		"active window in hours": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--active-window", "36h"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.ActiveWindow != 36*time.Hour {
					t.Errorf("active window %s", c.ActiveWindow)
				}
			},
		},
		"active window off": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--active-window", "0"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.ActiveWindow >= 0 {
					t.Errorf("active window %s, want negative (off)", c.ActiveWindow)
				}
			},
		},
		"active window negative is refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--active-window", "-1h"},
			wantErr: `invalid argument "-1h" for "--active-window" flag: must not be negative (0 disables)`,
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
		"a unix socket for Vault's group": {
			args: []string{"--listen", "unix:///run/credchain/audit.sock", "--listen-mode", "0660", "--listen-group", "0"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.ListenMode != 0o660 || c.ListenGroup != "0" {
					t.Errorf("listen mode %#o group %q", c.ListenMode, c.ListenGroup)
				}
			},
		},
		"a socket others can write is refused": {
			args:    []string{"--listen", "unix:///run/credchain/audit.sock", "--listen-mode", "0666"},
			wantErr: "--listen-mode 0666: must give others no access (anyone on the host could write audit lines); give Vault's group --listen-group and 0660",
		},
		"an unknown group is a configuration error": {
			args:    []string{"--listen", "unix:///run/credchain/audit.sock", "--listen-mode", "0660", "--listen-group", "no-such-group-credchain"},
			wantErr: "--listen-group no-such-group-credchain: group: unknown group no-such-group-credchain (give a numeric gid where the image's /etc/group lacks the name)",
		},
		"a group its mode does not let connect": {
			args:    []string{"--listen", "unix:///run/credchain/audit.sock", "--listen-group", "0"},
			wantErr: "--listen-mode 0600: --listen-group 0 cannot connect without group write (0660)",
		},
		"a group without a unix socket": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--listen-mode", "0660", "--listen-group", "0"},
			wantErr: "--listen-group 0: applies to unix:// sockets, and --listen gives none",
		},
		"a mode that is not octal": {
			args:    []string{"--listen", "unix:///run/credchain/audit.sock", "--listen-mode", "rw-rw----"},
			wantErr: `invalid argument "rw-rw----" for "--listen-mode" flag: want an octal mode such as 0660`,
		},
		"memory bounds": {
			args: []string{"--listen", "tcp://127.0.0.1:9090", "--max-connections", "4", "--line-buffer-bytes", "134217728", "--queue-bytes", "1048576"},
			want: func(t *testing.T, c auditguard.Config) {
				if c.MaxConnections != 4 || c.LineBufferBytes != 128<<20 || c.QueueBytes != 1<<20 {
					t.Errorf("max connections %d, line buffers %d, queue bytes %d", c.MaxConnections, c.LineBufferBytes, c.QueueBytes)
				}
			},
		},
		"memory bounds that cannot work are refused": {
			args:    []string{"--listen", "tcp://127.0.0.1:9090", "--max-connections", "-1", "--line-buffer-bytes", "1048576", "--queue-bytes", "100"},
			wantErr: "--max-connections -1: must be at least 1\n--line-buffer-bytes 1048576: must be at least --max-line (67108864), or no line that long could be read\n--queue-bytes 100: must be at least 65536",
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
