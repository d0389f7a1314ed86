package auditguard

import (
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// dirWatch tells a file tail when to look again, through inotify (fsnotify): a write to the
// tailed file, or to a rotated copy of it, wakes the tail at once instead of at its next poll. It
// watches the directory, not the file: inotify watches an inode, and rotation puts a new file
// under the name (rename + create) that a watch on the old inode never reports. The directory's
// watch reports the create, the rename, and writes to every file in it, the rotated-away one too
// while it stays there.
//
// What inotify cannot see, the tail's poll still catches: writes made by another kernel to a
// network filesystem (NFS, CephFS; the sidecar topology has Vault and the guard on one kernel),
// a rotated file moved to another directory, an inotify instance or watch limit reached
// (fs.inotify.max_user_instances, max_user_watches), a directory that does not exist yet.
type dirWatch struct {
	w         *fsnotify.Watcher // nil when inotify is unavailable
	dir, base string
	watching  bool
}

// newDirWatch prepares a watch of path's directory. It returns a usable dirWatch even with an
// error (inotify unavailable), which then never wakes anyone.
func newDirWatch(path string) (*dirWatch, error) {
	d := &dirWatch{dir: filepath.Dir(path), base: filepath.Base(path)}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return d, err
	}
	d.w = w
	return d, nil
}

// ensure (re)establishes the watch and reports whether the directory is watched. A directory that
// was removed or renamed loses its watch (inotify drops it); it is added again once it is back.
// err is why the directory cannot be watched, when it cannot.
func (d *dirWatch) ensure() (watching bool, err error) {
	if d.w == nil {
		return false, nil
	}
	if d.watching && len(d.w.WatchList()) == 0 {
		d.watching = false
	}
	if !d.watching {
		if err := d.w.Add(d.dir); err != nil {
			return false, err
		}
		d.watching = true
	}
	return true, nil
}

// events are the watch's events and errors (nil channels, which never deliver, without inotify).
func (d *dirWatch) events() (<-chan fsnotify.Event, <-chan error) {
	if d.w == nil {
		return nil, nil
	}
	return d.w.Events, d.w.Errors
}

// wakes reports whether ev concerns the tail: the file, a rotated copy of it (logrotate's
// audit.log.1, audit.log-20261201: names that start with the file's), or the directory itself.
// Other files in the directory do not wake it.
func (d *dirWatch) wakes(ev fsnotify.Event) bool {
	return ev.Name == d.dir || strings.HasPrefix(filepath.Base(ev.Name), d.base)
}

// coalesce discards the events already waiting (at most a bounded number, so a file written
// without pause cannot keep the tail here): the drain that follows reads whatever they announced.
func (d *dirWatch) coalesce() {
	evs, errs := d.events()
	for range 256 {
		select {
		case <-evs:
		case <-errs:
		default:
			return
		}
	}
}

func (d *dirWatch) close() {
	if d.w != nil {
		d.w.Close()
	}
}
