package access

import (
	"context"
	"testing"
)

func TestContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := FromContext(ctx); ok {
		t.Error("an empty context has an identity")
	}
	id := Identity{Name: "ci", Kind: KindToken}
	for name, c := range map[string]context.Context{"value": NewContext(ctx, id), "pointer": NewContextOf(ctx, &id)} {
		if got, ok := FromContext(c); !ok || got.Name != "ci" || got.Kind != KindToken {
			t.Errorf("%s: FromContext = %+v, %v", name, got, ok)
		}
	}
	if _, ok := FromContext(NewContextOf(ctx, nil)); ok {
		t.Error("a nil identity pointer counts as an identity")
	}
}
