package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

func TestKeysHashGenerate(t *testing.T) {
	var out, errOut bytes.Buffer
	missing := filepath.Join(t.TempDir(), "none.yaml") // defaults: gate_live_, no pepper
	if code := runCLI([]string{"keys", "hash", "--generate", "-c", missing}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var key, hash string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "key:  "); ok {
			key = v
		}
		if v, ok := strings.CutPrefix(line, "hash: "); ok {
			hash = v
		}
	}
	if err := (apikey.Format{}).Check(key); err != nil {
		t.Fatalf("generated key %q: %v", key, err)
	}
	sum := sha256.Sum256([]byte(key))
	if hash != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %q does not match the key", hash)
	}
}
