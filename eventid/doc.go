// Package eventid writes and reads the event ids of caddy-sse: "<epoch>-<seq>", the stream incarnation and the
// JetStream stream sequence, made of [A-Za-z0-9._-] only. It imports nothing of the project.
package eventid
