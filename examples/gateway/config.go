package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

// config is the plans file: a per-IP limit every request passes, named
// plans, and the plan of each API key. Requests without a known key use the
// "anonymous" plan, keyed by client IP.
type config struct {
	PerIP policy            `json:"per_ip"`
	Plans map[string]policy `json:"plans"`
	Keys  map[string]string `json:"keys"` // API key -> plan
}

type policy struct {
	Rate  float64 `json:"rate"` // requests per second
	Burst int     `json:"burst"`
}

func (p policy) limiter() limiter.Policy {
	return limiter.Policy{Rate: rate.Limit(p.Rate), Burst: p.Burst}
}

const anonymous = "anonymous"

// defaultConfig is used when no -plans file is given.
const defaultConfig = `{
  "per_ip": {"rate": 20, "burst": 40},
  "plans": {
    "anonymous": {"rate": 1, "burst": 5},
    "free":      {"rate": 5, "burst": 10},
    "pro":       {"rate": 100, "burst": 200}
  },
  "keys": {
    "demo-free-key": "free",
    "demo-pro-key": "pro"
  }
}`

// loadConfig reads path, or the default when path is empty, and validates
// it: every policy valid, an anonymous plan, every plan name usable in the
// RateLimit fields, and every key's plan defined.
func loadConfig(path string) (*config, error) {
	data := []byte(defaultConfig)
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	var c config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("plans file: %w", err)
	}
	if err := c.PerIP.limiter().Validate(); err != nil {
		return nil, fmt.Errorf("per_ip: %w", err)
	}
	if _, ok := c.Plans[anonymous]; !ok {
		return nil, errors.New(`plans file: no "anonymous" plan for requests without an API key`)
	}
	for name, p := range c.Plans {
		if err := validPlanName(name); err != nil {
			return nil, err
		}
		if err := p.limiter().Validate(); err != nil {
			return nil, fmt.Errorf("plan %q: %w", name, err)
		}
	}
	for key, plan := range c.Keys {
		if _, ok := c.Plans[plan]; !ok {
			return nil, fmt.Errorf("key %q: unknown plan %q", key, plan)
		}
	}
	return &c, nil
}

// validPlanName reports whether name can be a plan's: the policy name in
// the RateLimit fields (nethttpmw.WithPolicyName's rule, checked here so
// that a reload fails before it changes anything), and not the per-IP
// limit's.
func validPlanName(name string) error {
	if name == perIPName {
		return fmt.Errorf("plan %q: the per-IP limit's name", name)
	}
	if name == "" || len(name) > 64 {
		return fmt.Errorf("plan %q: a name must be 1 to 64 characters", name)
	}
	for i := range len(name) {
		if name[i] < 0x20 || name[i] > 0x7e {
			return fmt.Errorf("plan %q: a name must be printable ASCII", name)
		}
	}
	return nil
}

func (c *config) policies() map[string]limiter.Policy {
	out := make(map[string]limiter.Policy, len(c.Plans))
	for name, p := range c.Plans {
		out[name] = p.limiter()
	}
	return out
}
