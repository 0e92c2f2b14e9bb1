// Package replay reads the inbound streams as the audit log of every
// accepted command: it merges the partitions in log order, rebuilds room
// state from them in a scratch key prefix with the workers' own Applier
// (to tell what each entry did, and to compare with the live state), and
// exports or imports the log as JSON lines.
//
// It never writes outside a scratch prefix, never writes outbound entries,
// and never holds the log in memory: entries stream through in pages. What
// it keeps grows with the number of rooms, not of entries.
package replay
