package pgstore

import (
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"

	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// crashChildEnv, when set, makes TestCrashSafety run as the child: it holds
// "<schema> <consumer id>".
const crashChildEnv = "GATEHOUSE_PGSTORE_CRASH_CHILD"

// TestCrashSafety kills a process with SIGKILL in the middle of a burst of
// CreateKey calls and checks that every key it acknowledged (CreateKey
// returned nil, then it printed the id) is in the database: a nil error
// means committed.
func TestCrashSafety(t *testing.T) {
	if arg := os.Getenv(crashChildEnv); arg != "" {
		crashChild(t, arg)
		return
	}
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	s := openOn(t, dsn, Options{Schema: schema})
	c := newConsumer(t, s)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.v=false", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+schema+" "+c.ID, "GATEHOUSE_TEST_POSTGRES_DSN="+dsn)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	const killAfter = 100
	var acked []string
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// EOF after the kill; a final line without '\n' was cut
			// short by the kill and is not an acknowledgement.
			break
		}
		id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack ")
		if !ok {
			continue // test framework chatter
		}
		acked = append(acked, id)
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code runs
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child exited before %d acknowledgements (got %d): %v", killAfter, len(acked), werr)
	}

	ctx := testCtx(t)
	keys, err := s.ListKeys(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, k := range keys {
		stored[k.ID] = true
	}
	for _, id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged key %s is not in the database", id)
		}
	}
	t.Logf("%d keys acknowledged before SIGKILL, %d stored", len(acked), len(stored))
}

// crashChild creates keys from several goroutines until it is killed,
// printing each id once CreateKey has returned nil.
func crashChild(t *testing.T, arg string) {
	schema, consumerID, _ := strings.Cut(arg, " ")
	dsn := pgtest.TestDSN(t)
	s, err := Open(context.Background(), dsn, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	// Bounded, in case the parent dies without killing us.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := &apikey.Key{
					ID:         apikey.NewKeyID(),
					ConsumerID: consumerID,
					Hash:       randomHash(),
					Status:     apikey.StatusActive,
					CreatedAt:  time.Now(),
				}
				if err := s.CreateKey(ctx, k); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", k.ID) // one write(2) per line, unbuffered
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Fatal("crash child was not killed within a minute")
}
