package app

import (
	"net/http"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/routing"
)

// translateDeny translates deny rules from the operator's syntax to routing's:
// the version range is parsed, and the rule's `status` key (403, the
// default, or 410, as clients will see it) becomes routing's notion of a
// refusal that stops the client (refused) or lets its "," list move on
// (gone).
func translateDeny(rules []config.DenyRule) ([]routing.Deny, error) {
	var deny []routing.Deny
	for _, d := range rules {
		rg, err := routing.ParseRange(d.Versions)
		if err != nil {
			return nil, err
		}
		deny = append(deny, routing.Deny{Match: d.Match, Versions: rg, Reason: d.Reason, Gone: d.Status == http.StatusGone})
	}
	return deny, nil
}
