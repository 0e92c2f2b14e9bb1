package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/streams"
)

// The operators' commands: the server API's reads and disconnect, for
// operators without curl. They talk to Redis directly (the deployment's
// ROOMSTREAM_REDIS_URL, _KEY_PREFIX, _PARTITIONS) with the API's own
// code, so they need no API key and no running connector.

// opsConfig is the environment of rooms and users: the deployment's Redis
// and the API's revocation lifetime (the API's own setting, default
// included).
type opsConfig struct {
	streams.Config
	api.RevokeConfig
}

// Rooms runs `rooms list` and `rooms show`.
func Rooms(args []string) error {
	const usage = "rooms list [-limit N] [-cursor C] [-all] [-json] | show -room ID [-json]"
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		return errors.New("usage: roomstream " + usage)
	}
	var cfg opsConfig
	fs := newFlags("rooms "+args[0], usage, &cfg)
	room := fs.String("room", "", "room id (show)")
	limit := fs.Int("limit", api.DefaultPageLimit, "rooms per page (list)")
	cursor := fs.String("cursor", "", "nextCursor of the previous page (list)")
	all := fs.Bool("all", false, "every page (list)")
	asJSON := fs.Bool("json", false, "print JSON as the server API answers it")
	return withService(fs, args[1:], &cfg, func(ctx context.Context, svc *api.Service) error {
		if args[0] == "show" {
			if *room == "" {
				return errors.New("-room is required")
			}
			r, err := svc.Room(ctx, *room)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(os.Stdout, r)
			}
			tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "room\t%s (%s)\n", r.RoomID, r.Name)
			lock := "unlocked"
			if r.IsLocked {
				lock = fmt.Sprintf("locked by %s (%s) since %s", r.LockedByName, r.LockedBy, r.LockedAt)
				if r.LockReason != "" {
					lock += fmt.Sprintf(": %q", r.LockReason)
				}
			}
			fmt.Fprintf(tw, "lock\t%s\n", lock)
			fmt.Fprintf(tw, "last activity\t%s\n", r.LastActivity)
			for _, m := range r.Members {
				fmt.Fprintf(tw, "member\t%s (%s), joined %s\n", m.UserName, m.UserID, m.JoinedAt)
			}
			for _, u := range r.ActiveUploads {
				fmt.Fprintf(tw, "upload\t%s %q by %s: %d of %d bytes\n", u.UploadID, u.FileName, u.UserID, u.BytesUploaded, u.TotalBytes)
			}
			for _, f := range r.Files {
				fmt.Fprintf(tw, "file\t%s %q (%d bytes, %s) by %s at %s\n", f.ID, f.Name, f.Size, f.MimeType, f.UploadedBy, f.CreatedAt)
			}
			return tw.Flush()
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		if !*asJSON {
			fmt.Fprintln(tw, "ROOM\tMEMBERS\tLOCKED BY\tLAST ACTIVITY")
		}
		for {
			page, err := svc.Rooms(ctx, *cursor, *limit)
			if err != nil {
				return err
			}
			if *asJSON {
				if err := printJSON(os.Stdout, page); err != nil {
					return err
				}
			} else {
				for _, r := range page.Rooms {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.RoomID, r.Members, r.LockedBy, r.LastActivity)
				}
			}
			*cursor = page.NextCursor
			if !*all || *cursor == "" {
				break
			}
		}
		if !*asJSON {
			if *cursor != "" {
				fmt.Fprintf(tw, "(more: -cursor %s, or -all)\n", *cursor)
			}
			return tw.Flush()
		}
		return nil
	})
}

// Users runs `users show` and `users disconnect`.
func Users(args []string) error {
	const usage = "users show -user ID [-json] | disconnect -user ID [-reason TEXT] [-revoke] [-json]"
	if len(args) == 0 || (args[0] != "show" && args[0] != "disconnect") {
		return errors.New("usage: roomstream " + usage)
	}
	var cfg opsConfig
	fs := newFlags("users "+args[0], usage, &cfg)
	user := fs.String("user", "", "user id (required)")
	reason := fs.String("reason", "", "why (disconnect: sent as the WebSocket close reason)")
	revoke := fs.Bool("revoke", false, "also refuse the user's tokens issued until now (disconnect)")
	asJSON := fs.Bool("json", false, "print JSON as the server API answers it")
	return withService(fs, args[1:], &cfg, func(ctx context.Context, svc *api.Service) error {
		if *user == "" {
			return errors.New("-user is required")
		}
		if args[0] == "disconnect" {
			d, err := svc.Disconnect(ctx, *user, api.DisconnectRequest{Reason: *reason, RevokeTokens: *revoke})
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(os.Stdout, d)
			}
			fmt.Printf("%d socket(s) of %s told to close on %s\n", len(d.Sockets), d.UserID, orNone(d.Connectors))
			if d.TokensRevokedBefore != "" {
				fmt.Printf("tokens issued up to %s are refused\n", d.TokensRevokedBefore)
			}
			return nil
		}
		u, err := svc.User(ctx, *user)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(os.Stdout, u)
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "user\t%s\n", u.UserID)
		fmt.Fprintf(tw, "rooms\t%s\n", orNone(u.Rooms))
		if u.TokensRevokedBefore != "" {
			fmt.Fprintf(tw, "tokens\trevoked up to %s\n", u.TokensRevokedBefore)
		}
		for _, s := range u.Sockets {
			line := fmt.Sprintf("socket\t%s on %s, %s, connected %s", s.SocketID, s.Connector, s.State, s.ConnectedAt)
			if s.DroppedAt != "" {
				line += ", dropped " + s.DroppedAt
			}
			fmt.Fprintln(tw, line)
		}
		return tw.Flush()
	})
}

// withService parses flags and the environment, connects to Redis and
// runs fn with the API's operations; refusals print as the API words them.
func withService(fs *flag.FlagSet, args []string, cfg *opsConfig, fn func(context.Context, *api.Service) error) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := loadEnv(cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.RedisURL == "" {
		return errors.New("ROOMSTREAM_REDIS_URL is required (redis://host:port)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb, err := cfg.Connect(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	sc := streams.New(rdb, cfg.Config)
	// What it appends goes in the stream format every live process reads.
	if _, _, err := sc.RefreshFormat(ctx); err != nil {
		return err
	}
	err = fn(ctx, api.NewService(sc, &api.Options{RevokeTTL: cfg.RevokeTTL}))
	var ae *api.Error
	if errors.As(err, &ae) {
		return errors.New(ae.Err.Message)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
