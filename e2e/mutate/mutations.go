package main

import "time"

// The mutations: each breaks one guarantee of the README in one small,
// exact change. A snippet must occur exactly once in its file and every
// named test must exist (mutations_test.go checks both without running
// anything), so that the list fails loudly when the code moves.

// check is one `go test` run: a package and the top-level tests in it.
type check struct {
	Pkg   string
	Tests []string
}

type mutation struct {
	Name      string
	Guarantee string // what breaks, in the README's words
	File      string
	From, To  string
	Checks    []check // run in order until one catches the mutation
	Timeout   time.Duration
}

var mutations = []mutation{
	{
		Name:      "durable-no-wait",
		Guarantee: "durable mode: every write is on a replica (WAIT) before anyone hears of it",
		File:      "streams/client.go",
		From:      "\t\t_ = p.Process(ctx, wait)\n",
		To:        "\t\twait.SetVal(int64(c.cfg.DurableReplicas)) // mutated: WAIT dropped, the replicas assumed\n",
		Checks: []check{
			{"./connector/", []string{"TestDurableWaitKeepsAcknowledgedWrites"}},
			{"./workers/", []string{"TestDurableApplyWaitsForReplica"}},
		},
		Timeout: 10 * time.Minute,
	},
	{
		Name:      "skip-seq-dup",
		Guarantee: "a client event appended twice (lost XADD reply) is applied once: (origin, seq) check in the room scripts",
		File:      "workers/scripts/prelude.lua",
		From:      "if seq and tonumber(ARGV[8]) <= seq then",
		To:        "if false then -- mutated: (origin, seq) duplicates applied again",
		Checks: []check{
			{"./workers/", []string{"TestRepeatedAppend"}},
			{"./e2e/", []string{"TestLostAppendReply"}},
		},
	},
	{
		Name:      "skip-entry-dup",
		Guarantee: "a redelivered entry older than the room's last applied one changes nothing",
		File:      "workers/scripts/prelude.lua",
		From:      "if idlt(ARGV[1], a[1]) then",
		To:        "if false then -- mutated: older entries applied again",
		Checks: []check{
			{"./workers/", []string{"TestIdempotent"}},
		},
	},
	{
		Name:      "skip-fence",
		Guarantee: "per-room order: a worker that lost its lease is refused by the room scripts (lease token checked)",
		File:      "workers/scripts/prelude.lua",
		From:      "if tonumber(ARGV[2]) < tonumber(a[2] or '0') then",
		To:        "if false then -- mutated: stale lease tokens accepted",
		Checks: []check{
			{"./workers/", []string{"TestFencing", "TestApplyBatchStopsWhenFenced", "TestFencedPartitionIsRetaken"}},
		},
	},
	{
		Name:      "connector-no-dedup",
		Guarantee: "re-sent outbound entries (a redelivered inbound entry) are dropped by the connector",
		File:      "connector/outbound.go",
		From:      "\tif !d.fresh(o) {\n\t\ts.m.duplicates.Inc()",
		To:        "\tif !d.fresh(o) && false { // mutated: duplicates delivered\n\t\ts.m.duplicates.Inc()",
		Checks: []check{
			{"./connector/", []string{"TestOutboundDuplicatesDropped"}},
		},
	},
	{
		Name:      "dedup-accepts-older",
		Guarantee: "the connector's per-room duplicate test: an older or equal source id is a duplicate",
		File:      "connector/outbound.go",
		From:      "if prev, ok := d.last[key]; ok && !prev.Less(src) {",
		To:        "if prev, ok := d.last[key]; ok && src.Less(prev) { // mutated: an equal source id passes",
		Checks: []check{
			{"./connector/", []string{"TestDedupPerRoom"}},
		},
	},
	{
		Name:      "ack-before-apply",
		Guarantee: "entries are acknowledged only after their state change and outbound events are written",
		File:      "workers/partition.go",
		From:      "\t\tbo.Reset()\n\t\tids, later, laterIDs, ok := w.process(",
		To: "\t\tbo.Reset()\n\t\tearly := make([]string, 0, len(msgs)) // mutated: acknowledged on reading\n" +
			"\t\tfor _, m := range msgs {\n\t\t\tearly = append(early, m.ID)\n\t\t}\n\t\tw.ack(ctx, run, r, early)\n" +
			"\t\tids, later, laterIDs, ok := w.process(",
		Checks: []check{
			{"./workers/", []string{"TestFencedPartitionIsRetaken"}},
		},
	},
	{
		Name:      "trim-no-pending-guard",
		Guarantee: "inbound streams are trimmed, never past unapplied (pending) entries",
		File:      "streams/trim.go",
		From:      "\t\tif g.Pending > 0 {",
		To:        "\t\tif false && g.Pending > 0 { // mutated: pending entries trimmed",
		Checks: []check{
			{"./streams/", []string{"TestTrimInbound"}},
		},
	},
	{
		Name:      "accept-expired-token",
		Guarantee: "identity from a valid token only: an expired token is refused (expired_token)",
		File:      "connector/auth/verify.go",
		From:      "\t\tjwt.WithLeeway(o.Leeway),",
		To:        "\t\tjwt.WithLeeway(o.Leeway + 1000*time.Hour), // mutated: expired tokens pass",
		Checks: []check{
			{"./connector/auth/", []string{"TestVerify"}},
			{"./connector/", []string{"TestHandshakeAndAuth"}},
		},
	},
	{
		Name:      "trust-payload-user",
		Guarantee: "identity from the token only: a payload's different userId is refused (forbidden)",
		File:      "schemas/validate.go",
		From:      "\tif *payloadUser != \"\" && *payloadUser != authUser {\n\t\te := NewError(CodeForbidden, \"userId does not match the authenticated user\")\n\t\te.Field = \"userId\"\n\t\treturn e\n\t}",
		To:        "\tif *payloadUser != \"\" {\n\t\treturn nil // mutated: the payload's userId trusted\n\t}",
		Checks: []check{
			{"./schemas/", nil},
		},
	},
	{
		Name:      "send-queue-unbounded",
		Guarantee: "bounded per client: a socket past its send queue (packets or bytes) is disconnected",
		File:      "connector/socket.go",
		From:      "\treturn len(so.queue)+so.qwire+n > cfg.SendQueue || overBytes\n",
		To:        "\treturn false && (len(so.queue)+so.qwire+n > cfg.SendQueue || overBytes) // mutated: queues grow without bound\n",
		Checks: []check{
			{"./connector/", []string{"TestSendQueueBytes", "TestSlowSocketIsDropped"}},
		},
	},
	{
		Name:      "refusals-unbounded",
		Guarantee: "bounded per client: a socket refused MAX_REFUSALS times in a row is dropped",
		File:      "connector/events.go",
		From:      "\ttooMany := so.refusals >= so.refusalLimit()\n",
		To:        "\ttooMany := false && so.refusals >= so.refusalLimit() // mutated: refused forever\n",
		Checks: []check{
			{"./connector/", []string{"TestRefusalsInARowDisconnect"}},
		},
	},
	{
		Name:      "live-token-never-expires",
		Guarantee: "tokens keep mattering: a live socket whose token expires is told and disconnected after the grace",
		File:      "connector/events.go",
		From:      "\tso.tokenTimer = time.AfterFunc(time.Until(exp), fire)\n",
		To:        "\tso.tokenTimer = time.AfterFunc(time.Until(exp)+1000*time.Hour, fire) // mutated: expiry of a live socket ignored\n",
		Checks: []check{
			{"./e2e/", []string{"TestHostileClients"}},
		},
	},
	{
		Name:      "backlog-unbounded",
		Guarantee: "bounded streams: a partition past MAX_BACKLOG refuses new events with unavailable",
		File:      "connector/backlog.go",
		From:      "\t\tover[i] = backlogs[i] > s.cfg.MaxBacklog\n",
		To:        "\t\tover[i] = false && backlogs[i] > s.cfg.MaxBacklog // mutated: backlogs grow\n",
		Checks: []check{
			{"./e2e/", []string{"TestBacklogRefusesNewEvents"}},
		},
	},
	{
		Name:      "poison-never-dead-lettered",
		Guarantee: "entries failing MAX_ATTEMPTS times go to a dead-letter stream and the partition moves on",
		File:      "workers/partition.go",
		From:      "\t\tif attempts >= w.cfg.MaxAttempts || errors.Is(err, ErrPermanent) {",
		To:        "\t\tif false && (attempts >= w.cfg.MaxAttempts || errors.Is(err, ErrPermanent)) { // mutated: retried forever",
		Checks: []check{
			{"./e2e/", []string{"TestPoisonEvent"}},
		},
	},
}
