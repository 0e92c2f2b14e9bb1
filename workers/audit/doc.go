// Package audit reads the inbound streams as the audit log of every
// accepted command, behind the `roomstream replay` command: a room's
// timeline (who asked what, and what applying it did), verify (the state
// rebuilt from the log compared with the live state), and export and
// import of the log as JSON lines. It merges the partitions in log order
// and rebuilds room state in a scratch key prefix through the workers' own
// Applier, so that what an entry did is what a worker would have done.
//
// It never writes outside a scratch prefix, never writes outbound entries,
// and never holds the log in memory: entries stream through in pages. What
// it keeps grows with the number of rooms, not of entries.
package audit
