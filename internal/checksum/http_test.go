package checksum

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
)

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode == 404 || resp.StatusCode == 410 {
		return nil, fmt.Errorf("%s: %w", resp.Status, fs.ErrNotExist)
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return b, err
}
