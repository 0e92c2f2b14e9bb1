package demo

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/roomstream/roomstream/connector/auth"
)

// App is the demo: its page, token mint and upload store.
type App struct {
	cfg      Config
	secret   string
	verifier *auth.Verifier
	log      *slog.Logger
	store    *store

	closeOnce sync.Once
	closeErr  error
}

// New returns the demo for a connector whose token settings are ac (its
// JWT secret signs the minted tokens). Its uploads go to a new temporary
// folder that Close removes.
func New(ac auth.Config, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(ac.JWTSecret) < 16 {
		return nil, fmt.Errorf("demo: the JWT secret must be at least 16 characters")
	}
	dir, err := os.MkdirTemp("", "roomstream-demo-")
	if err != nil {
		return nil, fmt.Errorf("demo: create upload folder: %w", err)
	}
	return &App{
		cfg:      cfg,
		secret:   ac.JWTSecret,
		verifier: auth.NewVerifier(ac.JWTSecret, ac.JWTIssuer, ac.JWTAudience, ac.JWTLeeway),
		log:      log.With("component", "demo"),
		store:    newStore(dir, cfg),
	}, nil
}

// Mount creates the demo and adds its routes to mux. Only `roomstream dev`
// calls it. The caller must Close the returned App.
func Mount(mux *http.ServeMux, ac auth.Config, cfg Config, log *slog.Logger) (*App, error) {
	a, err := New(ac, cfg, log)
	if err != nil {
		return nil, err
	}
	a.Register(mux)
	return a, nil
}

// Register adds the demo's routes to mux:
//
//	GET    /                   the page
//	GET    /assets/{file}      its scripts and styles
//	POST   /demo/token         {name} -> {token, userId, userName, expiresAt, limits}
//	POST   /demo/uploads       {name, size, mimeType} -> {id, chunkSize}   (Bearer token)
//	PUT    /demo/uploads/{id}  ?offset=N, body: the next bytes             (Bearer token)
//	DELETE /demo/uploads/{id}  abandon an upload                           (Bearer token)
//	GET    /demo/files/{id}    download a completed upload
func (a *App) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", a.serveIndex)
	mux.Handle("GET /assets/", a.assets())
	mux.HandleFunc("POST /demo/token", a.mintToken)
	mux.HandleFunc("POST /demo/uploads", a.authed(a.createUpload))
	mux.HandleFunc("PUT /demo/uploads/{id}", a.authed(a.writeChunk))
	mux.HandleFunc("DELETE /demo/uploads/{id}", a.authed(a.deleteUpload))
	mux.HandleFunc("GET /demo/files/{id}", a.download)
}

// Config returns the demo's configuration.
func (a *App) Config() Config { return a.cfg }

// Dir returns the folder that holds the uploaded files.
func (a *App) Dir() string { return a.store.dir }

// Close removes the uploaded files. It is safe to call more than once.
func (a *App) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.store.close() })
	return a.closeErr
}
