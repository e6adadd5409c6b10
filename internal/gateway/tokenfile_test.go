package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The admin token file is never written through a symbolic link planted at
// its path (which would let a local user who can write the directory make
// the gateway overwrite any file its user may write), also when the link
// is planted again between the gateway's steps.
func TestAdminTokenFileDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	const victimText = "do not overwrite\n"
	mustWrite(t, victim, victimText)
	tokenPath := filepath.Join(dir, "gatehouse-admin.token")

	check := func(t *testing.T) {
		t.Helper()
		if b, err := os.ReadFile(victim); err != nil || string(b) != victimText {
			t.Fatalf("the symlink target was written: %q %v", b, err)
		}
		fi, err := os.Lstat(tokenPath)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Fatalf("token file mode %v, want a regular file with 0600", fi.Mode())
		}
		b, _ := os.ReadFile(tokenPath)
		if !strings.HasPrefix(string(b), "gha_") {
			t.Fatalf("token file holds %q", b)
		}
	}

	t.Run("planted before start", func(t *testing.T) {
		mustSymlink(t, victim, tokenPath)
		if _, file, err := adminTokenHash(config.Admin{TokenFile: tokenPath}); err != nil || file != tokenPath {
			t.Fatalf("adminTokenHash: %q %v", file, err)
		}
		check(t)
	})

	t.Run("planted again and again", func(t *testing.T) {
		// An attacker re-planting the link in a loop races every step of
		// the write: a remove-then-create is caught between the two.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = os.Remove(tokenPath)
				_ = os.Symlink(victim, tokenPath)
			}
		}()
		for range 2000 {
			if _, _, err := adminTokenHash(config.Admin{TokenFile: tokenPath}); err != nil {
				// A rename may lose to the attacker's remove; never a write through the link.
				continue
			}
		}
		close(stop)
		wg.Wait()
		if b, err := os.ReadFile(victim); err != nil || string(b) != victimText {
			t.Fatalf("the symlink target was written: %q %v", b, err)
		}
		if _, _, err := adminTokenHash(config.Admin{TokenFile: tokenPath}); err != nil {
			t.Fatal(err)
		}
		check(t)
		// No temporary files are left behind.
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Fatalf("directory holds %d entries, want the victim and the token: %v", len(entries), entries)
		}
	})
}
