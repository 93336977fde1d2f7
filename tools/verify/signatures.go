package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
)

const (
	schemeV2  = "trial-ledger/record-signature/v2"
	algorithm = "Ed25519"
)

// manifestMembers are R's data members the manifest copies (docs/security.md, scheme v2).
var manifestMembers = []string{
	"scheme", "signed_event_id", "signed_record_id", "signed_version", "signer_id",
	"printed_name", "meaning", "signed_at", "assertion_id", "key_id", "algorithm",
}

// checkRecordSignatures verifies each RecordSigned.v2 entry against the entry it names,
// both as parsed from the payloads the proofs cover.
func checkRecordSignatures(entries []entry, trust Trust, report *Report) {
	byID := map[string]entry{}
	for _, e := range entries {
		if id, ok := e.Event["id"].(string); ok {
			if _, seen := byID[id]; !seen {
				byID[id] = e
			}
		}
	}
	for _, r := range entries {
		switch r.Event["type"] {
		case "RecordSigned.v1":
			report.SignaturesV1++ // the first scheme signs Python's canonical JSON: not re-implemented here
		case "RecordSigned.v2":
			data, _ := r.Event["data"].(map[string]any)
			id, _ := data["signed_event_id"].(string)
			s, found := byID[id]
			if !found {
				report.fail(r.Position, "signed_event_missing", "the event it signs (event %v) is not in this export", data["signed_event_id"])
				continue
			}
			named, _ := data["key_id"].(string)
			key, trusted := trust.Records[named]
			if !trusted {
				report.fail(r.Position, "record_key", "made with key %q, not a trusted record key", named)
				continue
			}
			if err := verifySignature(s.Event, data, key); err != nil {
				report.fail(r.Position, "record_signature", "does not verify against the %v at position %d: %v", s.Event["type"], s.Position, err)
				continue
			}
			report.SignaturesOK++
		}
	}
	if report.SignaturesV1 > 0 {
		report.Notes = append(report.Notes, fmt.Sprintf("%d scheme v1 record signatures not checked (cli verify-export checks them)", report.SignaturesV1))
	}
}

// verifySignature follows docs/security.md, "To verify": R names S, the scheme and
// algorithm are v2's, and Ed25519 verifies over the RFC 8785 bytes of the manifest.
func verifySignature(signed map[string]any, signature map[string]any, key ed25519.PublicKey) error {
	data, _ := signed["data"].(map[string]any)
	if signature["signed_event_id"] != signed["id"] || signature["signed_record_id"] != data["record_id"] ||
		fmt.Sprint(signature["signed_version"]) != fmt.Sprint(data["version"]) {
		return fmt.Errorf("it names another event, record or version")
	}
	if signature["scheme"] != schemeV2 || signature["algorithm"] != algorithm || signature["key_id"] != keyID(key) {
		return fmt.Errorf("not scheme v2 with Ed25519 and this key")
	}
	manifest := map[string]any{}
	for _, name := range manifestMembers {
		value, ok := signature[name]
		if !ok {
			return fmt.Errorf("the signature has no %s", name)
		}
		manifest[name] = value
	}
	manifest["signed_event"] = map[string]any{
		"id": signed["id"], "type": signed["type"], "source": signed["source"],
		"subject": signed["subject"], "data": signed["data"], // subject: nil (null) where S has none
	}
	encoded, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	canonical, err := jcs.Transform(encoded)
	if err != nil {
		return fmt.Errorf("RFC 8785: %v", err)
	}
	value, _ := signature["value"].(string)
	raw, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil || !ed25519.Verify(key, canonical, raw) {
		return fmt.Errorf("the Ed25519 signature over the manifest fails")
	}
	return nil
}
