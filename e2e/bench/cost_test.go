package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestStepCost(t *testing.T) {
	res := &StepResult{SentPerSec: 1000, DeliveredPerSec: 9000, GeneratorCores: 0.9, GeneratorProcs: 2,
		Servers: []ProcUsage{{Label: "redis", CPUCores: 0.2}, {Label: "connector-0", CPUCores: 0.45}, {Label: "worker-0", CPUCores: 0.25}}}
	c := stepCost(res, []int{1}, []int{0}, 2)
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("server cores", c.ServerCores, 1)
	near("inbound per server core", c.EventsPerCore, 1000)
	near("deliveries per server core", c.DeliveriesPerCore, 9000)
	near("redis µs per event", c.Roles["redis"].UsPerEvent, 200)
	near("connector µs per delivery", c.Roles["connector-0"].UsPerDelivery, 50)
	near("servers µs per event", c.Servers.UsPerEvent, 900)
	near("servers µs per delivery", c.Servers.UsPerDelivery, 100)
	near("generator µs per delivery", c.Generator.UsPerDelivery, 100)
	near("generator busy", c.Generator.BusyPercent, 90)
	if c.Generator.Cores != "0" || c.Generator.Processes != 2 {
		t.Errorf("generator on %q, %d processes", c.Generator.Cores, c.Generator.Processes)
	}
	if got := strings.Join(c.roles(), ","); got != "redis,connector-0,worker-0" {
		t.Errorf("roles in order %s", got)
	}
	// Unpinned, the servers and the generator may use every core.
	u := stepCost(res, nil, nil, 2)
	near("unpinned server cores", u.ServerCores, 2)
	near("unpinned deliveries per server core", u.DeliveriesPerCore, 4500)
	near("unpinned generator busy", u.Generator.BusyPercent, 45)

	before := map[string]cmdStat{"fcall": {calls: 10, usec: 100}, "xadd": {calls: 5, usec: 10}}
	after := map[string]cmdStat{"fcall": {calls: 1010, usec: 40100}, "xadd": {calls: 2005, usec: 6010}, "ping": {calls: 0}}
	rc := redisCost(before, after, 1000)
	near("fcall calls per event", rc.Commands["fcall"].CallsPerEvent, 1)
	near("fcall µs per event", rc.Commands["fcall"].UsPerEvent, 40)
	near("xadd µs per call", rc.Commands["xadd"].UsPerCall, 3)
	if _, ok := rc.Commands["ping"]; ok || strings.Join(rc.top(), ",") != "fcall,xadd" {
		t.Errorf("commands %v", rc.top())
	}
	c.Redis = rc
	var b bytes.Buffer
	printCost(&b, "", c)
	for _, want := range []string{"redis 200.0 / 22.22", "connector-0 450.0 / 50.00", "servers 900.0 / 100.00", "90% busy", "fcall 1.00 40.0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printed cost lacks %q:\n%s", want, b.String())
		}
	}
}
