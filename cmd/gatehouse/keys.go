package main

// The consumers, keys and admin-token commands: a command line for the
// admin API, through internal/adminclient.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminclient"
	"github.com/gatehouse/gatehouse/internal/config"
)

// adminTokenEnv holds the admin token; it comes before any token file.
const adminTokenEnv = "GATEHOUSE_ADMIN_TOKEN"

// adminRequestTimeout bounds one command's call to the admin API.
const adminRequestTimeout = 30 * time.Second

const consumersUsage = `Usage: gatehouse consumers <command> [flags]

Manage the consumers that own API keys, through the admin API.

Commands:
  create --name NAME [--group G]... [--tag T]... [--meta k=v]...
  list
  show ID|NAME
  delete ID|NAME     (deletes the consumer's keys too)
  usage ID|NAME      (quota use: used, limit, reset)

Run "gatehouse consumers <command> --help" for a command's flags.
`

const keysUsage = `Usage: gatehouse keys <command> [flags]

Issue, list, rotate and revoke API keys, through the admin API.

Commands:
  create --consumer ID|NAME [--name N] [--scope S]... [--route R]... [--expires-in 720h] [--tier T]
  list [--consumer ID|NAME]
  show KEY_ID
  rotate KEY_ID [--grace 24h]
  revoke KEY_ID
  hash [--generate]      print the sha256:<hex> hash of a key read from stdin
                         (or of a new key) for api_keys.static

Run "gatehouse keys <command> --help" for a command's flags.
`

// adminHelp ends the synopsis of every command that calls the admin API.
const adminHelp = `

The admin API is found at --admin, else at admin.address in the
configuration (-c), else at http://127.0.0.1:9901. The admin token comes from
$GATEHOUSE_ADMIN_TOKEN, else from --token-file, else from the file named by
admin.token_file (default gatehouse-admin.token, written by "gatehouse run").`

// cmdConsumers dispatches "gatehouse consumers <command>".
func cmdConsumers(args []string, stdout, stderr io.Writer) int {
	return dispatch("consumers", consumersUsage, map[string]func([]string, io.Writer, io.Writer) int{
		"create": consumersCreate,
		"list":   consumersList,
		"show":   consumersShow,
		"delete": consumersDelete,
		"usage":  consumersQuotaUsage,
	}, args, stdout, stderr)
}

// cmdKeys dispatches "gatehouse keys <command>".
func cmdKeys(args []string, stdout, stderr io.Writer) int {
	return dispatch("keys", keysUsage, map[string]func([]string, io.Writer, io.Writer) int{
		"create": keysCreate,
		"list":   keysList,
		"show":   keysShow,
		"rotate": keysRotate,
		"revoke": keysRevoke,
		"hash":   keysHash,
	}, args, stdout, stderr)
}

func dispatch(group, usage string, cmds map[string]func([]string, io.Writer, io.Writer) int, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gatehouse %s: unknown command %q\n\n%s", group, args[0], usage)
		return exitUsage
	}
	return cmd(args[1:], stdout, stderr)
}

// adminFlags are the flags shared by every command that calls the admin API.
type adminFlags struct {
	admin     string
	config    string
	tokenFile string
	json      bool
	fs        *flag.FlagSet
}

func newAdminFlags(name, synopsis string, stderr io.Writer) *adminFlags {
	a := &adminFlags{fs: newFlags(name, synopsis+adminHelp, stderr)}
	a.fs.StringVar(&a.admin, "admin", "", "admin API base URL (default: from the configuration's admin.address, else http://127.0.0.1:9901)")
	a.fs.StringVar(&a.config, "c", "gatehouse.yaml", "configuration file, read for admin.address and admin.token_file if present")
	a.fs.StringVar(&a.tokenFile, "token-file", "", "file holding the admin token (when $"+adminTokenEnv+" is unset)")
	a.fs.BoolVar(&a.json, "json", false, "print the API's JSON instead of text")
	return a
}

// parseArgs parses flags placed before, between or after the positional
// arguments, which must be exactly the named ones. It prints and returns
// like parse.
func (a *adminFlags) parseArgs(args []string, stdout io.Writer, names ...string) (pos []string, exit int, stop bool) {
	fs := a.fs
	stderr := fs.Output()
	for {
		var parseOut bytes.Buffer
		fs.SetOutput(&parseOut)
		err := fs.Parse(args)
		fs.SetOutput(stderr)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(stdout)
			fs.Usage()
			fs.SetOutput(stderr)
			return nil, exitOK, true
		case err != nil:
			_, _ = parseOut.WriteTo(stderr)
			return nil, exitUsage, true
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...) // after "--", everything is an argument
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < len(names):
		fmt.Fprintf(stderr, "gatehouse %s: missing %s\n", fs.Name(), names[len(pos)])
		fs.Usage()
		return nil, exitUsage, true
	case len(pos) > len(names):
		fmt.Fprintf(stderr, "gatehouse %s: unexpected argument %q\n", fs.Name(), pos[len(names)])
		fs.Usage()
		return nil, exitUsage, true
	}
	for i, p := range pos {
		if p == "" {
			fmt.Fprintf(stderr, "gatehouse %s: empty %s\n", fs.Name(), names[i])
			return nil, exitUsage, true
		}
	}
	return pos, 0, false
}

// usageError reports a bad flag value and returns exitUsage.
func (a *adminFlags) usageError(format string, args ...any) int {
	fmt.Fprintf(a.fs.Output(), "gatehouse %s: %s\n", a.fs.Name(), fmt.Sprintf(format, args...))
	a.fs.Usage()
	return exitUsage
}

// client builds the admin client from the flags, the environment and the
// configuration. On failure it has printed why and returns the exit code.
func (a *adminFlags) client(stderr io.Writer) (*adminclient.Client, int) {
	base := a.admin
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, a.usageError("--admin %q: want http://host:port or https://host:port", base)
		}
	}
	token := strings.TrimSpace(os.Getenv(adminTokenEnv))
	if token == "" && a.tokenFile != "" {
		t, err := readTokenFile(a.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse: %v\n", err)
			return nil, exitError
		}
		token = t
	}
	if base == "" || token == "" {
		adm, err := a.adminConfig()
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse: %v\n", err)
			return nil, exitError
		}
		if base == "" {
			if adm.Disabled {
				fmt.Fprintf(stderr, "gatehouse: the admin listener is disabled in %s; give the admin API's URL with --admin\n", a.config)
				return nil, exitError
			}
			base = adminURL(adm.Address)
		}
		if token == "" && adm.TokenFile != "" {
			t, err := readTokenFile(adm.TokenFile)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				fmt.Fprintf(stderr, "gatehouse: %v\n", err)
				return nil, exitError
			default:
				token = t
			}
		}
	}
	if token == "" {
		fmt.Fprintf(stderr, "gatehouse %s: no admin token: set $%s, pass --token-file, or run where \"gatehouse run\" wrote its token file\n", a.fs.Name(), adminTokenEnv)
		return nil, exitUsage
	}
	return &adminclient.Client{
		BaseURL: base,
		Token:   token,
		HTTP:    &http.Client{Timeout: adminRequestTimeout},
	}, 0
}

// adminConfig returns the admin section of the configuration file, or the
// defaults when the default file is absent.
func (a *adminFlags) adminConfig() (config.Admin, error) {
	explicit := false
	a.fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "c" })
	if _, err := os.Stat(a.config); errors.Is(err, fs.ErrNotExist) && !explicit {
		return config.Default().Admin, nil
	}
	cfg, _, err := config.Load(a.config)
	if err != nil {
		return config.Admin{}, fmt.Errorf("reading %s for the admin address and token file (or pass --admin and --token-file):\n%w", a.config, err)
	}
	return cfg.Admin, nil
}

// adminURL turns a listen address into a URL to dial: a wildcard or empty
// host is reached on loopback.
func adminURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// readTokenFile reads a token; the error never holds the file's content.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	return t, nil
}

// apiFailed prints an error from the admin API to stderr and returns exitError.
func apiFailed(stderr io.Writer, base string, err error) int {
	var ae *adminclient.APIError
	if !errors.As(err, &ae) {
		fmt.Fprintf(stderr, "gatehouse: admin API at %s: %v\n", base, strings.TrimPrefix(err.Error(), "adminclient: "))
		return exitError
	}
	msg := ae.Title
	if msg == "" {
		msg = http.StatusText(ae.Status)
	}
	fmt.Fprintf(stderr, "gatehouse: %s (HTTP %d)", msg, ae.Status)
	if ae.Detail != "" {
		fmt.Fprintf(stderr, ": %s", ae.Detail)
	}
	fmt.Fprintln(stderr)
	for _, f := range ae.Fields {
		fmt.Fprintf(stderr, "  %s: %s\n", f.Field, f.Message)
	}
	if ae.Status == http.StatusUnauthorized {
		fmt.Fprintf(stderr, "check the admin token ($%s or --token-file)\n", adminTokenEnv)
	}
	return exitError
}

func printJSON(w io.Writer, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "gatehouse: %v\n", err)
		return exitError
	}
	_, _ = w.Write(append(b, '\n'))
	return exitOK
}

func apiContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), adminRequestTimeout)
}

// callAdmin makes one admin API request with the command's client, under
// the request timeout, and reports a failure on stderr; when ok is false
// the command exits with code.
func callAdmin[T any](a *adminFlags, stderr io.Writer, do func(context.Context, *adminclient.Client) (T, error)) (out T, code int, ok bool) {
	c, code := a.client(stderr)
	if c == nil {
		return out, code, false
	}
	ctx, cancel := apiContext()
	defer cancel()
	out, err := do(ctx, c)
	if err != nil {
		return out, apiFailed(stderr, c.BaseURL, err), false
	}
	return out, exitOK, true
}

// --- consumers ---

func consumersCreate(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("consumers create", "consumers create --name NAME [--group G]... [--tag T]... [--meta k=v]... [flags]\n\nCreate a consumer, the owner of API keys.", stderr)
	name := a.fs.String("name", "", "unique consumer name (required)")
	var groups, tags listFlag
	meta := metaFlag{}
	a.fs.Var(&groups, "group", "group of the consumer (repeatable)")
	a.fs.Var(&tags, "tag", "tag of the consumer (repeatable)")
	a.fs.Var(meta, "meta", "metadata as key=value (repeatable)")
	if _, code, stop := a.parseArgs(args, stdout); stop {
		return code
	}
	if *name == "" {
		return a.usageError("--name is required")
	}
	nc := adminclient.NewConsumer{Name: *name, Groups: groups, Tags: tags}
	if len(meta) > 0 {
		nc.Metadata = meta
	}
	out, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.Consumer, error) {
		return c.CreateConsumer(ctx, nc)
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "Created consumer %s (%s).\n\n", out.Name, out.ID)
	printConsumer(stdout, out)
	return exitOK
}

func consumersList(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("consumers list", "consumers list [flags]\n\nList consumers.", stderr)
	if _, code, stop := a.parseArgs(args, stdout); stop {
		return code
	}
	list, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) ([]adminclient.Consumer, error) {
		return c.ListConsumers(ctx)
	})
	if !ok {
		return code
	}
	if a.json {
		if list == nil {
			list = []adminclient.Consumer{}
		}
		return printJSON(stdout, map[string]any{"consumers": list})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tGROUPS\tTAGS\tCREATED")
	for _, x := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.ID, x.Name, joinOrDash(x.Groups), joinOrDash(x.Tags), formatTime(x.CreatedAt))
	}
	_ = tw.Flush()
	return exitOK
}

func consumersShow(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("consumers show", "consumers show ID|NAME [flags]\n\nShow a consumer.", stderr)
	pos, code, stop := a.parseArgs(args, stdout, "ID|NAME")
	if stop {
		return code
	}
	out, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.Consumer, error) {
		return c.GetConsumer(ctx, pos[0])
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, out)
	}
	printConsumer(stdout, out)
	return exitOK
}

func consumersDelete(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("consumers delete", "consumers delete ID|NAME [flags]\n\nDelete a consumer and every key it owns: its keys stop working.", stderr)
	pos, code, stop := a.parseArgs(args, stdout, "ID|NAME")
	if stop {
		return code
	}
	if _, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (struct{}, error) {
		return struct{}{}, c.DeleteConsumer(ctx, pos[0])
	}); !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(stdout, "Deleted consumer %s and its keys.\n", pos[0])
	return exitOK
}

func consumersQuotaUsage(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("consumers usage", "consumers usage ID|NAME [flags]\n\nShow a consumer's quota use: for each quota that counts by it, used, limit and reset time.", stderr)
	pos, code, stop := a.parseArgs(args, stdout, "ID|NAME")
	if stop {
		return code
	}
	out, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.ConsumerUsage, error) {
		return c.GetConsumerUsage(ctx, pos[0])
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, out)
	}
	if len(out.Quotas) == 0 {
		fmt.Fprintf(stdout, "No quota counts by consumer %s.\n", out.Name)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tQUOTA\tPERIOD\tUSED\tLIMIT\tRESET")
	for _, q := range out.Quotas {
		period := q.Period
		if !q.Calendar {
			period += " (rolling)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", q.Policy, q.Name, period, q.Used, q.Limit, formatTime(q.Reset))
	}
	_ = tw.Flush()
	return exitOK
}

func printConsumer(w io.Writer, c *adminclient.Consumer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", c.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", c.Name)
	fmt.Fprintf(tw, "Groups:\t%s\n", joinOrDash(c.Groups))
	fmt.Fprintf(tw, "Tags:\t%s\n", joinOrDash(c.Tags))
	keys := slices.Sorted(maps.Keys(c.Metadata))
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + c.Metadata[k]
	}
	fmt.Fprintf(tw, "Metadata:\t%s\n", joinOrDash(pairs))
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(c.CreatedAt))
	_ = tw.Flush()
}

// --- keys ---

// secretNotice follows every secret the command prints.
const secretNotice = "Store it now: it cannot be shown again."

func keysCreate(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("keys create", "keys create --consumer ID|NAME [--name N] [--scope S]... [--route R]... [--expires-in 720h] [--tier T] [flags]\n\nIssue an API key. Its secret is printed once and cannot be shown again.", stderr)
	consumer := a.fs.String("consumer", "", "consumer id or name (required)")
	name := a.fs.String("name", "", "name of the key, e.g. what uses it")
	var scopes, routes listFlag
	a.fs.Var(&scopes, "scope", "scope granted to the key (repeatable)")
	a.fs.Var(&routes, "route", "route name or tag the key may call (repeatable; default: any route accepting API keys)")
	expiresIn := a.fs.String("expires-in", "", "lifetime, e.g. 720h (default: no expiry)")
	tier := a.fs.String("tier", "", "rate-limit tier")
	if _, code, stop := a.parseArgs(args, stdout); stop {
		return code
	}
	if *consumer == "" {
		return a.usageError("--consumer is required")
	}
	if *expiresIn != "" {
		if d, err := time.ParseDuration(*expiresIn); err != nil || d <= 0 {
			return a.usageError("--expires-in %q: want a positive duration such as 720h", *expiresIn)
		}
	}
	out, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.IssuedKey, error) {
		return c.CreateKey(ctx, *consumer, adminclient.NewKey{
			Name: *name, Scopes: scopes, Routes: routes, RateLimitTier: *tier, ExpiresIn: *expiresIn,
		})
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "Created key %s for consumer %s.\n\n", out.Key.ID, out.Key.ConsumerID)
	printKey(stdout, &out.Key)
	printSecret(stdout, out.Secret)
	return exitOK
}

func keysList(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("keys list", "keys list [--consumer ID|NAME] [flags]\n\nList API keys (never their secrets).", stderr)
	consumer := a.fs.String("consumer", "", "only this consumer's keys (id or name)")
	if _, code, stop := a.parseArgs(args, stdout); stop {
		return code
	}
	list, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) ([]adminclient.Key, error) {
		return c.ListKeys(ctx, *consumer)
	})
	if !ok {
		return code
	}
	if a.json {
		if list == nil {
			list = []adminclient.Key{}
		}
		return printJSON(stdout, map[string]any{"keys": list})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONSUMER\tNAME\tHINT\tSTATUS\tSCOPES\tEXPIRES\tLAST USED")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.ConsumerID, orDash(k.Name), k.Hint, k.Status,
			joinOrDash(k.Scopes), formatTimePtr(k.ExpiresAt), formatTimePtr(k.LastUsedAt))
	}
	_ = tw.Flush()
	return exitOK
}

func keysShow(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("keys show", "keys show KEY_ID [flags]\n\nShow an API key (never its secret).", stderr)
	pos, code, stop := a.parseArgs(args, stdout, "KEY_ID")
	if stop {
		return code
	}
	k, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.Key, error) {
		return c.GetKey(ctx, pos[0])
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, k)
	}
	printKey(stdout, k)
	return exitOK
}

func keysRotate(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("keys rotate", "keys rotate KEY_ID [--grace 24h] [flags]\n\nReplace a key with a new one, with the same consumer, scopes and routes.\nThe old key keeps working for the grace period (default: the gateway's\napi_keys.rotation_grace; 0s stops it at once). The new secret is printed once.", stderr)
	grace := a.fs.String("grace", "", "how long the old key keeps working, e.g. 24h or 0s")
	pos, code, stop := a.parseArgs(args, stdout, "KEY_ID")
	if stop {
		return code
	}
	if *grace != "" {
		if d, err := time.ParseDuration(*grace); err != nil || d < 0 {
			return a.usageError("--grace %q: want a duration such as 24h, or 0s", *grace)
		}
	}
	out, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.RotatedKey, error) {
		return c.RotateKey(ctx, pos[0], adminclient.Rotation{Grace: *grace})
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "Rotated key %s to %s.\n", out.Previous.ID, out.Key.ID)
	switch prev := out.Previous; {
	case prev.Status != "active" || (prev.ExpiresAt != nil && !prev.ExpiresAt.After(time.Now())):
		fmt.Fprintf(stdout, "The old key %s has stopped working.\n\n", prev.ID)
	case prev.ExpiresAt != nil:
		fmt.Fprintf(stdout, "The old key %s keeps working until %s.\n\n", prev.ID, formatTime(*prev.ExpiresAt))
	default:
		fmt.Fprintf(stdout, "The old key %s keeps working.\n\n", prev.ID)
	}
	printKey(stdout, &out.Key)
	printSecret(stdout, out.Secret)
	return exitOK
}

func keysRevoke(args []string, stdout, stderr io.Writer) int {
	a := newAdminFlags("keys revoke", "keys revoke KEY_ID [flags]\n\nRevoke a key: it stops working at once on this gateway, and on other\nreplicas within api_keys.cache_ttl.", stderr)
	pos, code, stop := a.parseArgs(args, stdout, "KEY_ID")
	if stop {
		return code
	}
	k, code, ok := callAdmin(a, stderr, func(ctx context.Context, c *adminclient.Client) (*adminclient.Key, error) {
		return c.RevokeKey(ctx, pos[0])
	})
	if !ok {
		return code
	}
	if a.json {
		return printJSON(stdout, k)
	}
	fmt.Fprintf(stdout, "Revoked key %s.\n\n", k.ID)
	printKey(stdout, k)
	return exitOK
}

func printKey(w io.Writer, k *adminclient.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", k.ID)
	fmt.Fprintf(tw, "Consumer:\t%s\n", k.ConsumerID)
	fmt.Fprintf(tw, "Name:\t%s\n", orDash(k.Name))
	fmt.Fprintf(tw, "Hint:\t%s\n", k.Hint)
	fmt.Fprintf(tw, "Status:\t%s\n", k.Status)
	fmt.Fprintf(tw, "Scopes:\t%s\n", joinOrDash(k.Scopes))
	fmt.Fprintf(tw, "Routes:\t%s\n", joinOrDash(k.Routes))
	fmt.Fprintf(tw, "Tier:\t%s\n", orDash(k.RateLimitTier))
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(k.CreatedAt))
	fmt.Fprintf(tw, "Expires:\t%s\n", formatTimePtr(k.ExpiresAt))
	if k.RevokedAt != nil {
		fmt.Fprintf(tw, "Revoked:\t%s\n", formatTime(*k.RevokedAt))
	}
	if k.RotatedTo != "" {
		fmt.Fprintf(tw, "Rotated to:\t%s\n", k.RotatedTo)
	}
	fmt.Fprintf(tw, "Last used:\t%s\n", formatTimePtr(k.LastUsedAt))
	_ = tw.Flush()
}

func printSecret(w io.Writer, secret string) {
	fmt.Fprintf(w, "\nSecret:  %s\n%s\n", secret, secretNotice)
}

// --- admin-token ---

// adminTokenPrefix starts every admin token, so secret scanners and humans
// recognise a leaked one.
const adminTokenPrefix = "gha_"

func cmdAdminToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("admin-token", "admin-token\n\nPrint a new random admin token on the first line and its hash on the\nsecond. Put the hash in admin.token_hash; give the token to the CLI with\n$"+adminTokenEnv+" or --token-file. The token is not stored anywhere.", stderr)
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	token, hash := newAdminToken()
	fmt.Fprintf(stdout, "%s\n%s\n", token, hash)
	return exitOK
}

// newAdminToken returns a token of 32 random bytes and its "sha256:<hex>"
// hash, as admin.token_hash expects.
func newAdminToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token = adminTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	return token, "sha256:" + hex.EncodeToString(sum[:])
}

// --- flag values and formatting ---

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

// metaFlag is a repeatable key=value flag.
type metaFlag map[string]string

func (m metaFlag) String() string {
	keys := slices.Sorted(maps.Keys(m))
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func (m metaFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	m[k] = val
	return nil
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}
