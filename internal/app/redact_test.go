package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/config"
)

// TestStatusConfigHidesSecrets: the configuration the admin API shows
// carries no secret: not the admin token, the S3 keys, the Redis password,
// nor the credentials of any URL (root, route and namespace upstreams,
// checksum database URLs).
func TestStatusConfigHidesSecrets(t *testing.T) {
	cfg := config.Default()
	cfg.Upstream = "https://user1:pw-root@up.example,direct"
	cfg.Admin.Token = "tok-admin"
	cfg.Storage.S3.AccessKey = "ak-s3"
	cfg.Storage.S3.SecretKey = "sk-s3"
	cfg.Cluster.RedisPassword = "pw-redis"
	cfg.Routes = []config.Route{{Match: "corp.example.com", Upstream: "https://u:pw-route@corp.example"}}
	cfg.Namespaces = []config.Namespace{{Name: "dev", Upstream: "https://u:pw-ns@dev.example|direct",
		Routes: []config.Route{{Match: "x.example", Upstream: "https://u:pw-nsroute@x.example"}}}}
	cfg.SumDB = []string{"sum.example+abcd+KEY https://u:pw-sumdb@db.example/"}
	cfg.Webhooks = []config.Webhook{{URL: "https://u:pw-hookurl@hooks.example/x?token=tok-hookquery", Secret: "sk-hook"}}
	cfg.DL.Source = "https://u:pw-dlsite@dl.example/dl"
	orig := cfg.Routes[0].Upstream

	data, err := json.Marshal(redactedConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pw-root", "tok-admin", "ak-s3", "sk-s3", "pw-redis", "pw-route", "pw-ns", "pw-nsroute", "pw-sumdb", "pw-hookurl", "tok-hookquery", "sk-hook", "pw-dlsite"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("status config shows %q: %s", secret, data)
		}
	}
	for _, kept := range []string{"up.example", "corp.example", "dev.example", "db.example", "sum.example+abcd+KEY", "hooks.example/x", "dl.example/dl"} {
		if !strings.Contains(string(data), kept) {
			t.Errorf("status config lost %q: %s", kept, data)
		}
	}
	if cfg.Routes[0].Upstream != orig {
		t.Errorf("redaction changed the server's own configuration: %q", cfg.Routes[0].Upstream)
	}
}
