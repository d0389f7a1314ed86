package auditguard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

// otherGroup is a group the test may give a socket to other than its own primary one: any
// supplementary group, or any group at all as root (chown needs membership otherwise). It falls
// back to the primary group, which still checks the chown is made.
func otherGroup(t *testing.T) (gid int, name string) {
	t.Helper()
	gid = os.Getgid()
	if groups, err := os.Getgroups(); err == nil {
		for _, g := range groups {
			if g != gid {
				gid = g
				break
			}
		}
	}
	if os.Geteuid() == 0 && gid == os.Getgid() {
		for _, n := range []string{"daemon", "nogroup", "bin", "sys"} {
			if g, err := user.LookupGroup(n); err == nil && g.Gid != strconv.Itoa(os.Getgid()) {
				gid, _ = strconv.Atoi(g.Gid)
				break
			}
		}
	}
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		return gid, ""
	}
	return gid, g.Name
}

// TestUnixSocketPermissions: a unix socket exists at its path only with the mode and group asked
// for (the process' umask, 022 or 0 in many images, never shows: it is bound in a private
// directory and renamed into place), leaves nothing else behind, replaces a stale socket of a
// previous run, and refuses to replace anything that is not a socket.
func TestUnixSocketPermissions(t *testing.T) {
	t.Parallel()
	gid, group := otherGroup(t)
	for name, tc := range map[string]struct {
		perm     SocketPerm
		group    string // resolved into perm.GID when set
		stale    string // "socket" or "file" at the path before listening
		wantMode os.FileMode
		wantGID  int
		wantErr  string
	}{
		"default: the guard's user only": {perm: SocketPerm{Mode: DefaultListenMode, GID: -1}, wantMode: 0o600, wantGID: os.Getgid()},
		"Vault's group by gid":           {perm: SocketPerm{Mode: 0o660}, group: strconv.Itoa(gid), wantMode: 0o660, wantGID: gid},
		"Vault's group by name":          {perm: SocketPerm{Mode: 0o660}, group: group, wantMode: 0o660, wantGID: gid},
		"a stale socket is replaced":     {perm: SocketPerm{Mode: 0o600, GID: -1}, stale: "socket", wantMode: 0o600, wantGID: os.Getgid()},
		"a file is never replaced":       {perm: SocketPerm{Mode: 0o600, GID: -1}, stale: "file", wantErr: "exists and is not a socket; refusing to replace it"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.group != "" {
				if group == "" {
					t.Fatalf("gid %d has no name to look up", gid)
				}
				g, err := ResolveGroup(tc.group)
				if err != nil {
					t.Fatal(err)
				}
				tc.perm.GID = g
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.sock")
			switch tc.stale {
			case "socket":
				old, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				old.(*net.UnixListener).SetUnlinkOnClose(false)
				old.Close()
			case "file":
				if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			l, err := ListenPerm("unix://"+path, tc.perm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if b, _ := os.ReadFile(path); string(b) != "keep me" {
					t.Errorf("the file at the path was changed: %q", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.wantMode || int(st.Gid) != tc.wantGID {
				t.Errorf("socket %s gid %d, want a socket %s gid %d", fi.Mode(), st.Gid, tc.wantMode, tc.wantGID)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("directory holds %d entries, want the socket only: %v", len(entries), entries)
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("connecting at the final path: %v", err)
			}
			c.Close()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket left behind after Close: %v", err)
			}
		})
	}
}

func TestResolveGroup(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in      string
		want    int
		wantErr string
	}{
		"numeric gid":  {in: "1000", want: 1000},
		"gid 0":        {in: "0", want: 0},
		"negative gid": {in: "-1", wantErr: "--listen-group -1: a gid cannot be negative"},
		"unknown name": {in: "no-such-group-credchain", wantErr: "--listen-group no-such-group-credchain: group: unknown group no-such-group-credchain (give a numeric gid where the image's /etc/group lacks the name)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ResolveGroup(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ResolveGroup(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestMaxConnections: past --max-connections a connection is closed at once and counted; a slot
// freed by a closed connection is taken by the next.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	g := NewGuard(nil, store, events.LogNotifier{Log: testr.New(t)}, nil, testr.New(t), WithMaxConnections(2))
	l, err := Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- (&SocketSink{Listener: l, Guard: g, Log: testr.New(t)}).Run(ctx) }()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a := dial()
	dial()
	waitCount(t, "connections", func() float64 { return testutil.ToFloat64(g.metrics.Connections) }, 2)
	third := dial()
	// Closed by the guard: the read ends without a byte (EOF or a reset).
	if n, err := bufio.NewReader(third).Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("third connection read %d bytes, %v; want it closed", n, err)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("third connection: %v", err)
	}
	if got := testutil.ToFloat64(g.metrics.ConnectionsRefused); got != 1 {
		t.Errorf("refused = %v, want 1", got)
	}
	a.Close()
	waitCount(t, "connections", func() float64 { return testutil.ToFloat64(g.metrics.Connections) }, 1)
	c := dial()
	if _, err := fmt.Fprintln(c, relevantLine(7)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "lines read", func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }, 1)
	if got := testutil.ToFloat64(g.metrics.ConnectionsRefused); got != 1 {
		t.Errorf("refused = %v after a slot was freed, want still 1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
