package app

import (
	"context"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/clients"
	"github.com/modproxy/modproxy/internal/metrics"
)

// newClients returns the per-identity traffic tracker every protocol
// handler shares, exported in /metrics.
func newClients(m *metrics.Metrics) *clients.Tracker {
	tr := clients.New(clients.DefaultMax)
	m.ClientFunc(func() []metrics.ClientSample {
		cs := tr.Clients()
		out := make([]metrics.ClientSample, len(cs))
		for i, c := range cs {
			out[i] = metrics.ClientSample{Identity: c.Identity, Requests: c.Requests, Bytes: c.Bytes}
		}
		return out
	})
	return tr
}

func (b adminBackend) Clients(ctx context.Context) ([]admin.ClientTraffic, error) {
	cs := b.s.clients.Clients()
	out := make([]admin.ClientTraffic, len(cs))
	for i, c := range cs {
		out[i] = admin.ClientTraffic{Identity: c.Identity, Requests: c.Requests, Bytes: c.Bytes, LastSeen: c.LastSeen, LastModule: c.LastModule}
	}
	return out, nil
}
