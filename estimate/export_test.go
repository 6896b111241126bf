package estimate

// PlanEntries runs the simulation and returns when each visitor entered (ms since the
// opening, -1: never), for tests that hold the planner to the room visitor by visitor.
func PlanEntries(s Scenario) ([]int64, error) {
	s, err := s.WithDefaults()
	if err != nil {
		return nil, err
	}
	m := newSimulation(s)
	if err := m.run(); err != nil {
		return nil, err
	}
	out := make([]int64, len(m.vs))
	for i, v := range m.vs {
		out[i] = v.claim
	}
	return out, nil
}
