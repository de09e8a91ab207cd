package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	kjson "sigs.k8s.io/json"
)

// Version is the record format this release writes. Records of a higher
// version are refused with ErrUnsupportedVersion; adding fields to Claim
// does not need a new version, because records are decoded leniently.
const Version = 1

const checksumPrefix = "sha256:"

// envelope is the on-disk form of a record. The checksum covers the exact
// payload bytes as stored, so a record written by a newer plugin with fields
// this release does not know still verifies.
type envelope struct {
	Version  int             `json:"version"`
	Checksum string          `json:"checksum"`
	Payload  json.RawMessage `json:"payload"`
}

// payload is what the checksum protects.
type payload struct {
	BootID string `json:"bootID"`
	Claim  Claim  `json:"claim"`
}

// encodeRecord returns the file content for c written in boot bootID.
func encodeRecord(bootID string, c Claim) ([]byte, error) {
	p, err := json.Marshal(payload{BootID: bootID, Claim: c})
	if err != nil {
		return nil, fmt.Errorf("encode claim %s: %w", c.UID, err)
	}
	out, err := json.Marshal(envelope{Version: Version, Checksum: checksum(p), Payload: p})
	if err != nil {
		return nil, fmt.Errorf("encode claim %s: %w", c.UID, err)
	}
	return append(out, '\n'), nil
}

// decodeRecord checks and decodes a record. The envelope and its checksum
// are strict; the claim itself is decoded leniently (unknown fields are
// ignored) so that an older plugin can still unprepare what a newer one
// prepared.
func decodeRecord(data []byte) (bootID string, c Claim, err error) {
	var env envelope
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &env); err != nil {
		return "", Claim{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	switch {
	case env.Version == 0:
		return "", Claim{}, fmt.Errorf("%w: no version", ErrCorrupt)
	case env.Version > Version:
		return "", Claim{}, fmt.Errorf("%w: version %d, this release reads up to %d", ErrUnsupportedVersion, env.Version, Version)
	case env.Version < 0:
		return "", Claim{}, fmt.Errorf("%w: version %d", ErrCorrupt, env.Version)
	}
	if !strings.HasPrefix(env.Checksum, checksumPrefix) {
		return "", Claim{}, fmt.Errorf("%w: checksum %q is not %s<hex>", ErrCorrupt, env.Checksum, checksumPrefix)
	}
	// Compact undoes any re-indentation by hand; a changed byte in a value
	// still changes the checksum.
	var p bytes.Buffer
	if err := json.Compact(&p, env.Payload); err != nil {
		return "", Claim{}, fmt.Errorf("%w: payload: %w", ErrCorrupt, err)
	}
	if got := checksum(p.Bytes()); got != env.Checksum {
		return "", Claim{}, fmt.Errorf("%w: checksum mismatch: recorded %s, content %s", ErrCorrupt, env.Checksum, got)
	}
	var pl payload
	if err := kjson.UnmarshalCaseSensitivePreserveInts(p.Bytes(), &pl); err != nil {
		return "", Claim{}, fmt.Errorf("%w: payload: %w", ErrCorrupt, err)
	}
	if pl.BootID == "" {
		return "", Claim{}, fmt.Errorf("%w: no boot id", ErrCorrupt)
	}
	return pl.BootID, pl.Claim, nil
}

func checksum(p []byte) string {
	sum := sha256.Sum256(p)
	return checksumPrefix + hex.EncodeToString(sum[:])
}
