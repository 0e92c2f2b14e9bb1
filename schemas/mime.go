package schemas

// DefaultMimeType is the mimeType of a file whose sender gave none.
const DefaultMimeType = "application/octet-stream"

// ValidMimeType reports whether s may be a file's mimeType: printable
// ASCII of at most MaxNameLen bytes ("" too: DefaultMimeType stands in).
// A media type is a token, not display text: ValidText's Unicode is not
// allowed in it.
func ValidMimeType(s string) bool {
	return len(s) <= MaxNameLen && printableASCII(s)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkMime is ValidMimeType with a reason, for client payloads.
func checkMime(s string) *Error {
	if len(s) > MaxNameLen {
		return fieldErr("mimeType", "must be at most %d bytes", MaxNameLen)
	}
	if !printableASCII(s) {
		return fieldErr("mimeType", "must be printable ASCII")
	}
	return nil
}
