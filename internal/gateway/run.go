package gateway

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
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

// watchFile watches the directory holding path (editors and ConfigMaps
// replace files by rename, which a watch on the file itself would lose)
// and sends one notification per burst of events.
func watchFile(path string, log interface{ Debug(string, ...any) }) (<-chan struct{}, func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-done:
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				log.Debug("gateway: config directory event", "event", ev.String())
				if timer == nil {
					timer = time.NewTimer(watchDebounce)
				} else {
					timer.Reset(watchDebounce)
				}
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
