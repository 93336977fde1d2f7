package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	formatV3   = "trial-ledger-export/v3"
	leafPrefix = "trial-ledger/entry/v1\n" // docs/auditing.md: the leaf of an entry
	nearby     = 8                         // an unproven payload is tried at up to 8 failing positions each side
)

// exportDoc is the export as read; the entries stay raw until each is checked.
type exportDoc struct {
	Format     string `json:"format"`
	Origin     string `json:"origin"`
	Scope      string `json:"scope"`
	SubjectID  *string
	Checkpoint struct {
		Size int64  `json:"size"`
		Root string `json:"root"`
		Note string `json:"note"`
	} `json:"checkpoint"`
	Keys struct {
		Checkpoint []string `json:"checkpoint"`
		Witness    []string `json:"witness"`
		Record     []string `json:"record"`
	} `json:"keys"`
	Entries []json.RawMessage `json:"entries"`
}

type entry struct {
	Position int64
	Payload  string
	Proof    tlog.RecordProof
	Event    map[string]any // the payload parsed (numbers as json.Number); nil if not an object
}

type checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Text   string
}

func verifyExport(document map[string]json.RawMessage, trust Trust) *Report {
	report := &Report{}
	var doc exportDoc
	whole, _ := json.Marshal(document)
	if err := json.Unmarshal(whole, &doc); err != nil {
		report.fail(0, "format", "a member has the wrong type: %v", err)
		return report
	}
	if doc.Format != formatV3 {
		report.fail(0, "format", "format %q is not read here (%s)", doc.Format, formatV3)
		return report
	}
	if raw, ok := document["subject_id"]; ok && string(raw) != "null" {
		var subject string
		if json.Unmarshal(raw, &subject) != nil {
			report.fail(0, "format", "subject_id is not text")
			return report
		}
		doc.SubjectID = &subject
	}
	if (doc.Scope == "subject") != (doc.SubjectID != nil) || (doc.Scope != "full" && doc.Scope != "subject") {
		report.fail(0, "format", "scope %q with subject_id: full has none, subject has one", doc.Scope)
		return report
	}
	report.Scope, report.Entries = doc.Scope, len(doc.Entries)
	embedded(&doc, &trust, report)
	cp, ok := checkCheckpoint(&doc, trust, report)
	if !ok {
		return report
	}
	entries := checkEntries(&doc, cp, report)
	checkCompleteness(&doc, entries, cp.Size, trust, report)
	checkRecordSignatures(entries, trust, report)
	return report
}

// embedded takes the keys the export carries for each kind the auditor gave none of.
func embedded(doc *exportDoc, trust *Trust, report *Report) {
	if len(trust.Logs) == 0 {
		for _, vkey := range doc.Keys.Checkpoint {
			if v, err := note.NewVerifier(vkey); err == nil {
				trust.Logs = append(trust.Logs, v)
			}
		}
		report.Notes = append(report.Notes, fmt.Sprintf("checkpoint keys: only the export's own (%d); give -vkey", len(trust.Logs)))
	}
	if len(trust.Witnesses) == 0 && len(doc.Keys.Witness) > 0 {
		for _, vkey := range doc.Keys.Witness {
			if w, err := parseWitness(vkey); err == nil {
				trust.Witnesses = append(trust.Witnesses, w)
			}
		}
		report.Notes = append(report.Notes, fmt.Sprintf("witness keys: only the export's own (%d); give -witness", len(trust.Witnesses)))
	}
	if len(trust.Records) == 0 {
		for _, encoded := range doc.Keys.Record {
			raw, err := base64.StdEncoding.Strict().DecodeString(encoded)
			if err == nil && len(raw) == ed25519.PublicKeySize {
				trust.Records[keyID(raw)] = ed25519.PublicKey(raw)
			}
		}
		report.Notes = append(report.Notes, fmt.Sprintf("record keys: only the export's own (%d); give -record-key", len(trust.Records)))
	}
}

// checkCheckpoint reads the note's checkpoint (c2sp.org/tlog-checkpoint), checks the log's
// signature with x/mod's note package and each trusted witness's cosignature.
func checkCheckpoint(doc *exportDoc, trust Trust, report *Report) (checkpoint, bool) {
	text, sigs, err := splitNote(doc.Checkpoint.Note)
	if err != nil {
		report.fail(0, "checkpoint", "the note is malformed: %v", err)
		return checkpoint{}, false
	}
	cp, err := parseCheckpoint(text)
	if err != nil {
		report.fail(0, "checkpoint", "the checkpoint is malformed: %v", err)
		return checkpoint{}, false
	}
	report.Origin, report.Size = cp.Origin, cp.Size
	if doc.Origin != cp.Origin || doc.Checkpoint.Size != cp.Size || doc.Checkpoint.Root != hex.EncodeToString(cp.Root[:]) {
		report.fail(0, "checkpoint_copy", "origin, size or root beside the note differ from the note's")
	}
	if trust.Origin != "" && trust.Origin != cp.Origin {
		report.fail(0, "checkpoint", "it is a checkpoint of %q, not of %q", cp.Origin, trust.Origin)
	}
	var logs []note.Verifier
	for _, v := range trust.Logs {
		if v.Name() == cp.Origin {
			logs = append(logs, v)
		}
	}
	if opened, err := note.Open([]byte(doc.Checkpoint.Note), note.VerifierList(logs...)); err != nil {
		report.fail(0, "checkpoint", "the note's signature: %v", err)
	} else {
		for _, s := range opened.Sigs {
			report.SignedBy = append(report.SignedBy, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
	}
	for _, w := range trust.Witnesses {
		found := false
		for _, s := range sigs {
			if s.Name != w.Name || s.Hash != w.Hash {
				continue
			}
			found = true
			if when, ok := w.verify(text, s); ok {
				report.CosignedBy = append(report.CosignedBy, fmt.Sprintf("%s at %d", w.Name, when))
			} else {
				report.fail(0, "cosignature", "the cosignature of %s does not verify", w.Name)
			}
		}
		if !found {
			report.fail(0, "cosignature_missing", "no cosignature by %s", w.vkey())
		}
	}
	return cp, true
}

// splitNote separates a signed note's text from its signature lines (c2sp.org/signed-note),
// whatever the signatures say, so that every line can be checked on its own.
func splitNote(n string) (string, []note.Signature, error) {
	split := strings.LastIndex(n, "\n\n")
	if split < 0 || !strings.HasSuffix(n, "\n") {
		return "", nil, fmt.Errorf("no blank line before the signatures, or no final newline")
	}
	text := n[:split+1]
	var sigs []note.Signature
	for _, line := range strings.Split(strings.TrimSuffix(n[split+2:], "\n"), "\n") {
		name, encoded, ok := strings.Cut(strings.TrimPrefix(line, "\u2014 "), " ")
		raw, err := base64.StdEncoding.DecodeString(encoded)
		if !strings.HasPrefix(line, "\u2014 ") || !ok || err != nil || len(raw) < 4 {
			return "", nil, fmt.Errorf("a malformed signature line %q", line)
		}
		hash := uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3])
		sigs = append(sigs, note.Signature{Name: name, Hash: hash, Base64: encoded})
	}
	return text, sigs, nil
}

func parseCheckpoint(text string) (checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return checkpoint{}, fmt.Errorf("not origin, size and root on three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("the size %q is not a decimal number", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("the root %q is not a base64 SHA-256 hash", lines[2])
	}
	cp := checkpoint{Origin: lines[0], Size: size, Text: text}
	copy(cp.Root[:], root)
	return cp, nil
}

// checkEntries checks each entry's range, uniqueness, order, inclusion proof and event copy.
func checkEntries(doc *exportDoc, cp checkpoint, report *Report) []entry {
	var entries, unproven []entry
	seen := map[int64]bool{}
	var previous int64
	for index, raw := range doc.Entries {
		e, copyOK, err := readEntry(raw)
		if err != nil {
			report.fail(e.Position, "format", "entries[%d]: %v", index, err)
			continue
		}
		if e.Position < 1 || e.Position > cp.Size {
			report.fail(e.Position, "out_of_range", "the checkpoint holds 1..%d", cp.Size)
			continue
		}
		if seen[e.Position] {
			report.fail(e.Position, "duplicate", "this position appears more than once")
			continue
		}
		if e.Position < previous {
			report.fail(e.Position, "out_of_order", "listed after position %d", previous)
		}
		seen[e.Position] = true
		previous = max(previous, e.Position)
		if proven(e, e.Position, e.Proof, cp) {
			report.ProofsVerified++
		} else {
			unproven = append(unproven, e)
		}
		if e.Event == nil {
			report.fail(e.Position, "payload", "the payload is not a JSON object without duplicate names")
		} else if !copyOK {
			report.fail(e.Position, "event_copy", "the event copy differs from the payload")
		}
		entries = append(entries, e)
	}
	classify(unproven, cp, report)
	return entries
}

func readEntry(raw json.RawMessage) (entry, bool, error) {
	var fields struct {
		Position *int64          `json:"position"`
		Payload  *string         `json:"payload"`
		Event    json.RawMessage `json:"event"`
		Proof    []string        `json:"inclusion_proof"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil || fields.Position == nil || fields.Payload == nil || fields.Event == nil {
		return entry{}, false, fmt.Errorf("an entry has a position, a payload (text), an event and an inclusion_proof")
	}
	e := entry{Position: *fields.Position, Payload: *fields.Payload}
	for _, h := range fields.Proof {
		hash, err := hex.DecodeString(h)
		if err != nil || len(hash) != tlog.HashSize {
			return e, false, fmt.Errorf("the inclusion proof holds %q, not a hex SHA-256 hash", h)
		}
		e.Proof = append(e.Proof, tlog.Hash(hash))
	}
	if noDuplicateNames([]byte(e.Payload)) {
		_ = decode([]byte(e.Payload), &e.Event)
	}
	var payload, copied any
	copyOK := json.Unmarshal([]byte(e.Payload), &payload) == nil && json.Unmarshal(fields.Event, &copied) == nil &&
		reflect.DeepEqual(payload, copied) // numbers compared as IEEE 754 doubles, as JCS reads them
	return e, copyOK, nil
}

func decode(data []byte, into any) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	return decoder.Decode(into)
}

// noDuplicateNames refuses JSON that parsers read differently: a member named twice.
func noDuplicateNames(data []byte) bool {
	decoder := json.NewDecoder(bytes.NewReader(data))
	var walk func() bool
	walk = func() bool {
		token, err := decoder.Token()
		if err != nil {
			return false
		}
		switch token {
		case json.Delim('{'):
			names := map[string]bool{}
			for decoder.More() {
				name, err := decoder.Token()
				if err != nil || names[name.(string)] {
					return false
				}
				names[name.(string)] = true
				if !walk() {
					return false
				}
			}
			_, err = decoder.Token()
			return err == nil
		case json.Delim('['):
			for decoder.More() {
				if !walk() {
					return false
				}
			}
			_, err = decoder.Token()
			return err == nil
		}
		return true
	}
	return walk()
}

// leafHash is the RFC 6962 leaf of the entry at position: SHA-256(0x00 || prefix ||
// position || "\n" || payload), which is tlog.RecordHash of the record bytes.
func leafHash(position int64, payload string) tlog.Hash {
	return tlog.RecordHash([]byte(leafPrefix + strconv.FormatInt(position, 10) + "\n" + payload))
}

func proven(e entry, position int64, proof tlog.RecordProof, cp checkpoint) bool {
	return tlog.CheckRecord(proof, cp.Size, cp.Root, position-1, leafHash(position, e.Payload)) == nil
}

// classify names each unproven entry: moved from another failing position (swapped), or
// altered (its payload, its proof or the root).
func classify(unproven []entry, cp checkpoint, report *Report) {
	for i, e := range unproven {
		moved := int64(0)
		for j := max(0, i-nearby); j < min(len(unproven), i+nearby+1) && moved == 0; j++ {
			other := unproven[j]
			if j != i && (proven(e, other.Position, e.Proof, cp) || proven(e, other.Position, other.Proof, cp)) {
				moved = other.Position
			}
		}
		if moved != 0 {
			report.fail(e.Position, "reordered", "this payload was appended at position %d", moved)
		} else {
			report.fail(e.Position, "inclusion", "its leaf is not proven in the checkpoint of size %d", cp.Size)
		}
	}
}

func checkCompleteness(doc *exportDoc, entries []entry, size int64, trust Trust, report *Report) {
	if doc.Scope == "subject" {
		if trust.Full {
			report.fail(0, "scope", "a full export was asked for; this is %s's", *doc.SubjectID)
		}
		for _, e := range entries {
			if e.Event != nil && e.Event["subject"] != *doc.SubjectID {
				report.fail(e.Position, "scope", "an entry of %v in the export of %s", e.Event["subject"], *doc.SubjectID)
			}
		}
		return
	}
	have := map[int64]bool{}
	for _, e := range entries {
		have[e.Position] = true
	}
	var missing []int64
	for p := int64(1); p <= size; p++ {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	for i := 0; i < len(missing); {
		j := i
		for j+1 < len(missing) && missing[j+1] == missing[j]+1 {
			j++
		}
		report.fail(missing[i], "missing", "positions %d..%d of the checkpoint's 1..%d: not in the export", missing[i], missing[j], size)
		i = j + 1
	}
}
