package app

import (
	"context"
	"io"
	"strings"

	"github.com/modproxy/modproxy/internal/storage"
)

func readString(ctx context.Context, s interface {
	Open(context.Context, string) (storage.Object, error)
}, key string) string {
	o, err := s.Open(ctx, key)
	if err != nil {
		return ""
	}
	defer o.Close()
	b, _ := io.ReadAll(io.LimitReader(o, 4096))
	return strings.TrimSpace(string(b))
}
