package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
)

// keysHash prints the lookup hash of a key for api_keys.static. It runs
// offline: the hash depends only on the configured prefix and pepper, so it
// reads the configuration (if present) and never calls the admin API.
func keysHash(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys hash", "keys hash [-c FILE] [--generate] < KEY\n\nPrint the sha256:<hex> lookup hash of a key read from standard input, for\napi_keys.static. It follows api_keys.prefix and api_keys.pepper of the\nconfiguration. With --generate, a new key is made, printed once, and hashed.", stderr)
	path := fs.String("c", "gatehouse.yaml", "configuration file (for api_keys.prefix and api_keys.pepper)")
	generate := fs.Bool("generate", false, "generate a new key instead of reading one")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	keysCfg := config.Default().APIKeys
	if _, err := os.Stat(*path); err == nil {
		cfg, _, err := config.Load(*path)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse keys hash: %v\n", err)
			return exitError
		}
		keysCfg = cfg.APIKeys
	}
	format, err := apikey.NewFormat(keysCfg.Prefix)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse keys hash: %v\n", err)
		return exitError
	}
	var pepper []byte
	if keysCfg.Pepper != "" {
		pepper = []byte(keysCfg.Pepper)
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse keys hash: %v\n", err)
		return exitError
	}

	var key string
	if *generate {
		if key, err = format.Generate(); err != nil {
			fmt.Fprintf(stderr, "gatehouse keys hash: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "key:  %s\n", key)
		fmt.Fprintln(stdout, "Store the key now: it cannot be shown again.")
	} else {
		line, _ := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
		key = strings.TrimSpace(line)
	}
	if err := format.Check(key); err != nil {
		// Never echo the input: it may be a real key with a typo.
		fmt.Fprintln(stderr, "gatehouse keys hash: not a well-formed key for this prefix (length, characters or checksum)")
		return exitError
	}
	prefix := ""
	if *generate {
		prefix = "hash: "
	}
	fmt.Fprintf(stdout, "%ssha256:%s\n", prefix, hex.EncodeToString(hasher.Hash(key)))
	return exitOK
}
