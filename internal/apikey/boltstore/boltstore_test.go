package boltstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apikey.Store {
		s, _ := openTemp(t)
		return s
	})
}

// verify checks bbolt's page structure and that every index agrees with
// the records: what "the store opens cleanly" means after a crash.
func verify(s *Store) error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		nKeys := 0
		if err := b.keys.ForEach(func(id, v []byte) error {
			nKeys++
			rec, err := decodeKey(v)
			if err != nil {
				return err
			}
			if rec.ID != string(id) {
				return fmt.Errorf("key %s stored under %s", rec.ID, id)
			}
			if got := b.keyHashes.Get(rec.Hash); string(got) != rec.ID {
				return fmt.Errorf("key %s: hash index says %q", id, got)
			}
			if b.consumerKeys.Get(consumerKeyEntry(rec.ConsumerID, rec.ID)) == nil {
				return fmt.Errorf("key %s missing from consumer_keys", id)
			}
			if b.consumers.Get([]byte(rec.ConsumerID)) == nil {
				return fmt.Errorf("key %s: consumer %s missing", id, rec.ConsumerID)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, idx := range []struct {
			name string
			b    *bolt.Bucket
		}{{"key_hashes", b.keyHashes}, {"consumer_keys", b.consumerKeys}} {
			if n := idx.b.Stats().KeyN; n != nKeys {
				return fmt.Errorf("%s has %d entries for %d keys", idx.name, n, nKeys)
			}
		}
		nConsumers := 0
		if err := b.consumers.ForEach(func(id, v []byte) error {
			nConsumers++
			rec, err := decodeConsumer(v)
			if err != nil {
				return err
			}
			if got := b.consumerNames.Get([]byte(rec.Name)); string(got) != string(id) {
				return fmt.Errorf("consumer %s: name index says %q", id, got)
			}
			return nil
		}); err != nil {
			return err
		}
		if n := b.consumerNames.Stats().KeyN; n != nConsumers {
			return fmt.Errorf("consumer_names has %d entries for %d consumers", n, nConsumers)
		}
		return nil
	})
}

func TestFileMode(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("store file mode = %v, want no group or other access", perm)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "persisted", Metadata: map[string]string{"a": "b"}, CreatedAt: time.Now()}
	if err := s.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	k := &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: []byte("0123456789abcdef0123456789abcdef"), Status: apikey.StatusActive, CreatedAt: time.Now()}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	used := time.Now()
	if err := s.TouchKeys(ctx, map[string]time.Time{k.ID: used}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	gotK, gotC, err := s.LookupKey(ctx, k.Hash)
	if err != nil {
		t.Fatalf("LookupKey after reopen: %v", err)
	}
	if gotK.ID != k.ID || gotC.Name != c.Name || gotC.Metadata["a"] != "b" {
		t.Fatalf("after reopen: key %+v consumer %+v", gotK, gotC)
	}
	if gotK.LastUsedAt == nil || !gotK.LastUsedAt.Equal(used.Truncate(time.Microsecond)) {
		t.Fatalf("LastUsedAt after reopen = %v, want %v", gotK.LastUsedAt, used)
	}
	if err := verify(s); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	s, path := openTemp(t)
	defer s.Close()
	start := time.Now()
	s2, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("second Open took %s", elapsed)
	}
	if !errors.Is(err, apikey.ErrUnavailable) || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open error = %q, want ErrUnavailable naming the file and saying it is in use", err)
	}
	// The default timeout is about a second, not forever.
	start = time.Now()
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("second Open with default options succeeded")
	}
	if elapsed := time.Since(start); elapsed < DefaultTimeout/2 || elapsed > DefaultTimeout+3*time.Second {
		t.Fatalf("second Open with default timeout took %s", elapsed)
	}
	// Once the first store closes, the file opens again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestOpenRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchemaVersion, []byte(strconv.Itoa(schemaVersion+1)))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, tc := range []struct {
		name    string
		path    string
		content []byte // written first when non-nil
		want    string
	}{
		{"text file", filepath.Join(dir, "notes.txt"), []byte("these are not the keys you are looking for\n"), "not a bbolt database"},
		{"large garbage", filepath.Join(dir, "garbage.bin"), bytes.Repeat([]byte("garbage!"), 4096), "not a bbolt database"},
		{"other bbolt application", foreign, nil, "another application"},
		{"newer schema", newer, nil, "newer"},
		{"directory", dir, nil, dir},
		{"missing directory", filepath.Join(dir, "missing", "keys.db"), nil, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != nil {
				if err := os.WriteFile(tc.path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(tc.path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "boltstore: ") {
				t.Fatalf("Open(%s) error = %q, want it to mention %q", tc.path, err, tc.want)
			}
			if tc.content != nil {
				after, err := os.ReadFile(tc.path)
				if err != nil || !bytes.Equal(after, tc.content) {
					t.Fatalf("Open modified a file it rejected (err %v)", err)
				}
			}
		})
	}
}

func TestContextCanceled(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.GetConsumer(ctx, "c_x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetConsumer with canceled context: %v", err)
	}
	err := s.CreateConsumer(ctx, &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "late", CreatedAt: time.Now()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateConsumer with canceled context: %v", err)
	}
}

func TestInvalidInput(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	defer s.Close()
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "owner", CreatedAt: time.Now()}
	if err := s.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"nil consumer", func() error { return s.CreateConsumer(ctx, nil) }},
		{"empty consumer id", func() error { return s.CreateConsumer(ctx, &apikey.Consumer{Name: "x"}) }},
		{"slash in consumer id", func() error { return s.CreateConsumer(ctx, &apikey.Consumer{ID: "c_a/b", Name: "x"}) }},
		{"empty consumer name", func() error { return s.CreateConsumer(ctx, &apikey.Consumer{ID: apikey.NewConsumerID()}) }},
		{"nil key", func() error { return s.CreateKey(ctx, nil) }},
		{"empty key id", func() error { return s.CreateKey(ctx, &apikey.Key{ConsumerID: c.ID, Hash: []byte{1}}) }},
		{"slash in key id", func() error { return s.CreateKey(ctx, &apikey.Key{ID: "k/1", ConsumerID: c.ID, Hash: []byte{1}}) }},
		{"empty hash", func() error { return s.CreateKey(ctx, &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID}) }},
		{"nil update", func() error { return s.UpdateKey(ctx, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, apikey.ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
		})
	}
	if err := verify(s); err != nil {
		t.Fatal(err)
	}
}

// crashChildEnv makes the test binary act as the crash-test child: it
// writes keys to the store at the path in the variable until killed.
const crashChildEnv = "GATEHOUSE_BOLTSTORE_CRASH_CHILD"

// crashChildMaxKeys bounds the child in case the parent never kills it.
const crashChildMaxKeys = 5000

// crashHash derives a key's hash from its id, so the parent can look up
// every acknowledged key by hash without the child telling it.
func crashHash(id string) []byte {
	h := sha256.Sum256([]byte("crash-test/" + id))
	return h[:]
}

func runCrashChild(path string) {
	ctx := context.Background()
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "crash-" + strconv.Itoa(os.Getpid()), CreatedAt: time.Now()}
	if err := s.CreateConsumer(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "child create consumer:", err)
		os.Exit(2)
	}
	fmt.Printf("CONSUMER %s\n", c.ID)
	for i := range crashChildMaxKeys {
		id := apikey.NewKeyID()
		k := &apikey.Key{
			ID: id, ConsumerID: c.ID, Hash: crashHash(id), Status: apikey.StatusActive,
			Name: "burst-" + strconv.Itoa(i), Scopes: []string{"a", "b"}, CreatedAt: time.Now(),
		}
		if err := s.CreateKey(ctx, k); err != nil {
			fmt.Fprintln(os.Stderr, "child create key:", err)
			os.Exit(2)
		}
		// Only now is the write acknowledged (fsynced).
		fmt.Printf("ACK %s\n", id)
		if i%10 == 0 {
			_ = s.TouchKeys(ctx, map[string]time.Time{id: time.Now()})
		}
	}
	os.Exit(3)
}

// TestCrashSafety SIGKILLs a process in the middle of a burst of writes and
// checks that every write it acknowledged is in the file, and that the file
// opens cleanly and is consistent. Run twice on the same file, so the second
// child also recovers from the first one's kill.
func TestCrashSafety(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		runCrashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var consumers []string
	var acked []string
	for round := range 2 {
		consumer, ids := crashOnce(t, path, 40+round*25)
		consumers = append(consumers, consumer)
		acked = append(acked, ids...)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	if err := verify(s); err != nil {
		t.Fatalf("store inconsistent after SIGKILL: %v", err)
	}
	ctx := context.Background()
	for _, id := range consumers {
		if _, err := s.GetConsumer(ctx, id); err != nil {
			t.Fatalf("acknowledged consumer %s lost: %v", id, err)
		}
	}
	for _, id := range acked {
		k, c, err := s.LookupKey(ctx, crashHash(id))
		if err != nil {
			t.Fatalf("acknowledged key %s lost: %v", id, err)
		}
		if k.ID != id || c == nil {
			t.Fatalf("LookupKey(%s) = %s", id, k.ID)
		}
	}
	all, err := s.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < len(acked) || len(all) > len(acked)+2 {
		// At most one unacknowledged write per child may have committed
		// just before the kill.
		t.Fatalf("store holds %d keys, %d acknowledged", len(all), len(acked))
	}
	t.Logf("%d acknowledged keys survived two SIGKILLs; %d keys in the store", len(acked), len(all))
}

// crashOnce runs one child until it has acknowledged killAfter keys, kills
// it with SIGKILL, and returns what it acknowledged.
func crashOnce(t *testing.T, path string, killAfter int) (consumer string, acked []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "CONSUMER "):
			consumer = strings.TrimPrefix(line, "CONSUMER ")
		case strings.HasPrefix(line, "ACK "):
			acked = append(acked, strings.TrimPrefix(line, "ACK "))
		}
		if !killed && len(acked) >= killAfter {
			// Kill mid-burst; keep reading: lines already in the pipe were
			// acknowledged before the kill.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill (%d acks): %v\n%s", len(acked), err, stderr.String())
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	if consumer == "" {
		t.Fatal("child acknowledged no consumer")
	}
	return consumer, acked
}

// TestLookupRespectsDeadline: a lookup that cannot start its read
// transaction (here: a writer growing the file waits for an open read, and
// new reads queue behind it) returns ErrUnavailable at the caller's
// deadline instead of blocking the request.
func TestLookupRespectsDeadline(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keys.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "c", CreatedAt: time.Now().UTC()}
	if err := s.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("k"))
	k := &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: hash[:], Hint: "x", Status: apikey.StatusActive, CreatedAt: time.Now().UTC()}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}

	reader, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after Open's cleanup, so it runs first: a failing test
	// must not leave the reader open, or Close would wait for it forever.
	var rolledBack bool
	rollback := func() {
		if !rolledBack {
			rolledBack = true
			if err := reader.Rollback(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(rollback)
	grown := make(chan error, 1)
	go func() {
		grown <- s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("test_scratch"))
			if err != nil {
				return err
			}
			return b.Put([]byte("big"), make([]byte, 8<<20)) // forces a remap
		})
	}()

	// Once the writer waits for the reader to remap, new readers block:
	// a lookup must then give up at its deadline. Until the writer gets
	// there (a loaded machine may take a while), lookups still succeed.
	for give := time.Now().Add(20 * time.Second); ; {
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		start := time.Now()
		_, _, err = s.LookupKey(dctx, hash[:])
		took := time.Since(start)
		cancel()
		if errors.Is(err, apikey.ErrUnavailable) {
			if took > time.Second {
				t.Fatalf("LookupKey took %s past its 100ms deadline", took)
			}
			break
		}
		if err != nil {
			t.Fatalf("LookupKey: %v, want ErrUnavailable", err)
		}
		if time.Now().After(give) {
			t.Fatal("the writer never blocked new readers")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rollback()
	if err := <-grown; err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LookupKey(ctx, hash[:]); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReadOnly: a read-only open reads an existing store, never
// creates or writes one, and fails fast (unavailable) while a writer holds
// the file.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.db")
	if _, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); err == nil {
		t.Fatal("a read-only open of a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only open created the file: %v", err)
	}
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "c", CreatedAt: time.Now().UTC()}
	if err := w.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("read-only open while a writer holds the file: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.GetConsumer(ctx, c.ID); err != nil || got.Name != "c" {
		t.Fatalf("GetConsumer: %v, %v", got, err)
	}
	if err := r.CreateConsumer(ctx, &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "d", CreatedAt: time.Now().UTC()}); err == nil {
		t.Fatal("a read-only store wrote")
	}
}
