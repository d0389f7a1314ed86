package auditguard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// FileSink tails a file audit device's log: it survives rotation (rename + new file) and
// truncation, and resumes from the offset persisted in the store after a restart. On the first run
// (no offset saved for the path) it starts at the end of the file that exists then: the log's
// history has been acted on or missed already, and replaying it would send a fresh event for every
// past delete at install (reconcile repairs what is missing now). A file that appears later, or
// replaces it by rotation, is read from its start. "-" reads stdin once to EOF (replaying a saved
// log).
//
// inotify wakes it on every write (filewatch.go), so a line reaches the guard within about a
// millisecond of Vault writing it; it also polls, as a safety net for what inotify cannot see. The
// offset it saves is the one processing has reached (checkpoint.go), not the one read: lines still
// queued when the guard stops are read again by the next one.
//
// Vault never waits for it: Vault writes the file and goes on, whatever the guard is doing. A
// stopped, slow or vanished guard costs Vault nothing (docs/benchmarks.md, BenchmarkVaultAuditStall),
// unlike a socket device, whose every write waits for the guard's side of the connection.
type FileSink struct {
	Path string
	// Guard is the guard it feeds (a *Guard), through the little a sink may use of it.
	Guard ingester
	// Store is the guard's store: where the offset is read from at start. Checkpoints are saved
	// by the guard's processing into its own store.
	Store State
	Log   logr.Logger
	// Poll is how often the file is checked besides inotify's wake-ups while the directory is
	// watched: the safety net for writes inotify does not report (filewatch.go). Defaults to 1s.
	Poll time.Duration
	// PollUnwatched is how often the file is checked while its directory cannot be watched
	// (inotify unavailable or out of watches, the directory missing). Defaults to 100ms.
	PollUnwatched time.Duration
	// RotateGrace is how long a rotated-away file is still read after the new one appears.
	// logrotate's "create" makes the new file before Vault is told to reopen (SIGHUP), so Vault
	// keeps appending to the old one for a moment. Defaults to 30s.
	RotateGrace time.Duration
}

var _ Sink = (*FileSink)(nil)

// tailedFile is one open audit file and how far it has been read.
type tailedFile struct {
	f      *os.File
	inode  uint64
	offset int64
	// head holds the file's first bytes once some were read, to recognise a truncated file that
	// grew past the read offset again between two polls.
	head []byte
	// checkpointed is the offset last queued as a checkpoint, and when.
	checkpointed   int64
	checkpointedAt time.Time
}

// headLen is how much of a file's start identifies its content: at least the first audit entry
// (a few hundred bytes to a few KB), whose request ID and time no other entry shares. Read once
// per poll.
const headLen = 4096

// rewritten reports whether the file was truncated (copytruncate) since it was last read: it is
// shorter than what was read, or it is not, but its first bytes changed — Vault wrote more after
// the truncation than had been read before it. Reading on at the old offset would start mid-line
// and skip everything written since the truncation.
func (t *tailedFile) rewritten() (bool, error) {
	fi, err := t.f.Stat()
	if err != nil {
		return false, fmt.Errorf("checking audit file: %w", err)
	}
	if fi.Size() < t.offset {
		return true, nil
	}
	if t.head == nil {
		return false, nil
	}
	buf := make([]byte, headLen)
	n, err := t.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading audit file: %w", err)
	}
	if n < len(t.head) || !bytes.Equal(buf[:len(t.head)], t.head) {
		return true, nil
	}
	t.head = buf[:n] // grows with a file shorter than headLen
	return false, nil
}

func (t *tailedFile) close() {
	if t != nil {
		t.f.Close()
	}
}

// Run tails until ctx ends (or stdin reaches EOF).
func (s *FileSink) Run(ctx context.Context) error {
	if s.Path == "-" {
		_, err := s.Guard.readLines(os.Stdin)
		return err
	}
	poll, unwatched, grace := s.intervals()
	watch, err := newDirWatch(s.Path)
	if err != nil {
		s.Log.Error(err, "cannot use inotify; polling the audit file instead", "poll", unwatched.String())
	}
	defer watch.close()
	watched := false
	t := &tailState{grace: grace}
	defer t.close()
	for first := true; ; first = false {
		// Watch before reading: a write between the read and the watch would wait for a poll.
		watched = s.ensureWatch(watch, watched, first, unwatched)
		watch.coalesce() // what they announced is read below
		again, err := s.readPass(t, first)
		if err != nil {
			return err
		}
		if again {
			continue
		}
		wait := poll
		if !watched {
			wait = unwatched
		}
		if !s.wait(ctx, watch, wait) {
			return nil
		}
	}
}

// intervals are Poll, PollUnwatched and RotateGrace with their defaults.
func (s *FileSink) intervals() (poll, unwatched, grace time.Duration) {
	poll, unwatched, grace = s.Poll, s.PollUnwatched, s.RotateGrace
	if poll == 0 {
		poll = time.Second
	}
	if unwatched == 0 {
		unwatched = 100 * time.Millisecond
	}
	if grace == 0 {
		grace = 30 * time.Second
	}
	return poll, unwatched, grace
}

// ensureWatch (re)establishes the watch of the file's directory and reports whether it is
// watched, logging each change between watched and polled (and, at the first pass, why it is
// not watched).
func (s *FileSink) ensureWatch(watch *dirWatch, watched, first bool, unwatched time.Duration) bool {
	w, err := watch.ensure()
	if w != watched || first && err != nil {
		if w {
			s.Log.Info("watching the audit file's directory", "path", s.Path)
		} else {
			s.Log.Error(err, "cannot watch the audit file's directory; polling it instead", "path", s.Path, "poll", unwatched.String())
		}
	}
	return w
}

// tailState is the files Run reads, from one pass to the next. Owned by Run's goroutine.
type tailState struct {
	// cur is the file the path names; old the rotated-away one, read until oldUntil.
	cur, old *tailedFile
	oldUntil time.Time
	// grace is how long old is read after a rotation (FileSink.RotateGrace).
	grace time.Duration
}

func (t *tailState) close() {
	t.cur.close()
	t.old.close()
}

// readPass is one pass of Run: it opens the path when no file is open (at the first pass, first,
// resuming or starting at the end), reads the rotated-away file and then the current one. It
// reports whether to pass again at once, without waiting: a rotation opened the new file.
func (s *FileSink) readPass(t *tailState, first bool) (again bool, err error) {
	if t.cur == nil {
		nf, err := s.open(first)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("opening audit file: %w", err)
		}
		t.cur = nf
	}
	if t.old != nil {
		// Not checkpointed: the saved offset belongs to the file the path names now.
		if err := s.drain(t.old); err != nil {
			return false, err
		}
		if time.Now().After(t.oldUntil) {
			t.old.close()
			t.old = nil
		}
	}
	if t.cur == nil {
		return false, nil
	}
	return s.readCurrent(t)
}

// readCurrent reads the file the path named when it was opened, from its start when it was
// truncated, checkpoints, and follows a rotation (see rotate). It reports whether a rotation
// opened the new file.
func (s *FileSink) readCurrent(t *tailState) (bool, error) {
	cur := t.cur
	// Before reading on: a file truncated and grown again must be read from its start.
	if again, err := cur.rewritten(); err != nil {
		return false, err
	} else if again {
		s.Log.Info("audit file truncated", "path", s.Path)
		cur.offset, cur.head = 0, nil
	}
	if err := s.drain(cur); err != nil {
		return false, err
	}
	s.checkpoint(cur)
	if fi, err := os.Stat(s.Path); err == nil && inodeOf(fi) != cur.inode {
		return s.rotate(t)
	}
	return false, nil
}

// rotate handles a rotation: the path names another file than t.cur. The old one is read once
// more — lines written between the last drain and the Stat that saw the rotation would be lost
// otherwise — and kept for the grace period; the new one is opened and read from its start. It
// reports whether the new file is open (nil when it went away again: opened on the next pass).
func (s *FileSink) rotate(t *tailState) (opened bool, err error) {
	s.Log.Info("audit file rotated", "path", s.Path)
	if err := s.drain(t.cur); err != nil {
		return false, err
	}
	if t.old != nil { // rotated twice within the grace period: finish the oldest first
		if err := s.drain(t.old); err != nil {
			return false, err
		}
		t.old.close()
	}
	t.old, t.oldUntil = t.cur, time.Now().Add(t.grace)
	nf, err := s.open(false)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("reopening rotated audit file: %w", err)
	}
	t.cur = nf
	if t.cur == nil {
		return false, nil
	}
	t.cur.offset = 0 // the saved offset was the old file's
	return true, nil
}

// wait blocks until the watch reports a change that concerns the file, or d passed. It reports
// false when ctx ended.
func (s *FileSink) wait(ctx context.Context, watch *dirWatch, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	evs, errs := watch.events()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case ev := <-evs:
			if watch.wakes(ev) {
				return true
			}
		case <-errs:
			// The kernel's event queue overflowed (fsnotify.ErrEventOverflow): events were
			// lost, so look now.
			return true
		}
	}
}

// open opens the path, resuming at the persisted offset when it names the same file. At start
// (atStart) with no offset saved for the path, it starts at the file's end.
func (s *FileSink) open(atStart bool) (*tailedFile, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &tailedFile{f: f, inode: inodeOf(fi)}
	saved, off, ok := s.Store.Offset(s.Path)
	switch {
	case ok && saved == t.inode && off <= fi.Size():
		t.offset = off // resume where the last run's processing stopped
	case !ok && atStart:
		t.offset = fi.Size()
		if t.offset > 0 {
			s.Log.Info("first run on this audit file: skipping the entries already in it", "path", s.Path, "bytes", t.offset)
		}
		// Saved now, not through a checkpoint: nothing before it is to be processed, and a
		// restart before anything new is read must not skip what came meanwhile.
		if err := s.Store.SaveOffset(s.Path, t.inode, t.offset); err != nil {
			s.Log.Error(err, "saving audit file offset")
		}
	}
	t.checkpointed = t.offset
	return t, nil
}

// drain reads complete lines from the file's offset to EOF.
func (s *FileSink) drain(t *tailedFile) error {
	if t.head == nil {
		// Remember the first bytes before reading: they identify this content of the file.
		buf := make([]byte, headLen)
		n, err := t.f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading audit file: %w", err)
		}
		if n > 0 {
			t.head = buf[:n]
		}
	}
	if _, err := t.f.Seek(t.offset, io.SeekStart); err != nil {
		return fmt.Errorf("seeking audit file: %w", err)
	}
	n, err := s.Guard.readLines(t.f)
	if err != nil {
		return fmt.Errorf("reading audit file: %w", err)
	}
	t.offset += n
	return nil
}

// checkpoint queues the file's offset behind the lines read up to it, when it moved and the last
// checkpoint is checkpointEvery old; a later call (at the latest the next poll) queues the rest.
func (s *FileSink) checkpoint(t *tailedFile) {
	if t.offset == t.checkpointed || time.Since(t.checkpointedAt) < checkpointEvery {
		return
	}
	if s.Guard.checkpoint(fileCheckpoint{path: s.Path, inode: t.inode, offset: t.offset}) {
		t.checkpointed, t.checkpointedAt = t.offset, time.Now()
	}
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
