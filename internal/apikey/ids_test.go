package apikey

import (
	"errors"
	"strings"
	"testing"
)

func TestNewIDs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		gen      func() string
		validate func(string) error
		prefix   string
	}{
		{"consumer", NewConsumerID, ValidateConsumerID, "c_"},
		{"key", NewKeyID, ValidateKeyID, "k_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(map[string]bool)
			for range 5000 {
				id := tc.gen()
				if len(id) != 18 || !strings.HasPrefix(id, tc.prefix) {
					t.Fatalf("id %q: want %s + 16 characters", id, tc.prefix)
				}
				if err := tc.validate(id); err != nil {
					t.Fatal(err)
				}
				if seen[id] {
					t.Fatalf("duplicate id %q", id)
				}
				seen[id] = true
			}
		})
	}
	if ValidateKeyID(NewConsumerID()) == nil || ValidateConsumerID(NewKeyID()) == nil {
		t.Fatal("consumer and key ids are interchangeable")
	}
	for _, bad := range []string{"", "c_", "c_ABCDEFGHIJKLMNOP", "c_abcdefghijklmno1", "c_abcdefghijklmnopq", "x_abcdefghijklmnop"} {
		if err := ValidateConsumerID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateConsumerID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidateNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"billing-service", true},
		{"Partner.ACME_2", true},
		{"9lives", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-leading", false},
		{".hidden", false},
		{"has space", false},
		{"slash/y", false},
		{"colon:x", false},
		{"ünicode", false},
		{"new\nline", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for fn, validate := range map[string]func(string) error{
				"ValidateConsumerName": ValidateConsumerName,
				"ValidateGroup":        ValidateGroup,
				"ValidateTag":          ValidateTag,
			} {
				err := validate(tc.name)
				if tc.ok && err != nil {
					t.Errorf("%s(%q): %v", fn, tc.name, err)
				}
				if !tc.ok && !errors.Is(err, ErrInvalid) {
					t.Errorf("%s(%q) = %v, want ErrInvalid", fn, tc.name, err)
				}
			}
		})
	}
}

func TestValidateScope(t *testing.T) {
	for _, tc := range []struct {
		scope string
		ok    bool
	}{
		{"read", true},
		{"orders:write", true},
		{"https://api.example.com/orders.read", true},
		{"!#$%&'()*+,-./[]^_`{|}~", true},
		{strings.Repeat("s", MaxScopeLen), true},
		{strings.Repeat("s", MaxScopeLen+1), false},
		{"", false},
		{"two words", false},
		{"tab\there", false},
		{`quote"`, false},
		{`back\slash`, false},
		{"ümlaut", false},
		{"del\x7f", false},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			err := ValidateScope(tc.scope)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("ValidateScope(%q) = %v, want ErrInvalid", tc.scope, err)
			}
		})
	}
}
