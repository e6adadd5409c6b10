package main

// The users commands: the users file of the basic method
// (routes[].authenticate.basic.users_file, docs/basic-auth.md). Passwords
// are read from standard input or the terminal (without echo), never from
// the command line, where ps and shell history would keep them.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/authn/basic"
	"github.com/gatehouse/gatehouse/internal/config"
)

const usersUsage = `Usage: gatehouse users <command> [flags]

Manage the users file of the basic method (docs/basic-auth.md). Passwords
are read from standard input (one line) or, on a terminal, typed twice
without echo; never from the command line. Hashes are argon2id.

Commands:
  hash                                   print the argon2id hash of a password, for a users file
  add --file F --name N [--roles a,b]    add a user (password from stdin, or --hash)
  set-password --file F --name N         replace a user's password (from stdin, or --hash)
  list --file F [--json]                 list users, their roles and hash parameters (never the hashes)
  remove --file F --name N               remove a user
  import --file F --from HTPASSWD        add the bcrypt users of an Apache htpasswd file

Instead of --file F, --store [-c gatehouse.yaml] works on the users kept in
the configuration's API-key store (api_keys.store; routes with
basic.users_store read them). The embedded store is one process's file:
use --store with it while the gateway is stopped. PostgreSQL works live.

Run "gatehouse users <command> --help" for a command's flags.
`

// usersStdin is where passwords are read from (tests replace it).
var usersStdin io.Reader = os.Stdin

func cmdUsers(args []string, stdout, stderr io.Writer) int {
	return dispatch("users", usersUsage, map[string]func([]string, io.Writer, io.Writer) int{
		"hash":         usersHash,
		"add":          usersAdd,
		"set-password": usersSetPassword,
		"list":         usersList,
		"remove":       usersRemove,
		"import":       usersImport,
	}, args, stdout, stderr)
}

// paramFlags are the argon2id parameters of a new hash.
type paramFlags struct{ m, t, p *uint }

func addParamFlags(fs interface {
	Uint(string, uint, string) *uint
}) paramFlags {
	d := basic.DefaultParams
	return paramFlags{
		m: fs.Uint("memory", uint(d.MemoryKiB), fmt.Sprintf("argon2id memory in KiB (%d to %d)", basic.MinMemoryKiB, basic.MaxMemoryKiB)),
		t: fs.Uint("iterations", uint(d.Iterations), fmt.Sprintf("argon2id iterations (%d to %d)", basic.MinIterations, basic.MaxIterations)),
		p: fs.Uint("parallelism", uint(d.Lanes), fmt.Sprintf("argon2id lanes (%d to %d)", basic.MinLanes, basic.MaxLanes)),
	}
}

func (f paramFlags) params() (basic.Params, error) {
	if *f.m > 1<<32-1 || *f.t > 1<<32-1 || *f.p > 255 {
		return basic.Params{}, basic.ErrParams
	}
	p := basic.Params{MemoryKiB: uint32(*f.m), Iterations: uint32(*f.t), Lanes: uint8(*f.p)}
	return p, p.Check()
}

// readPassword reads a password: typed twice without echo on a terminal,
// else the first line of standard input.
func readPassword(stderr io.Writer) ([]byte, error) {
	if f, ok := usersStdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if string(a) != string(b) {
			return nil, errors.New("the passwords differ")
		}
		return a, nil
	}
	line, err := bufio.NewReader(io.LimitReader(usersStdin, basic.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("no password on standard input")
	}
	if len(line) > basic.MaxPasswordLen {
		return nil, fmt.Errorf("password longer than %d bytes", basic.MaxPasswordLen)
	}
	return []byte(line), nil
}

func usersHash(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("users hash", `users hash [--memory KiB --iterations N --parallelism N] < password

Print the argon2id PHC string of a password read from standard input (or
typed on the terminal), for a line "name:HASH" of a users file.`, stderr)
	pf := addParamFlags(fs)
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	p, err := pf.params()
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse users hash: %v\n", err)
		return exitUsage
	}
	pw, err := readPassword(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse users hash: %v\n", err)
		return exitError
	}
	s, err := basic.HashPassword(pw, p)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse users hash: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, s)
	return exitOK
}

// usersFile is a users file read line by line, so that comments and the
// order of users survive an edit.
type usersFile struct {
	path  string
	lines []string
	mode  os.FileMode
}

func readUsersFile(path string, mustExist bool) (*usersFile, error) {
	f := &usersFile{path: path, mode: 0o600}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !mustExist:
		return f, nil
	case err != nil:
		return nil, err
	}
	if _, err := basic.ParseUsersFile(data); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil {
		f.mode = fi.Mode().Perm()
	}
	f.lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		f.lines = nil
	}
	return f, nil
}

// find returns the index of name's line, -1 if absent.
func (f *usersFile) find(name string) int {
	for i, l := range f.lines {
		if n, _, ok := strings.Cut(l, ":"); ok && n == name && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			return i
		}
	}
	return -1
}

// write checks the new content as the gateway will read it, then replaces
// the file atomically (a temporary file in the same directory, renamed
// over it), so the gateway never reads half a file.
func (f *usersFile) write() error {
	data := strings.Join(f.lines, "\n")
	if data != "" {
		data += "\n"
	}
	if _, err := basic.ParseUsersFile([]byte(data)); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".users-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(f.mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// newHash is the hash given with --hash (checked), or one of a password
// read from standard input.
func newHash(given string, pf paramFlags, stderr io.Writer) (*basic.Hash, error) {
	if given != "" {
		return basic.ParseHash(given)
	}
	p, err := pf.params()
	if err != nil {
		return nil, err
	}
	pw, err := readPassword(stderr)
	if err != nil {
		return nil, err
	}
	s, err := basic.HashPassword(pw, p)
	if err != nil {
		return nil, err
	}
	return basic.ParseHash(s)
}

func usersAdd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("users add", `users add (--file F | --store [-c FILE]) --name N [--roles a,b] [--groups g] [--scopes s] [--hash PHC] < password

Add a user to a users file (created, mode 0600, if missing) or to the key
store. The password is read from standard input (or typed twice on the
terminal) and hashed with argon2id; --hash takes a hash made elsewhere
(argon2id or bcrypt, checked like the gateway does). A file is replaced
atomically: a running gateway sees the new user within reload_interval.`, stderr)
	tf := addTargetFlags(fs)
	name := fs.String("name", "", "user name (required)")
	roles := fs.String("roles", "", "comma-separated roles")
	groups := fs.String("groups", "", "comma-separated groups")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	given := fs.String("hash", "", "an existing argon2id or bcrypt hash instead of a password")
	pf := addParamFlags(fs)
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "gatehouse users add: %v\n", err)
		return code
	}
	if *name == "" {
		return fail(exitUsage, errors.New("--name is required"))
	}
	if err := basic.CheckName(*name); err != nil {
		return fail(exitUsage, err)
	}
	t, err := tf.open(true)
	if err != nil {
		return fail(targetExit(err), err)
	}
	defer t.close()
	if exists, err := t.has(*name); err != nil || exists {
		if err == nil {
			err = fmt.Errorf("user %q exists (use set-password)", *name)
		}
		return fail(exitError, err)
	}
	h, err := newHash(*given, pf, stderr)
	if err != nil {
		return fail(exitError, err)
	}
	u := &basic.User{Name: *name, Hash: h, Roles: splitList(*roles), Groups: splitList(*groups), Scopes: splitList(*scopes)}
	if err := u.Check(); err != nil {
		return fail(exitUsage, err)
	}
	if err := t.put(u, false); err != nil {
		return fail(exitError, err)
	}
	if err := t.commit(); err != nil {
		return fail(exitError, err)
	}
	fmt.Fprintf(stdout, "added %s\n", *name)
	return exitOK
}

func usersSetPassword(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("users set-password", `users set-password (--file F | --store [-c FILE]) --name N [--hash PHC] < password

Replace a user's password hash, keeping its roles, groups and scopes. The
gateway's verified-credential cache is emptied when it sees the change: the
old password stops working within reload_interval.`, stderr)
	tf := addTargetFlags(fs)
	name := fs.String("name", "", "user name (required)")
	given := fs.String("hash", "", "an existing argon2id or bcrypt hash instead of a password")
	pf := addParamFlags(fs)
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "gatehouse users set-password: %v\n", err)
		return code
	}
	if *name == "" {
		return fail(exitUsage, errors.New("--name is required"))
	}
	t, err := tf.open(false)
	if err != nil {
		return fail(targetExit(err), err)
	}
	defer t.close()
	users, err := t.users()
	if err != nil {
		return fail(exitError, err)
	}
	var u *basic.User
	for _, x := range users {
		if x.Name == *name {
			u = x
		}
	}
	if u == nil {
		return fail(exitError, fmt.Errorf("no user %q", *name))
	}
	if u.Hash, err = newHash(*given, pf, stderr); err != nil {
		return fail(exitError, err)
	}
	if err := t.put(u, true); err != nil {
		return fail(exitError, err)
	}
	if err := t.commit(); err != nil {
		return fail(exitError, err)
	}
	fmt.Fprintf(stdout, "password of %s replaced\n", *name)
	return exitOK
}

func usersRemove(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("users remove", `users remove (--file F | --store [-c FILE]) --name N

Remove a user.`, stderr)
	tf := addTargetFlags(fs)
	name := fs.String("name", "", "user name (required)")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "gatehouse users remove: %v\n", err)
		return code
	}
	if *name == "" {
		return fail(exitUsage, errors.New("--name is required"))
	}
	t, err := tf.open(false)
	if err != nil {
		return fail(targetExit(err), err)
	}
	defer t.close()
	if err := t.remove(*name); err != nil {
		return fail(exitError, err)
	}
	if err := t.commit(); err != nil {
		return fail(exitError, err)
	}
	fmt.Fprintf(stdout, "removed %s\n", *name)
	return exitOK
}

// userRow is what list shows of a user: never its hash.
type userRow struct {
	Name      string   `json:"name"`
	Algorithm string   `json:"algorithm"`
	Params    string   `json:"params"`
	Roles     []string `json:"roles,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
}

func usersList(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("users list", `users list (--file F | --store [-c FILE]) [--json]

List users: name, hash algorithm and parameters, roles, groups, scopes.
Hashes are never printed.`, stderr)
	tf := addTargetFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	t, err := tf.open(false)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse users list: %v\n", err)
		return targetExit(err)
	}
	defer t.close()
	users, err := t.users()
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse users list: %v\n", err)
		return exitError
	}
	rows := make([]userRow, 0, len(users))
	for _, u := range users {
		r := userRow{Name: u.Name, Algorithm: string(u.Hash.Alg), Roles: u.Roles, Groups: u.Groups, Scopes: u.Scopes}
		if u.Hash.Alg == basic.Argon2id {
			r.Params = fmt.Sprintf("m=%d,t=%d,p=%d", u.Hash.Params.MemoryKiB, u.Hash.Params.Iterations, u.Hash.Params.Lanes)
		} else {
			r.Params = fmt.Sprintf("cost=%d", u.Hash.Cost)
		}
		rows = append(rows, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rows)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHASH\tPARAMS\tROLES\tGROUPS\tSCOPES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Algorithm, r.Params,
			strings.Join(r.Roles, ","), strings.Join(r.Groups, ","), strings.Join(r.Scopes, ","))
	}
	_ = tw.Flush()
	return exitOK
}

func usersImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("users import", `users import (--file F | --store [-c FILE]) --from HTPASSWD [--roles a,b] [--replace]

Add the users of an Apache htpasswd file (or another users file). Only
bcrypt ($2y$, cost 10 to 14) and argon2id lines are accepted: MD5 ($apr1$),
SHA ({SHA}), crypt and plaintext lines are refused, by name and line, and
nothing is written; those users must be given a new password (add).`, stderr)
	tf := addTargetFlags(fs)
	from := fs.String("from", "", "htpasswd file to read (required)")
	roles := fs.String("roles", "", "comma-separated roles given to every imported user")
	replace := fs.Bool("replace", false, "replace users that exist (default: refuse)")
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "gatehouse users import: %v\n", err)
		return code
	}
	if *from == "" {
		return fail(exitUsage, errors.New("--from is required"))
	}
	data, err := os.ReadFile(*from)
	if err != nil {
		return fail(exitError, err)
	}
	var refused int
	var imported []*basic.User
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		u, err := basic.ParseUserLine(line)
		if err != nil {
			// Name the line, never echo it: it may hold a plaintext password.
			name, _, _ := strings.Cut(line, ":")
			if basic.CheckName(name) != nil {
				name = "?"
			}
			fmt.Fprintf(stderr, "gatehouse users import: %s line %d (user %q): %v\n", *from, n+1, name, importReason(err))
			refused++
			continue
		}
		if r := splitList(*roles); r != nil {
			u.Roles = r
		}
		if err := u.Check(); err != nil {
			return fail(exitUsage, err)
		}
		imported = append(imported, u)
	}
	if refused > 0 {
		return fail(exitError, fmt.Errorf("%d line(s) refused; nothing written", refused))
	}
	t, err := tf.open(true)
	if err != nil {
		return fail(targetExit(err), err)
	}
	defer t.close()
	for _, u := range imported {
		exists, err := t.has(u.Name)
		if err != nil {
			return fail(exitError, err)
		}
		if exists && !*replace {
			return fail(exitError, fmt.Errorf("user %q exists (--replace to overwrite)", u.Name))
		}
		if err := t.put(u, exists); err != nil {
			return fail(exitError, err)
		}
	}
	if err := t.commit(); err != nil {
		return fail(exitError, err)
	}
	fmt.Fprintf(stdout, "imported %d user(s)\n", len(imported))
	return exitOK
}

// importReason is the error of a refused line, without its content.
func importReason(err error) string {
	switch {
	case errors.Is(err, basic.ErrPlaintext):
		return "not an argon2id or bcrypt hash (plaintext, MD5, SHA or crypt): give the user a new password"
	case errors.Is(err, basic.ErrParams):
		return "hash parameters outside the accepted bounds (bcrypt cost 10 to 14): give the user a new password"
	case errors.Is(err, basic.ErrMalformed):
		return "malformed hash"
	case errors.Is(err, basic.ErrName):
		return "invalid user name"
	}
	return "not a valid users line"
}

// userTarget is where a users command reads and writes: a users file, or
// the key store's users.
type userTarget interface {
	// users lists the users (checked as the gateway checks them).
	users() ([]*basic.User, error)
	has(name string) (bool, error)
	// put adds (replace false) or replaces a user.
	put(u *basic.User, replace bool) error
	remove(name string) error
	// commit writes the changes (the file); the store writes at once.
	commit() error
	close()
}

// errTarget: neither or both of --file and --store (a usage error).
var errTarget = errors.New("exactly one of --file and --store is required")

func targetExit(err error) int {
	if errors.Is(err, errTarget) {
		return exitUsage
	}
	return exitError
}

// targetFlags are --file, --store and -c.
type targetFlags struct {
	file   *string
	store  *bool
	config *string
}

func addTargetFlags(fs interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
}) targetFlags {
	return targetFlags{
		file:   fs.String("file", "", "users file (this or --store)"),
		store:  fs.Bool("store", false, "work on the users of the API-key store named by -c (api_keys.store) instead of a file"),
		config: fs.String("c", "gatehouse.yaml", "configuration file, read for api_keys.store with --store"),
	}
}

func (f targetFlags) open(createFile bool) (userTarget, error) {
	switch {
	case (*f.file == "") == !*f.store:
		return nil, errTarget
	case *f.store:
		return openStoreTarget(*f.config)
	}
	uf, err := readUsersFile(*f.file, !createFile)
	if err != nil {
		return nil, err
	}
	return fileTarget{uf}, nil
}

type fileTarget struct{ f *usersFile }

func (t fileTarget) users() ([]*basic.User, error) {
	return basic.ParseUsersFile([]byte(strings.Join(t.f.lines, "\n")))
}
func (t fileTarget) has(name string) (bool, error) { return t.f.find(name) >= 0, nil }
func (t fileTarget) put(u *basic.User, replace bool) error {
	i := t.f.find(u.Name)
	switch {
	case i >= 0 && !replace:
		return fmt.Errorf("user %q exists", u.Name)
	case i < 0 && replace:
		return fmt.Errorf("no user %q", u.Name)
	case i >= 0:
		t.f.lines[i] = u.Line()
	default:
		t.f.lines = append(t.f.lines, u.Line())
	}
	return nil
}
func (t fileTarget) remove(name string) error {
	i := t.f.find(name)
	if i < 0 {
		return fmt.Errorf("no user %q", name)
	}
	t.f.lines = append(t.f.lines[:i], t.f.lines[i+1:]...)
	return nil
}
func (t fileTarget) commit() error { return t.f.write() }
func (t fileTarget) close()        {}

// storeTarget is the users of a key store.
type storeTarget struct {
	s interface {
		apikey.UserStore
		Close() error
	}
}

func openStoreTarget(configPath string) (userTarget, error) {
	cfg, _, err := config.Load(configPath)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := cfg.APIKeys.Store
	switch st.Type {
	case "postgres":
		s, err := pgstore.Open(ctx, st.DSN, pgstore.Options{Schema: st.Schema})
		if err != nil {
			return nil, err
		}
		return storeTarget{s}, nil
	case "static":
		return nil, errors.New("api_keys.store.type is static: there is no store to keep users in")
	}
	path := st.Path
	if path == "" {
		path = "gatehouse-keys.db"
	}
	s, err := boltstore.Open(path, boltstore.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w (the embedded store is locked while the gateway runs: stop it, or use a users file)", err)
	}
	return storeTarget{s}, nil
}

func (t storeTarget) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (t storeTarget) users() ([]*basic.User, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	rows, err := t.s.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*basic.User, 0, len(rows))
	for _, r := range rows {
		u, err := basic.UserOf(r)
		if err != nil {
			return nil, fmt.Errorf("user %q in the store: %w", r.Name, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func (t storeTarget) has(name string) (bool, error) {
	ctx, cancel := t.ctx()
	defer cancel()
	rows, err := t.s.ListUsers(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if r.Name == name {
			return true, nil
		}
	}
	return false, nil
}

func (t storeTarget) put(u *basic.User, replace bool) error {
	ctx, cancel := t.ctx()
	defer cancel()
	return t.s.PutUser(ctx, &apikey.User{Name: u.Name, Hash: u.Hash.String(), Roles: u.Roles, Groups: u.Groups, Scopes: u.Scopes,
		UpdatedAt: time.Now().UTC()}, replace)
}

func (t storeTarget) remove(name string) error {
	ctx, cancel := t.ctx()
	defer cancel()
	return t.s.DeleteUser(ctx, name)
}

func (t storeTarget) commit() error { return nil }
func (t storeTarget) close()        { _ = t.s.Close() }
