// Package demo is the demo web app of `roomstream dev`: a page that shows
// rooms working (presence, lock, uploads with progress, files), served from
// files embedded in the binary, and the dev-only HTTP endpoints it needs: a
// token mint that signs a JWT for any user name with the dev secret, and an
// upload store in a temporary folder.
//
// Only `roomstream dev` mounts it. The `connector` command must never do so:
// the token mint lets anyone be anyone.
package demo
