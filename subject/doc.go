// Package subject is the NATS subject grammar shared by the hub, the JetStream reader and the Caddy module:
// validity, matching, covering, and the one minimal-set rule (no pattern another one covers). It imports
// nothing of the project.
package subject
