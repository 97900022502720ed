package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/storage"
	s3store "github.com/modproxy/modproxy/internal/storage/s3"
)

// tokensKey is the token document's key in a shared store, beside
// cacheadmin's pins and blocks (not a protocol path: never served).
const tokensKey = "_state/" + access.StateName

// maxTokenDocument bounds the shared document read (as access bounds its
// file).
const maxTokenDocument = 16 << 20

// TokenState returns where the token document of the cache cfg names
// lives: with storage.type = "s3", the object _state/tokens.json in the
// bucket, which every replica reads (its Watcher polls it, so a token
// created or revoked on one is seen by the others within
// access.DefaultInterval); otherwise CACHE_DIR/state/tokens.json. It opens
// its own client for the bucket and touches nothing else of the cache, so
// the token commands may use it while a server runs.
func TokenState(ctx context.Context, cfg config.Config) (access.State, error) {
	if cfg.Storage.Type == "s3" {
		st, err := s3store.New(ctx, s3Options(cfg.Storage.S3))
		if err != nil {
			return nil, &config.Error{Key: "storage.s3", Err: err}
		}
		return storeState{st}, nil
	}
	return access.NewFile(filepath.Join(cfg.CacheDir, "state", access.StateName)), nil
}

// s3Options are the bucket store's options of the configuration.
func s3Options(c config.S3) s3store.Options {
	return s3store.Options{Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, Secure: c.Secure, PathStyle: c.PathStyle}
}

// tokenStateOf is the token State of a server over its opened store: the
// store itself when it is shared.
func tokenStateOf(st openedStore, cfg config.Config) access.State {
	if st.shared {
		return storeState{st.store}
	}
	return access.NewFile(filepath.Join(cfg.CacheDir, "state", access.StateName))
}

// storeState is an access.State in a store (Put replaces atomically).
type storeState struct{ store storage.Store }

func (s storeState) Read(ctx context.Context) ([]byte, error) {
	o, err := s.store.Open(ctx, tokensKey)
	if err != nil {
		return nil, fmt.Errorf("access: reading tokens: %w", err) // keeps fs.ErrNotExist
	}
	defer o.Close()
	data, err := io.ReadAll(io.LimitReader(o, maxTokenDocument+1))
	if err == nil && len(data) > maxTokenDocument {
		err = fmt.Errorf("larger than %d bytes", maxTokenDocument)
	}
	if err != nil {
		return nil, fmt.Errorf("access: reading tokens: %w", err)
	}
	return data, nil
}

func (s storeState) Write(ctx context.Context, data []byte) error {
	if _, err := s.store.Put(ctx, tokensKey, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("access: writing tokens: %w", err)
	}
	return nil
}
