// Package sse writes Server-Sent Events frames as the WHATWG parser reads them: payloads split on CR, LF and
// CRLF into several data lines, id and event fields without CR, LF or NUL, retry as digits only, comments
// starting with ':'. It imports nothing of the project.
package sse
