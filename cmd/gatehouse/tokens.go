package main

// The tokens commands: the revocation list, through the admin API.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminclient"
)

const tokensUsage = `Usage: gatehouse tokens <command> [flags]

Revoke access tokens (JWTs and others) through the admin API: every gateway
sharing the key store refuses them within a second (docs/revocation.md).

Commands:
  revoke --jti JTI [--issuer ISS]
  revoke --token-from FILE|-          (the token is hashed here; only its SHA-256 is sent)
  revoke --token-hash HEX
  revoke --subject SUB [--issuer ISS] [--before TIME]   (tokens issued before TIME, default now)
  revoke --client ID [--issuer ISS] [--before TIME]
  revoke --issuer ISS --subject SUB --block             (every token of the subject, until --until)
  revoke --issuer ISS --session SID                     (the browser sessions of an identity provider session)
  list
  unrevoke ID

Run "gatehouse tokens <command> --help" for a command's flags.
`

// cmdTokens dispatches "gatehouse tokens <command>".
func cmdTokens(args []string, stdout, stderr io.Writer) int {
	return dispatch("tokens", tokensUsage, map[string]func([]string, io.Writer, io.Writer) int{
		"revoke":   tokensRevoke,
		"list":     tokensList,
		"unrevoke": tokensUnrevoke,
	}, args, stdout, stderr)
}

// maxTokenFileBytes bounds a token read by --token-from.
const maxTokenFileBytes = 1 << 20

func tokensRevoke(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("tokens revoke", `tokens revoke (--jti J | --token-from FILE | --token-hash HEX | --subject S | --client C) [flags]

Add entries to the revocation list. Each of --jti, --subject and --client may
be repeated; exactly one kind per call. A token given with --token-from (a
file, or - for standard input) is hashed here: only its SHA-256 reaches the
gateway, and it is never printed.`, stderr)
	var jtis, subjects, clients, hashes, sessions listFlag
	a.fs.Var(&jtis, "jti", "revoke the token with this jti (repeatable)")
	a.fs.Var(&subjects, "subject", "revoke the subject's tokens issued before --before (repeatable); with --block, all of them")
	a.fs.Var(&clients, "client", "revoke the tokens of this OAuth client id (repeatable)")
	a.fs.Var(&sessions, "session", "with --issuer: end the browser sessions (method session) of this identity provider session id, an ID token's sid (repeatable)")
	a.fs.Var(&hashes, "token-hash", "revoke the token whose SHA-256 is this hex value (repeatable)")
	tokenFrom := a.fs.String("token-from", "", "revoke the token read from this file (- for standard input); only its hash is sent")
	issuer := a.fs.String("issuer", "", "only tokens of this issuer (required with --block)")
	block := a.fs.Bool("block", false, "with --issuer and --subject: refuse every token of the subject, also ones issued later, until --until")
	before := a.fs.String("before", "", "with --subject or --client: only tokens issued before this RFC 3339 time (subject default: now)")
	until := a.fs.String("until", "", "when the entries expire, RFC 3339 (default: the longest token lifetime after the cut-off)")
	reason := a.fs.String("reason", "", "operator's note, kept with the entry (never shown to clients)")
	if _, code, stop := a.parseArgs(args, stdout); stop {
		return code
	}
	nr := adminclient.NewRevocations{Issuer: *issuer, Reason: *reason}
	kinds := 0
	for _, k := range []struct {
		kind   string
		values []string
	}{{"jti", jtis}, {"subject", subjects}, {"client", clients}, {"token", hashes}, {"session", sessions}} {
		if len(k.values) > 0 {
			kinds++
			nr.Kind, nr.Values = k.kind, k.values
		}
	}
	if *tokenFrom != "" {
		kinds++
		sum, err := hashTokenFrom(*tokenFrom)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse tokens revoke: %v\n", err)
			return exitError
		}
		nr.Kind, nr.Values = "token", []string{sum}
	}
	switch {
	case kinds != 1:
		return a.usageError("give exactly one of --jti, --token-from, --token-hash, --subject, --client, --session")
	case nr.Kind == "session" && *issuer == "":
		return a.usageError("--session needs --issuer")
	case *block && nr.Kind != "subject":
		return a.usageError("--block goes with --subject")
	case *block && *issuer == "":
		return a.usageError("--block needs --issuer")
	case *block && *before != "":
		return a.usageError("--block refuses every token: --before does not apply")
	}
	if *block {
		nr.Kind = "issuer_subject"
	}
	for i, h := range nr.Values {
		if nr.Kind == "token" {
			nr.Values[i] = strings.ToLower(h)
		}
	}
	for _, t := range []struct {
		flag string
		in   string
		out  **time.Time
	}{{"before", *before, &nr.Before}, {"until", *until, &nr.Until}} {
		if t.in == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.in)
		if err != nil {
			return a.usageError("--%s: want an RFC 3339 time such as 2026-11-29T12:00:00Z", t.flag)
		}
		*t.out = &v
	}
	list, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) ([]adminclient.Revocation, error) {
		return c.Revoke(ctx, nr)
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, map[string]any{"revocations": list})
	}
	fmt.Fprintf(stdout, "Revoked (%d %s).\n\n", len(list), plural(len(list), "entry", "entries"))
	printRevocations(stdout, list)
	return exitOK
}

// hashTokenFrom reads one token (surrounding white space trimmed) and
// returns its SHA-256 in hex, the gateway's token hash.
func hashTokenFrom(name string) (string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxTokenFileBytes+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxTokenFileBytes {
		return "", fmt.Errorf("the token is larger than %d bytes", maxTokenFileBytes)
	}
	token := bytes.TrimSpace(data)
	if t, ok := bytes.CutPrefix(token, []byte("Bearer ")); ok {
		token = bytes.TrimSpace(t)
	}
	if len(token) == 0 || bytes.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("want one token, alone")
	}
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:]), nil
}

func tokensList(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("tokens list", "tokens list [flags]\n\nList the revocation list's active entries.", stderr)
	if _, code, stop := a.parseArgs(args, stdout); stop {
		return code
	}
	list, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) ([]adminclient.Revocation, error) {
		return c.ListRevocations(ctx)
	})
	if !ok {
		return code
	}
	if a.json {
		if list == nil {
			list = []adminclient.Revocation{}
		}
		return printJSON(stdout, map[string]any{"revocations": list})
	}
	printRevocations(stdout, list)
	return exitOK
}

func tokensUnrevoke(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("tokens unrevoke", "tokens unrevoke ID [flags]\n\nRemove an entry of the revocation list: what it matched works again.", stderr)
	pos, code, stop := a.parseArgs(args, stdout, "ID")
	if stop {
		return code
	}
	if _, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (struct{}, error) {
		return struct{}{}, c.Unrevoke(ctx, pos[0])
	}); !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(stdout, "Removed %s.\n", pos[0])
	return exitOK
}

func printRevocations(w io.Writer, list []adminclient.Revocation) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tISSUER\tVALUE\tBEFORE\tEXPIRES\tREASON")
	for _, r := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, orDash(r.Issuer), r.Value,
			formatTimePtr(r.Before), formatTime(r.ExpiresAt), orDash(r.Reason))
	}
	_ = tw.Flush()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
