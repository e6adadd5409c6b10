package gateway

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gatehouse/gatehouse/internal/config"
)

// watchDebounce coalesces the bursts of events an editor or a Kubernetes
// ConfigMap update produces (write, chmod, rename, symlink swap).
const watchDebounce = 300 * time.Millisecond

// Run serves until ctx is cancelled (SIGTERM or SIGINT in the CLI), then
// drains for the configured drain timeout. SIGHUP reloads; so does a change
// of the config file when lifecycle.watch_config is on.
func (g *Gateway) Run(ctx context.Context) error {
	// Catch SIGHUP before serving: once a request has been answered, a
	// SIGHUP can no longer kill the process by its default action.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var changes <-chan struct{}
	if g.opts.ConfigPath != "" && g.cfg.Load().Lifecycle.WatchEnabled() {
		ch, stop, err := watchFile(g.opts.ConfigPath, g.log)
		if err != nil {
			g.log.Warn("gateway: cannot watch the config file; SIGHUP still reloads", "error", err)
		} else {
			defer stop()
			changes = ch
		}
	}

	// Serve only once the watch is in place, so a change made right after
	// the first answered request is never missed.
	g.Serve()

	for {
		select {
		case <-ctx.Done():
			drain := g.cfg.Load().Lifecycle.DrainTimeout.Std()
			g.log.Info("gateway: shutting down; draining in-flight requests", "timeout", drain.String())
			sctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			err := g.Shutdown(sctx)
			g.log.Info("gateway: stopped")
			return err
		case <-hup:
			g.log.Info("gateway: SIGHUP received; reloading")
			_ = g.Reload()
		case <-changes:
			g.reloadIfChanged()
		}
	}
}

// reloadIfChanged reloads only when the file's content changed, so touching
// the file or a metadata event does not rebuild the plan.
func (g *Gateway) reloadIfChanged() {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	data, err := config.ReadFile(g.opts.ConfigPath)
	if err != nil {
		// Mid-swap (rename) the file may be briefly missing; the next event retries.
		g.log.Debug("gateway: config file not readable yet", "error", err)
		return
	}
	_ = g.reloadData(data, false)
}

// watchMaxDelay bounds the debounce: a reload starts at most this long
// after the first relevant event, even if events keep coming (a file being
// copied slowly, a generator rewriting it in a loop).
const watchMaxDelay = 2 * time.Second

// watchFile reports changes of the file at path, one notification per
// burst of events.
//
// It watches the directory holding path, not the file: editors save by
// writing a new file and renaming it over the old one (a watch on the old
// inode would be lost), and a Kubernetes ConfigMap volume swaps a symlink
// (gatehouse.yaml -> ..data/gatehouse.yaml, ..data -> ..2026_…). Only
// events on the entries that make up the path count: the file itself and
// every symbolic link met while resolving it (whose directories are
// watched too). Other files in the directory, such as a log file written
// on every request, are ignored without even being logged, so they can
// neither postpone a reload nor feed the watch its own debug lines. The
// debounce is bounded by watchMaxDelay after the first relevant event.
// Whether the content really changed is for the caller to tell (by hash).
func watchFile(path string, log interface{ Debug(string, ...any) }) (<-chan struct{}, func(), error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, err
	}
	fw := &fileWatch{path: abs, w: w, dirs: map[string]bool{}}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	fw.dirs[filepath.Dir(abs)] = true
	fw.refresh()
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		var fire <-chan time.Time
		var first time.Time // first relevant event of the current burst
		for {
			select {
			case <-done:
				timer.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !fw.relevant(ev.Name) {
					continue
				}
				log.Debug("gateway: config file event", "event", ev.String())
				// A swap may have moved the file or its links: follow them.
				fw.refresh()
				now := time.Now()
				if fire == nil {
					first = now
				}
				delay := min(watchDebounce, max(first.Add(watchMaxDelay).Sub(now), 0))
				timer.Reset(delay)
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Debug("gateway: watch error", "error", err)
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	stop := func() { close(done); _ = w.Close() }
	return out, stop, nil
}

// fileWatch is the set of directory entries a watched path depends on.
// Only the watch goroutine uses it.
type fileWatch struct {
	path    string
	w       *fsnotify.Watcher
	dirs    map[string]bool // directories watched
	entries map[string]bool // absolute paths whose events matter
}

func (fw *fileWatch) relevant(name string) bool {
	if !filepath.IsAbs(name) {
		name, _ = filepath.Abs(name)
	}
	return fw.entries[filepath.Clean(name)]
}

// refresh recomputes the entries the path resolves through and watches
// their directories; directories no longer involved stop being watched
// (except the path's own, which is always watched).
func (fw *fileWatch) refresh() {
	entries := resolveChain(fw.path)
	dirs := map[string]bool{filepath.Dir(fw.path): true}
	for e := range entries {
		dirs[filepath.Dir(e)] = true
	}
	for d := range dirs {
		if !fw.dirs[d] && fw.w.Add(d) == nil {
			fw.dirs[d] = true
		}
	}
	for d := range fw.dirs {
		if !dirs[d] {
			_ = fw.w.Remove(d)
			delete(fw.dirs, d)
		}
	}
	fw.entries = entries
}

// resolveChain returns path and every symbolic link met while resolving
// it component by component (as the kernel does), plus the file it finally
// names. A component that does not exist (mid-swap) ends the chain and is
// part of it, so its creation counts as an event.
func resolveChain(path string) map[string]bool {
	entries := map[string]bool{path: true}
	dir, rest := filepath.Dir(path), filepath.Base(path)
	for hops := 0; rest != "" && hops < 64; {
		name, after, _ := strings.Cut(rest, string(filepath.Separator))
		rest = after
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			dir = filepath.Dir(dir)
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			entries[p] = true
			break
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			dir = p
			if rest == "" {
				entries[p] = true
			}
			continue
		}
		entries[p] = true
		target, err := os.Readlink(p)
		if err != nil {
			break
		}
		hops++
		if filepath.IsAbs(target) {
			dir = string(filepath.Separator)
		}
		rest = strings.TrimPrefix(target, string(filepath.Separator)) + string(filepath.Separator) + rest
		rest = strings.TrimSuffix(rest, string(filepath.Separator))
	}
	return entries
}
