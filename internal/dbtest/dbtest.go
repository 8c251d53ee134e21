// Package dbtest gives a test a Store over its own fresh, migrated database (see pgtest, whose
// Main the test package's TestMain must call).
package dbtest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/pgtest"
)

// Store returns a store over a fresh database with every migration applied and a random
// suppression key set. It is closed, and the database dropped, when t ends.
func Store(t testing.TB) *db.Store {
	t.Helper()
	s, _ := StoreWithKey(t)
	return s
}

// StoreWithKey is Store, and also returns the suppression key, for tests that compute hashes.
func StoreWithKey(t testing.TB) (*db.Store, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := db.Open(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: migrate: %v", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails; it crashes the program instead
	if err := store.SetSuppressionKey(key); err != nil {
		t.Fatalf("dbtest: suppression key: %v", err)
	}
	return store, key
}
