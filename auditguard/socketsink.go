package auditguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Sink feeds audit lines to the guard.
type Sink interface {
	Run(ctx context.Context) error
}

// ParseListen parses --listen: tcp://HOST:PORT or unix:///PATH.
func ParseListen(s string) (network, address string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("--listen %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" {
			return "", "", fmt.Errorf("--listen %q: want tcp://HOST:PORT", s)
		}
		return "tcp", u.Host, nil
	case "unix":
		if u.Path == "" {
			return "", "", fmt.Errorf("--listen %q: want unix:///PATH", s)
		}
		return "unix", u.Path, nil
	}
	return "", "", fmt.Errorf("--listen %q: scheme must be tcp or unix", s)
}

// SocketSink is the target of Vault's socket audit device. Every Vault node of an HA cluster opens
// its own connection, so it accepts several, each read by its own goroutine, up to the guard's
// MaxConnections across every socket: one more is closed at once and counted.
type SocketSink struct {
	Listener net.Listener
	// Guard is the guard it feeds (a *Guard), through the little a sink may use of it.
	Guard ingester
	Log   logr.Logger
}

var _ Sink = (*SocketSink)(nil)

// DefaultListenMode is the permission of a unix socket without --listen-mode: the guard's user only.
const DefaultListenMode os.FileMode = 0o600

// SocketPerm is who may connect to a unix socket: its permission bits and group (GID -1: the
// guard's own).
type SocketPerm struct {
	Mode os.FileMode
	GID  int
}

// ResolveGroup returns the gid of a --listen-group: a numeric gid, or a name looked up in the
// system's group database.
func ResolveGroup(s string) (int, error) {
	if gid, err := strconv.Atoi(s); err == nil {
		if gid < 0 {
			return 0, fmt.Errorf("--listen-group %s: a gid cannot be negative", s)
		}
		return gid, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("--listen-group %s: %w (give a numeric gid where the image's /etc/group lacks the name)", s, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("--listen-group %s: gid %q is not a number", s, g.Gid)
	}
	return gid, nil
}

// Listen opens a listener for a --listen value; a unix socket gets DefaultListenMode.
func Listen(spec string) (net.Listener, error) {
	return ListenPerm(spec, SocketPerm{Mode: DefaultListenMode, GID: -1})
}

// ListenPerm opens a listener for a --listen value; a unix socket gets perm (see listenUnix).
func ListenPerm(spec string, perm SocketPerm) (net.Listener, error) {
	network, addr, err := ParseListen(spec)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		l, err := listenUnix(addr, perm)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", spec, err)
		}
		return l, nil
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", spec, err)
	}
	return l, nil
}

// listenUnix binds a unix socket at path that nobody but perm allows can ever connect to. A socket
// is created with the process' umask (often 022: 0755, or 0777 under umask 0), and a chmod after
// bind leaves a window in which anyone allowed by the umask can connect and stay connected. So it
// binds in a fresh directory beside path that only the guard's user can enter (0700), sets mode
// and group there, then renames the socket to path: at path it only ever exists with perm. The
// umask is process-wide, so changing it around bind would race every other file the guard creates.
// A stale socket at path (a previous run) is replaced atomically by the rename; anything else at
// path is an error rather than deleted.
func listenUnix(path string, perm SocketPerm) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	// Short names: a unix socket path is limited to 107 bytes, and this one is longer than path.
	dir, err := os.MkdirTemp(filepath.Dir(path), ".cg")
	if err != nil {
		return nil, fmt.Errorf("creating a private directory for the socket: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false) // it is unlinked at path, by unixListener.Close
	fail := func(err error) (net.Listener, error) {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, perm.Mode); err != nil {
		return fail(fmt.Errorf("setting the socket's mode: %w", err))
	}
	if perm.GID >= 0 {
		if err := os.Lchown(tmp, -1, perm.GID); err != nil {
			return fail(fmt.Errorf("giving the socket to gid %d (the guard must be a member of the group: in Kubernetes, the pod's fsGroup or supplementalGroups): %w", perm.GID, err))
		}
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("moving the socket into place: %w", err))
	}
	return &unixListener{UnixListener: l, path: path, file: fi}, nil
}

// unixListener removes its socket file on Close, unless another process has replaced it since.
type unixListener struct {
	*net.UnixListener
	path string
	file os.FileInfo
}

// Addr is the socket's path, not the private directory's it was bound at.
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
		_ = os.Remove(l.path)
	}
	return err
}

// connRefusedLogEvery spaces the log lines about refused connections: a flood would otherwise be
// a flood of log lines, and the counter carries the rate.
const connRefusedLogEvery = time.Minute

// Run accepts connections until ctx ends.
func (s *SocketSink) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	cs := &socketConns{conns: map[net.Conn]bool{}}
	go func() {
		<-ctx.Done()
		s.Listener.Close()
		cs.closeAll()
	}()
	defer wg.Wait()
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accepting audit connections: %w", err)
		}
		if !s.admit(cs, c) {
			continue
		}
		s.Log.Info("audit connection opened", "remote", c.RemoteAddr().String())
		wg.Go(func() { s.serve(ctx, cs, c) })
	}
}

// socketConns is the connections of one SocketSink.Run.
type socketConns struct {
	// mu guards conns and closed: the accept loop adds, each connection's goroutine removes, and
	// the goroutine that waits for the context's end closes them all.
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool // set once conns have been closed: a connection accepted after that is refused
	// refusedLogged is when a refused connection was last logged. Owned by the accept loop.
	refusedLogged time.Time
}

// closeAll closes every connection, and makes admit refuse those accepted after.
func (cs *socketConns) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	for c := range cs.conns {
		c.Close()
	}
	cs.mu.Unlock()
}

// admit adds c to cs and reports true, or closes it: when cs was closed already, or the guard's
// MaxConnections are open.
func (s *SocketSink) admit(cs *socketConns, c net.Conn) bool {
	cs.mu.Lock()
	if cs.closed {
		// Accepted just before the listener closed: nobody would close it, and Run would
		// wait for Vault to hang up.
		cs.mu.Unlock()
		c.Close()
		return false
	}
	ok, limit := s.Guard.openConnection()
	if !ok {
		cs.mu.Unlock()
		// Closed at once, not held: a Vault node gets a write error and retries later; a
		// flood costs a counter increment per connection.
		c.Close()
		if time.Since(cs.refusedLogged) >= connRefusedLogEvery {
			cs.refusedLogged = time.Now()
			s.Log.Info("audit connection refused: too many open", "remote", c.RemoteAddr().String(),
				"maxConnections", limit, "metric", "credchain_auditguard_connections_refused_total")
		}
		return false
	}
	cs.conns[c] = true
	cs.mu.Unlock()
	return true
}

// serve feeds c's lines to the guard until it closes, then removes it from cs and gives its
// place back to the guard's MaxConnections.
func (s *SocketSink) serve(ctx context.Context, cs *socketConns, c net.Conn) {
	defer func() {
		cs.mu.Lock()
		delete(cs.conns, c)
		cs.mu.Unlock()
		c.Close()
		s.Guard.closeConnection()
	}()
	n, err := s.Guard.readLines(c)
	if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		s.Log.Error(err, "audit connection failed", "remote", c.RemoteAddr().String(), "bytes", n)
		return
	}
	s.Log.Info("audit connection closed", "remote", c.RemoteAddr().String(), "bytes", n)
}
