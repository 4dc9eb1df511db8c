package store

import (
	"encoding/json"
	"sync"

	"github.com/swapjoy/releasepilot/internal/release"
)

// plans caches parsed lane plans by their stored JSON: the lanes of one app
// share a handful of plans, and a reconcile pass over 10,000 lanes would
// otherwise parse the same JSON tens of thousands of times. Each caller
// gets its own copy of the steps.
var plans = struct {
	sync.Mutex
	m map[string]release.Plan
}{m: map[string]release.Plan{}}

// maxCachedPlans bounds the cache; past it, it starts again.
const maxCachedPlans = 1024

func parsePlan(raw string) (release.Plan, error) {
	plans.Lock()
	p, ok := plans.m[raw]
	plans.Unlock()
	if ok {
		return clonePlan(p), nil
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return release.Plan{}, err
	}
	plans.Lock()
	if len(plans.m) >= maxCachedPlans {
		plans.m = map[string]release.Plan{}
	}
	plans.m[raw] = clonePlan(p)
	plans.Unlock()
	return p, nil
}

// clonePlan copies a plan's steps and what they point to, so that no
// caller can change another's plan.
func clonePlan(p release.Plan) release.Plan {
	if p.Steps == nil {
		return p
	}
	out := p
	out.Steps = make([]release.Step, len(p.Steps))
	for i, s := range p.Steps {
		if s.SetPercent != nil {
			v := *s.SetPercent
			s.SetPercent = &v
		}
		if s.Wait != nil {
			w := *s.Wait
			s.Wait = &w
		}
		if s.Gate != nil {
			g := *s.Gate
			g.Rules = append([]release.GateRule(nil), g.Rules...)
			s.Gate = &g
		}
		if s.Approval != nil {
			a := *s.Approval
			s.Approval = &a
		}
		out.Steps[i] = s
	}
	return out
}
