package auditguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
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
// its own connection, so it accepts any number, each read by its own goroutine.
type SocketSink struct {
	Listener net.Listener
	Guard    *Guard
	Log      logr.Logger
}

var _ Sink = (*SocketSink)(nil)

// Listen opens a listener for a --listen value. A stale unix socket file is removed first.
func Listen(spec string) (net.Listener, error) {
	network, addr, err := ParseListen(spec)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := os.Remove(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket %s: %w", addr, err)
		}
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", spec, err)
	}
	return l, nil
}

// Run accepts connections until ctx ends.
func (s *SocketSink) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	closed := false // set once conns have been closed: a connection accepted after that is refused
	go func() {
		<-ctx.Done()
		s.Listener.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
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
		mu.Lock()
		if closed {
			// Accepted just before the listener closed: nobody would close it, and Run would
			// wait for Vault to hang up.
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = true
		mu.Unlock()
		s.Guard.metrics.Connections.Inc()
		s.Guard.Reconnected()
		s.Log.Info("audit connection opened", "remote", c.RemoteAddr().String())
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
				s.Guard.metrics.Connections.Dec()
			}()
			n, err := readLines(c, s.Guard.opts.maxLine, s.Guard.Ingest, s.Guard.LineTooLong, s.Guard.LineNotEntry)
			if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.Log.Error(err, "audit connection failed", "remote", c.RemoteAddr().String(), "bytes", n)
				return
			}
			s.Log.Info("audit connection closed", "remote", c.RemoteAddr().String(), "bytes", n)
		})
	}
}

