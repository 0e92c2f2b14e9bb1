package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// DeadLetters runs `deadletters list` and `deadletters requeue`: of the
// inbound entries workers could not apply, or with -webhooks of the feed
// events hooks processes could not deliver.
func DeadLetters(args []string) error {
	const usage = "deadletters list [-webhooks] [-partition N] [-json] | requeue [-webhooks] (-partition N -id ID | -all)"
	if len(args) == 0 || (args[0] != "list" && args[0] != "requeue") {
		return errors.New("usage: roomstream " + usage)
	}
	var cfg streams.Config
	fs := newFlags("deadletters "+args[0], usage, &cfg)
	webhooks := fs.Bool("webhooks", false, "the webhook dead letters (events the hooks could not deliver) instead of the inbound ones")
	part := fs.Int("partition", -1, "partition (default: all)")
	asJSON := fs.Bool("json", false, "list as JSON lines")
	id := fs.String("id", "", "dead letter id to requeue")
	all := fs.Bool("all", false, "requeue every dead letter (of -partition, or of all)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb, err := cfg.Connect(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	c := streams.New(rdb, cfg)
	if *part >= cfg.Partitions {
		return fmt.Errorf("-partition must be below ROOMSTREAM_PARTITIONS (%d)", cfg.Partitions)
	}
	list, requeue, kind := c.DeadLetters, c.Requeue, "dead letter"
	if *webhooks {
		list, requeue, kind = c.WebhookDeadLetters, c.RequeueWebhook, "webhook dead letter"
	}
	letters, err := list(ctx, *part)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			for _, d := range letters {
				_ = enc.Encode(d)
			}
			return nil
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tID\tSOURCE\tTYPE\tROOM\tATTEMPTS\tFAILED AT\tREQUEUED AS\tERROR")
		for _, d := range letters {
			requeued := d.Requeued
			if requeued == "" {
				requeued = "-"
			}
			room := d.Values["room"]
			if *webhooks {
				room = d.Values["roomId"]
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%v\t%d\t%s\t%s\t%s\n", d.Partition, d.ID, d.Source, d.Values["type"], room,
				d.Attempts, d.FailedAt.Format(time.RFC3339), requeued, d.Error)
		}
		_ = tw.Flush()
		fmt.Fprintf(os.Stderr, "%d %s(s)\n", len(letters), kind)
		return nil
	}
	if !*all && (*id == "" || *part < 0) {
		return errors.New("requeue needs -partition N -id ID, or -all")
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i].ID < letters[j].ID })
	n := 0
	for _, d := range letters {
		if !*all && d.ID != *id {
			continue
		}
		if *all && d.Requeued != "" {
			continue // requeued before
		}
		nid, err := requeue(ctx, d.Partition, d.ID)
		if err != nil {
			return fmt.Errorf("requeue %s of partition %d: %w", d.ID, d.Partition, err)
		}
		fmt.Printf("requeued partition %d %s as %s\n", d.Partition, d.ID, nid)
		n++
	}
	if n == 0 && !*all {
		return fmt.Errorf("no %s %s in partition %d", kind, *id, *part)
	}
	if n == 0 {
		fmt.Println("nothing to requeue")
	}
	return nil
}
