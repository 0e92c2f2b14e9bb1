// Package browser tests the demo web app of `roomstream dev` in a real
// browser: browser_test.go builds the binary, starts it, and runs demo.mjs
// (playwright-core driving Debian's chromium; no browser is ever
// downloaded). It holds only tests.
package browser
