package admin

import (
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/trash"
)

// This file maps the cache administration's domain types (packages
// cacheadmin, gc, trash) to the API's wire types and back, in one place.
// A Backend over a *cacheadmin.Service returns what these functions make.

// StoreStatsOf is the store part of a cache summary.
func StoreStatsOf(s cacheadmin.Summary) StoreStats {
	return StoreStats{Bytes: s.Bytes, Objects: s.Objects, Versions: s.Versions, CapBytes: s.Policy.MaxBytes}
}

// GCPolicyOf is the policy part of a cache summary, as Status shows it.
func GCPolicyOf(s cacheadmin.Summary) map[string]any {
	p := s.Policy
	return map[string]any{"interval": s.Interval.String(), "max_size": p.MaxBytes,
		"max_idle": p.MaxIdle.String(), "keep_newest": p.KeepNewest, "pins": p.Pins, "pin_sets": p.PinSets}
}

// LastGCOf is the summary's last GC run, nil before the first.
func LastGCOf(s cacheadmin.Summary) *GCResult {
	if s.LastGC == nil {
		return nil
	}
	r := GCResultOf(*s.LastGC)
	return &r
}

// GCResultOf is what a GC run did.
func GCResultOf(r gc.Result) GCResult {
	return GCResult{Started: r.Started, Finished: r.Finished, Evicted: len(r.Evicted), Bytes: r.Bytes, Skipped: len(r.Skipped), TrashID: r.TrashID}
}

// GCPlanOf is what a GC run would do.
func GCPlanOf(p gc.Plan) GCPlan {
	out := GCPlan{Created: p.Created, Bytes: p.Bytes, StoreBytes: p.StoreBytes,
		AfterBytes: p.StoreBytes - p.Bytes, PinnedKept: p.PinnedKept, Items: []GCPlanItem{}}
	for _, it := range p.Items {
		out.Items = append(out.Items, GCPlanItem{Module: it.Module, Version: it.Version, Bytes: it.Bytes, Reason: it.Reason})
	}
	return out
}

// Domain is the purge request for the cache administration.
func (r PurgeRequest) Domain() cacheadmin.PurgeRequest {
	return cacheadmin.PurgeRequest{Module: r.Module, Versions: r.Versions, Reason: r.Reason, Block: r.Block, Hard: r.Hard, AllowRepublish: r.AllowRepublish}
}

// PurgeResultOf is what a purge did.
func PurgeResultOf(r cacheadmin.PurgeResult) PurgeResult {
	return PurgeResult{Versions: r.Versions, Bytes: r.Bytes, TrashID: r.TrashID, Blocked: r.Blocked}
}

// TrashOf lists trash batches.
func TrashOf(ms []trash.Manifest) []TrashEntry {
	out := []TrashEntry{}
	for _, m := range ms {
		out = append(out, TrashEntry{ID: m.ID, Created: m.Created, Reason: m.Reason, Versions: m.Versions, Bytes: m.Bytes, Expires: m.Expires})
	}
	return out
}

// RestoreResultOf is what restoring batch m brought back.
func RestoreResultOf(m trash.Manifest) RestoreResult {
	return RestoreResult{Restored: m.Versions, Bytes: m.Bytes}
}

// PinsOf lists the pins.
func PinsOf(p cacheadmin.Pins) Pins { return Pins{Patterns: p.Patterns, Sets: p.Sets} }

// Domain is the pin for the cache administration.
func (p PinRequest) Domain() cacheadmin.Pin { return cacheadmin.Pin{Pattern: p.Pattern, Set: p.Set} }

// ModulesOf lists cached modules.
func ModulesOf(ms []cacheadmin.Module) []Module {
	var out []Module
	for _, m := range ms {
		am := Module{Path: m.Path}
		for _, v := range m.Versions {
			am.Versions = append(am.Versions, Version{Version: v.Version, Bytes: v.Bytes, ZipHash: v.ZipHash, ModHash: v.ModHash,
				Stored: v.Stored, LastAccess: v.LastAccess, Hits: v.Hits, Pinned: v.Pinned, Files: v.Files})
		}
		out = append(out, am)
	}
	return out
}

// ModuleStatsOf lists module aggregates.
func ModuleStatsOf(us []cacheadmin.ModuleUsage) []ModuleStat {
	var out []ModuleStat
	for _, u := range us {
		out = append(out, ModuleStat{Module: u.Module, Bytes: u.Bytes, Hits: u.Hits, Versions: u.Versions})
	}
	return out
}
