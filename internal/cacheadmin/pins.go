package cacheadmin

import (
	"context"
	"fmt"
	"slices"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/gc"
)

// Pins returns every pin: the configured ones and those added through
// the service.
func (s *Service) Pins(ctx context.Context) Pins {
	s.mu.Lock()
	defer s.mu.Unlock()
	pol := s.policy()
	return Pins{Patterns: pol.Pins, Sets: pol.PinSets}
}

// AddPin pins p (persisted). A request without exactly one of Pattern
// and Set, or a pin set that cannot be read, is ErrInvalid. Adding a pin
// twice is not an error.
func (s *Service) AddPin(ctx context.Context, actor string, p Pin) error {
	return s.changePin(ctx, actor, p, true)
}

// RemovePin removes a pin added through the service; one that was not
// (a configured pin, or none) is ErrNotFound.
func (s *Service) RemovePin(ctx context.Context, actor string, p Pin) error {
	return s.changePin(ctx, actor, p, false)
}

func (s *Service) changePin(ctx context.Context, actor string, p Pin, add bool) error {
	if (p.Pattern == "") == (p.Set == "") {
		return fmt.Errorf("%w: give exactly one of pattern and set", ErrInvalid)
	}
	if p.Set != "" && add {
		if _, err := gc.NewPinner(gc.Policy{PinSets: []string{p.Set}}); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	edit := func(list []string, v string) ([]string, error) {
		i := slices.Index(list, v)
		switch {
		case add && i < 0:
			return append(list, v), nil
		case !add && i >= 0:
			return slices.Delete(list, i, i+1), nil
		case !add:
			return list, fmt.Errorf("%w: %q is not pinned through the admin API", ErrNotFound, v)
		}
		return list, nil
	}
	pins := Pins{Patterns: slices.Clone(s.pins.Patterns), Sets: slices.Clone(s.pins.Sets)}
	var err error
	target := p.Pattern
	if p.Pattern != "" {
		pins.Patterns, err = edit(pins.Patterns, p.Pattern)
	} else {
		target = p.Set
		pins.Sets, err = edit(pins.Sets, p.Set)
	}
	if err != nil {
		return err
	}
	if err := s.saveState(ctx, pinsFile, pins); err != nil {
		return err
	}
	s.pins = pins
	action := "pin"
	if !add {
		action = "unpin"
	}
	return s.opts.Audit.RecordContext(ctx, audit.Event{Actor: actor, Action: action, Target: target})
}
