package pgstore

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/storetest"
)

// TestConformance runs the shared Store suite, each subtest on a fresh,
// empty schema.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apikey.Store {
		s, _ := openStore(t, Options{})
		return s
	})
}
