package basic

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FileSource is a users file, read when a plan is built (start and every
// configuration reload) and re-read when the file changes (checked every
// interval by its size, modification time and identity, so an editor's
// rename-over-the-old-file and a Kubernetes ConfigMap's symlink swap are
// both seen). A file that no longer parses keeps the previous users: the
// error is logged, nothing is opened up. It is a process resource shared
// by the routes and plans that name the same file.
type FileSource struct {
	path       string
	ttl        time.Duration
	maxEntries int
	log        *slog.Logger

	mu    sync.Mutex // serialises reloads
	stamp fileStamp
	data  []byte
	cur   atomic.Pointer[table]

	stop chan struct{}
	done chan struct{}
}

type fileStamp struct {
	size  int64
	mod   time.Time
	ident any // os.FileInfo.Sys (inode) when the platform has one
}

func stampOf(fi os.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), ident: sysIdent(fi)}
}

// OpenFile reads path and, when interval > 0, watches it until Close.
func OpenFile(path string, ttl time.Duration, maxEntries int, interval time.Duration, log *slog.Logger) (*FileSource, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &FileSource{path: path, ttl: ttl, maxEntries: maxEntries, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	if interval <= 0 {
		close(s.done)
		return s, nil
	}
	go s.watch(interval)
	return s, nil
}

func (s *FileSource) table() *table { return s.cur.Load() }

// Reload re-reads the file. An unchanged content keeps the current table
// (and its warm cache); a changed one replaces it, which also empties the
// verified-credential cache. An error keeps the current table.
func (s *FileSource) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("basic: users file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("basic: users file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("basic: users file %s is not a regular file", s.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxUsersFileBytes+1))
	if err != nil {
		return fmt.Errorf("basic: users file: %w", err)
	}
	if s.cur.Load() != nil && bytes.Equal(data, s.data) {
		s.stamp = stampOf(fi)
		return nil
	}
	users, err := ParseUsersFile(data)
	if err != nil {
		return fmt.Errorf("basic: users file %s: %w", s.path, err)
	}
	s.cur.Store(newTable(users, s.ttl, s.maxEntries))
	s.data, s.stamp = data, stampOf(fi)
	return nil
}

func (s *FileSource) watch(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	// lastErr: a problem is logged when it starts or changes, not at
	// every tick while it lasts.
	var lastErr string
	report := func(msg string, err error) {
		if err.Error() != lastErr {
			lastErr = err.Error()
			s.log.Error(msg, "path", s.path, "error", err)
		}
	}
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		fi, err := os.Stat(s.path)
		if err != nil {
			report("basic: users file not readable; keeping the users read before", err)
			continue
		}
		s.mu.Lock()
		same := stampOf(fi) == s.stamp
		s.mu.Unlock()
		if same {
			continue
		}
		if err := s.Reload(); err != nil {
			report("basic: users file changed but cannot be used; keeping the users read before", err)
			continue
		}
		lastErr = ""
		s.log.Info("basic: users file reloaded", "path", s.path, "users", len(s.table().users))
	}
}

// Close stops watching the file.
func (s *FileSource) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
