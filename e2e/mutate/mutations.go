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
		From:      "if not numlt(string.sub(a[3], i + 1, (j or 0) - 1), ARGV[8]) then",
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
		From:      "if a[2] and a[2] ~= ARGV[2] and numlt(ARGV[2], a[2]) then",
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
		File:      "workers/shared_round.go",
		From:      "\tif len(got.Entries) > 0 {\n\t\tl.take(got.Entries, len(r.Own) > 0)",
		To: "\tfor p, msgs := range got.Entries { // mutated: acknowledged on reading\n" +
			"\t\tfor _, m := range msgs {\n\t\t\tl.parts[p].unacked = append(l.parts[p].unacked, m.ID)\n\t\t}\n\t}\n" +
			"\tif len(got.Entries) > 0 {\n\t\tl.take(got.Entries, len(r.Own) > 0)",
		Checks: []check{
			{"./workers/", []string{"TestFencedPartitionIsRetaken", "TestFailingEntryHoldsUpItsPartitionOnly"}},
		},
	},
	{
		Name:      "read-retried",
		Guarantee: "a read whose reply was lost is not sent again behind the worker's back (it would skip the entries it delivered): the worker reads its own pending entries instead",
		File:      "streams/round.go",
		From:      "func (noRetry) NoRetry() bool { return true }",
		To:        "func (noRetry) NoRetry() bool { return false } // mutated: the read retried by the client",
		Checks: []check{
			{"./streams/", []string{"TestReadRoundAfterALostReply"}},
		},
	},
	{
		Name:      "shared-read-not-woken",
		Guarantee: "a partition joining or leaving the worker's shared read takes effect at once, not after the read's wait",
		File:      "workers/shared.go",
		From:      "\t\t_ = g.w.c.UnblockClient(ctx, id)\n",
		To:        "\t\t_, _ = ctx, id // mutated: the waiting read is not woken\n",
		Checks: []check{
			{"./workers/", []string{"TestStoppedPartitionLeavesAtOnce"}},
		},
	},
	{
		Name:      "failing-partition-holds-all",
		Guarantee: "an entry retried or dead-lettered holds up its own partition only",
		File:      "workers/shared.go",
		From:      "\t\t\tgo func() { defer w.wg.Done(); w.runAlone(run, unacked, rest) }()\n",
		To:        "\t\t\tfunc() { defer w.wg.Done(); w.runAlone(run, unacked, rest) }() // mutated: the shared read waits for it\n",
		Checks: []check{
			{"./workers/", []string{"TestFailingEntryHoldsUpItsPartitionOnly"}},
		},
	},
	{
		Name:      "progress-view-unchecked",
		Guarantee: "a progress report skips its room's checks only while the room applied nothing else since the worker saw them pass",
		File:      "workers/scripts/upload.lua",
		From:      "if mode == 'progress' and ARGV[16] ~= '' and lastID == ARGV[16] then",
		To:        "if mode == 'progress' and ARGV[16] ~= '' then -- mutated: the view trusted whatever happened since",
		Checks: []check{
			{"./workers/", []string{"TestProgressViewsFollowTheRoom", "TestProgressViewsAgreeWithFullChecks"}},
		},
	},
	{
		Name:      "progress-ttl-skipped",
		Guarantee: "upload:{uploadId}:progress lives 24 hours from its last report: a report skips setting its TTL only when its room's view saw it set less than a minute before",
		File:      "workers/views.go",
		From:      "\tif v == nil || version == \"\" {\n\t\treturn true\n\t}\n\tv.mu.Lock()\n\tdefer v.mu.Unlock()\n\trv := v.rooms[room]\n\tif rv == nil || rv.version != version {",
		To:        "\tif v == nil || version == \"\" {\n\t\treturn false // mutated: the TTL of a report without a view not set\n\t}\n\tv.mu.Lock()\n\tdefer v.mu.Unlock()\n\trv := v.rooms[room]\n\tif rv == nil || rv.version != version {",
		Checks: []check{
			{"./workers/", []string{"TestProgressHashTTLUnderAView"}},
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
		Name:      "room-access-claims-skipped",
		Guarantee: "room access: with ROOM_ACCESS=claims a socket joins only the rooms its token's rooms claim allows",
		File:      "connector/access.go",
		From:      "\t\tcase !ident.Rooms.Allows(room):\n",
		To:        "\t\tcase false && !ident.Rooms.Allows(room): // mutated: the rooms claim not checked\n",
		Checks: []check{
			{"./connector/", []string{"TestRoomAccessClaims"}},
			{"./e2e/", []string{"TestRoomAccessByClaims"}},
		},
	},
	{
		Name:      "idempotency-key-expiry-dropped",
		Guarantee: "an Idempotency-Key whose record expired is a new publish, delivered (a new generation, not a duplicate)",
		File:      "connector/api/scripts/idempotency.lua",
		From:      "local gen = t[1] .. string.format('%06d', tonumber(t[2]))\n",
		To:        "local gen = '1' -- mutated: every record of a key numbers its publish alike\n",
		Checks: []check{
			{"./connector/api/", []string{"TestPublishAfterIdempotencyExpired"}},
			{"./e2e/", []string{"TestPublishAfterIdempotencyKeyExpired"}},
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
	{
		Name:      "body-deadline",
		Guarantee: "nothing held for ever: a request whose body stalls is answered 408 or cut within READ_TIMEOUT",
		File:      "connector/deadlines.go",
		From:      "\t\tReadTimeout:       cfg.ReadTimeout,\n",
		To:        "\t\tReadTimeout:       0, // mutated: no body deadline\n",
		Checks: []check{
			{"./connector/", []string{"TestSlowPollBody"}},
			{"./e2e/", []string{"TestHostileStalledRequests"}},
		},
	},
	{
		Name:      "poll-write-deadline",
		Guarantee: "nothing held for ever: a poll whose response is never read is cut at pingInterval + WRITE_TIMEOUT",
		File:      "connector/deadlines.go",
		From:      "\t_ = rc.SetWriteDeadline(d)\n",
		To:        "\t_ = rc.SetWriteDeadline(time.Time{}) // mutated: a held poll writes for ever\n",
		Checks: []check{
			{"./connector/", []string{"TestUnreadPollResponseIsCut"}},
		},
	},
	{
		Name:      "conns-per-address-uncounted",
		Guarantee: "bounded per address: MAX_CONNS_PER_IP counts open connections, polling included",
		File:      "connector/netguard/guard.go",
		From:      "func (g *Guard) counting() bool { return g.cfg.MaxConnsPerAddr > 0 }",
		To:        "func (g *Guard) counting() bool { return false } // mutated: connections not counted",
		Checks: []check{
			{"./connector/netguard/", []string{"TestConnectionsPerAddress"}},
			{"./connector/", []string{"TestPollingConnectionsCounted"}},
		},
	},
	{
		Name:      "forward-body-unread",
		Guarantee: "forwarded requests are bounded on the first hop: a stalled POST is answered there within READ_TIMEOUT",
		File:      "connector/forward.go",
		From:      "\tif r.Method == http.MethodPost {\n\t\t// One byte more",
		To:        "\tif false { // mutated: the body is passed on as it comes\n\t\t// One byte more",
		Checks: []check{
			{"./connector/", []string{"TestForwardedSlowBody"}},
			{"./e2e/", []string{"TestHostileStalledRequests"}},
		},
	},
	{
		Name:      "forward-waits-for-ever",
		Guarantee: "a forward to a peer that does not answer is answered 502 within pingInterval + WRITE_TIMEOUT/2",
		File:      "connector/forward.go",
		From:      "time.AfterFunc(s.answerTimeout(), func() { cancel(errPeerSilent) })",
		To:        "time.AfterFunc(1000*time.Hour /* mutated: no bound */, func() { cancel(errPeerSilent) })",
		Checks: []check{
			{"./connector/", []string{"TestForwardToSilentPeer"}},
		},
	},
	{
		Name:      "peer-misses-uncached",
		Guarantee: "requests naming a dead connector's sessions cost no Redis read each",
		File:      "connector/forward.go",
		From:      "\tpeerMissTTL  = 3 * time.Second\n",
		To:        "\tpeerMissTTL  = 0 // mutated: misses read Redis every time\n",
		Checks: []check{
			{"./connector/", []string{"TestPeerMissesCached"}},
		},
	},
	{
		Name:      "blind-pongs-count",
		Guarantee: "a pong counts only as the answer to a ping its client saw: a polling session with no GET is closed",
		File:      "connector/ping.go",
		From:      "\tif p := so.poll; p != nil && p.pingTaken < so.pingSent {\n",
		To:        "\tif p := so.poll; false && p != nil { // mutated: blind pongs count\n",
		Checks: []check{
			{"./connector/", []string{"TestPollingBlindPongs"}},
		},
	},
	{
		Name:      "forwarded-for-from-anyone",
		Guarantee: "X-Forwarded-For is taken from trusted proxies only",
		File:      "connector/netguard/trust.go",
		From:      "\tif !peer.IsValid() || !t.Trusted(peer) {\n",
		To:        "\tif !peer.IsValid() { // mutated: anyone names its client\n",
		Checks: []check{
			{"./connector/netguard/", []string{"TestClientAddr"}},
		},
	},
	{
		Name:      "ipv6-per-address",
		Guarantee: "per-address limits key an IPv6 client by its /64",
		File:      "connector/netguard/trust.go",
		From:      "\tp, _ := a.WithZone(\"\").Prefix(64)\n",
		To:        "\tp, _ := a.WithZone(\"\").Prefix(128) // mutated: each address its own bucket\n",
		Checks: []check{
			{"./connector/netguard/", []string{"TestKey"}},
			{"./connector/", []string{"TestHandshakeRateBehindTrustedProxy"}},
		},
	},
	{
		Name:      "api-auth-unlimited",
		Guarantee: "failed server-API authentications are rate limited per client address",
		File:      "connector/api/handler.go",
		From:      "\tif h.opts.FailedAuths.Spent(client) {\n",
		To:        "\tif false { // mutated: guess the key at any rate\n",
		Checks: []check{
			{"./connector/api/", []string{"TestFailedAuthLimited"}},
		},
	},
	{
		Name:      "format-ignores-previous-release",
		Guarantee: "rolling upgrades: nothing is written in a stream format a live process of the previous release cannot read",
		File:      "streams/format.go",
		From:      "\t\treturn unregistered\n",
		To:        "\t\treturn FormatCurrent // mutated: a process that registers no format counted as current\n",
		Checks: []check{
			{"./streams/", []string{"TestRefreshFormat"}},
			{"./e2e/", []string{"TestRollingUpgrade"}},
		},
		Timeout: 15 * time.Minute,
	},
	{
		Name:      "previous-format-refused",
		Guarantee: "rolling upgrades: a build reads the previous release's stream format",
		File:      "streams/envelope.go",
		From:      "\tif e.Version < FormatPrevious {\n",
		To:        "\tif e.Version < FormatCurrent { // mutated: the previous release's entries dead-lettered\n",
		Checks: []check{
			{"./streams/", []string{"TestEnvelopeFormats"}},
			{"./e2e/", []string{"TestRollingUpgrade"}},
		},
		Timeout: 15 * time.Minute,
	},
	{
		Name:      "accept-time-not-carried",
		Guarantee: "per-hop latency: outbound entries carry their event's accept time, so connectors time each delivery",
		File:      "workers/effects.go",
		From:      "Room: e.room, Accepted: e.accepted}",
		To:        "Room: e.room} // mutated: no accept time in outbound entries",
		Checks: []check{
			{"./workers/", []string{"TestLatencyHops"}},
			{"./e2e/", []string{"TestPrometheusMonitoring"}},
		},
	},
	{
		Name:      "latency-not-clamped",
		Guarantee: "per-hop latency: a hop read before the accept time (another machine's clock) counts as zero",
		File:      "streams/latency.go",
		From:      "max(now.Sub(accepted), 0)",
		To:        "now.Sub(accepted) /* mutated: negative durations observed */",
		Checks: []check{
			{"./streams/", []string{"TestLatency"}},
		},
	},
	{
		Name:      "worker-shutdown-keeps-leases",
		Guarantee: "graceful replacement: a worker stopped with SIGTERM hands its partitions over at once, not after the lease TTL",
		File:      "workers/worker.go",
		From:      "\t\tif err := w.c.ReleaseLease(ctx, r.p, w.id, r.token); err != nil {\n",
		To:        "\t\tif err := error(nil); err != nil { // mutated: leases kept until they expire\n",
		Checks: []check{
			{"./e2e/", []string{"TestGracefulShutdown"}},
		},
	},
	{
		Name:      "feed-refusal",
		Guarantee: "the applied-events feed holds what rooms heard: a refused event never reaches it",
		File:      "workers/effects.go",
		From:      "\te.outcome.Status, e.outcome.Message = string(err.Code), err.Message\n",
		To:        "\te.outcome.Status, e.outcome.Message = string(err.Code), err.Message\n\te.keep(env.Type, env.Data) // mutated: the refused event is fed\n",
		Checks: []check{
			{"./workers/", []string{"TestFeedSkipsRefusals"}},
			{"./e2e/", []string{"TestFeedSkipsRefusedEvents"}},
		},
	},
	{
		Name:      "feed-no-dedup",
		Guarantee: "an event applied twice (a redelivered entry) appears once in the feed",
		File:      "streams/scripts/feed_append.lua",
		From:      "if not last or idlt(last, id) then",
		To:        "if true then -- mutated: every write of an entry is fed",
		Checks: []check{
			{"./workers/", []string{"TestFeedOnceUnderRepeatedApply"}},
		},
	},
	{
		Name:      "webhook-signature",
		Guarantee: "webhooks are signed by the Standard Webhooks convention (HMAC-SHA256 of id.timestamp.body)",
		File:      "workers/hooks/sign.go",
		From:      "strconv.FormatInt(t.Unix(), 10))",
		To:        "strconv.FormatInt(t.Unix()+1, 10)) // mutated: a timestamp other than the signed one",
		Checks: []check{
			{"./workers/hooks/", []string{"TestSignatureMatchesTheSpec"}},
			{"./e2e/", []string{"TestWebhooksDeliverEveryEvent"}},
		},
	},
	{
		Name:      "webhook-id-per-attempt",
		Guarantee: "a retried webhook keeps its webhook-id, so that receivers can drop repeats",
		File:      "workers/hooks/deliver.go",
		From:      "err := h.post(context.WithoutCancel(r.ctx), it.ev.EventID(), b)",
		To:        "err := h.post(context.WithoutCancel(r.ctx), it.ev.EventID()+\"-\"+strconv.Itoa(attempt), b) // mutated: an id per attempt",
		Checks: []check{
			{"./workers/hooks/", []string{"TestDeliversEveryEventInRoomOrder", "TestDeadLetterAndRequeue"}},
			{"./e2e/", []string{"TestWebhooksDeliverEveryEvent"}},
		},
	},
}
