// Package testkit is what roomstream's test suites share to act as the
// users of a deployment under test: signing test tokens, dialling a
// connector with one, emitting with an acknowledgement, waiting for an
// event, a condition or a process's /readyz, a member that reconnects
// and recovers its socket as a browser tab does (member.go), and the
// truth a run is checked against: what the inbound streams accepted and
// so what each member must have received (truth.go). It starts nothing
// itself (package harness runs processes, containers runs containers).
//
// It is test tooling: no server code imports it, and the roomstream
// binary does not link it.
package testkit
