package basic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// User is one basic-auth user: a name, a password hash, and what policies
// and identity headers see of it.
type User struct {
	Name   string
	Hash   *Hash
	Roles  []string
	Groups []string
	Scopes []string
}

// Bounds of a users file, checked while it is read.
const (
	MaxUsersFileBytes = 16 << 20
	MaxUsers          = 100_000
	MaxNameLen        = 256
	maxLineLen        = 8 << 10
	maxAttrValues     = 64
)

// ErrName: a user name that cannot be used (empty, too long, a colon,
// a control character, not UTF-8).
var ErrName = errors.New("basic: invalid user name")

// CheckName reports whether name can be a user name: 1 to 256 bytes of
// UTF-8, no colon (RFC 7617 §2: the user-id ends at the first colon) and
// no control characters.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrName, MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrName)
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("%w: contains a colon", ErrName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: contains a control character", ErrName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: leading or trailing space", ErrName)
	}
	return nil
}

// checkValue checks a role, group or scope.
func checkValue(v string) error {
	if v == "" || len(v) > MaxNameLen || !utf8.ValidString(v) ||
		strings.ContainsRune(v, ',') || strings.ContainsFunc(v, unicode.IsSpace) || strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("invalid value %q (1 to %d bytes of UTF-8, no ',', space or control character)", v, MaxNameLen)
	}
	return nil
}

// Check validates u as it would be written to a users file or the store.
func (u *User) Check() error {
	if err := CheckName(u.Name); err != nil {
		return err
	}
	if u.Hash == nil {
		return errors.New("basic: user without a password hash")
	}
	for _, list := range [][]string{u.Roles, u.Groups, u.Scopes} {
		if len(list) > maxAttrValues {
			return fmt.Errorf("basic: more than %d values", maxAttrValues)
		}
		for _, v := range list {
			if err := checkValue(v); err != nil {
				return fmt.Errorf("basic: %w", err)
			}
		}
	}
	return nil
}

// Line is u as one line of a users file (without the newline).
func (u *User) Line() string {
	var b strings.Builder
	b.WriteString(u.Name)
	b.WriteByte(':')
	b.WriteString(u.Hash.String())
	for _, a := range []struct {
		k string
		v []string
	}{{"roles", u.Roles}, {"groups", u.Groups}, {"scopes", u.Scopes}} {
		if len(a.v) > 0 {
			b.WriteString(" " + a.k + "=" + strings.Join(a.v, ","))
		}
	}
	return b.String()
}

// ParseUsersFile reads a users file: htpasswd-style lines
//
//	name:HASH [roles=a,b] [groups=c] [scopes=orders:read,orders:write]
//
// (the attributes separated by spaces or tabs, values by commas)
// where HASH is an argon2id PHC string or a bcrypt hash; blank lines and
// lines starting with '#' are skipped. An Apache htpasswd file of bcrypt
// hashes (htpasswd -B -C 10) is a valid users file. Any error (a
// plaintext password, an MD5 or SHA hash, hostile parameters, a name
// twice) refuses the whole file, with its line number.
func ParseUsersFile(data []byte) ([]*User, error) {
	if len(data) > MaxUsersFileBytes {
		return nil, fmt.Errorf("basic: users file larger than %d bytes", MaxUsersFileBytes)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	var users []*User
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		u, err := ParseUserLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("line %d: user %q appears twice", n, u.Name)
		}
		seen[u.Name] = true
		if len(users) == MaxUsers {
			return nil, fmt.Errorf("basic: more than %d users", MaxUsers)
		}
		users = append(users, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("basic: users file: %w", err)
	}
	return users, nil
}

// ParseUserLine parses one line of a users file.
func ParseUserLine(line string) (*User, error) {
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return nil, errors.New("want name:hash")
	}
	u := &User{Name: name}
	if err := CheckName(u.Name); err != nil {
		return nil, err
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return nil, fmt.Errorf("user %q: no password hash", u.Name)
	}
	h, err := ParseHash(fields[0])
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Name, err)
	}
	u.Hash = h
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		var dst *[]string
		switch k {
		case "roles":
			dst = &u.Roles
		case "groups":
			dst = &u.Groups
		case "scopes":
			dst = &u.Scopes
		}
		if !ok || dst == nil {
			return nil, fmt.Errorf("user %q: unknown attribute %q (want roles=, groups= or scopes=)", u.Name, k)
		}
		if *dst != nil {
			return nil, fmt.Errorf("user %q: %s given twice", u.Name, k)
		}
		*dst = strings.Split(v, ",")
		if v == "" {
			*dst = []string{}
		}
	}
	if err := u.Check(); err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Name, err)
	}
	for _, l := range []*[]string{&u.Roles, &u.Groups, &u.Scopes} {
		if len(*l) == 0 {
			*l = nil
		}
		*l = slices.Clip(*l)
	}
	return u, nil
}
