// Command verify checks a Trial Ledger export (trial-ledger-export/v3, docs/auditing.md,
// "The export format") with no database and no network: the checkpoint's C2SP note and its
// witnesses' cosignatures, every entry's RFC 6962 leaf and inclusion proof, completeness of
// a full export, the event copies, and every record signature of scheme v2 (RFC 8785 +
// Ed25519, docs/security.md). It is the project's second implementation of these formats:
// it shares no code with the Python services, only the specifications.
//
//	go run ./tools/verify -vkey <log vkey> [-witness <witness vkey>] [-record-key key.pem] export.json
//
// Exit status: 0 when everything verifies, 1 when something does not (each failure on its
// own line: "FAILED position N: kind: detail"), 2 when the file or a key cannot be read.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// listFlag collects a repeated option.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var vkeys, witnesses, recordKeys listFlag
	flag.Var(&vkeys, "vkey", "a checkpoint verifier key of the ledger (C2SP vkey); repeat for several")
	flag.Var(&witnesses, "witness", "a witness's cosignature verifier key (type 0x04) that must have cosigned; repeat")
	flag.Var(&recordKeys, "record-key", "a record-signature public key (PEM file); repeat")
	origin := flag.String("origin", "", "the ledger the checkpoint must name (default: any)")
	full := flag.Bool("full", false, "refuse anything but a full export")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: verify [options] export.json\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	trusted, err := loadTrust(vkeys, witnesses, recordKeys, *origin, *full)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot verify: %v\n", err)
		os.Exit(2)
	}
	raw, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot verify: %v\n", err)
		os.Exit(2)
	}
	var document map[string]json.RawMessage
	if err := json.Unmarshal(raw, &document); err != nil {
		fmt.Fprintf(os.Stderr, "cannot verify: %s is not a JSON object: %v\n", flag.Arg(0), err)
		os.Exit(2)
	}
	report := verifyExport(document, trusted)
	report.print()
	if !report.ok() {
		os.Exit(1)
	}
}

// Failure is one thing that does not verify; position 0 is the export as a whole.
type Failure struct {
	Position int64
	Kind     string
	Detail   string
}

// Report is what was checked and what failed.
type Report struct {
	Scope          string
	Origin         string
	Size           int64
	Entries        int
	SignedBy       []string
	CosignedBy     []string
	ProofsVerified int
	SignaturesOK   int
	SignaturesV1   int // scheme v1 record signatures: not checked here (docs/auditing.md)
	Notes          []string
	Failures       []Failure
}

func (r *Report) fail(position int64, kind, format string, args ...any) {
	r.Failures = append(r.Failures, Failure{position, kind, fmt.Sprintf(format, args...)})
}

func (r *Report) ok() bool { return len(r.Failures) == 0 }

func (r *Report) print() {
	fmt.Printf("trial-ledger-export, scope %s: %d entries\n", r.Scope, r.Entries)
	fmt.Printf("checkpoint: %s, size %d\n", r.Origin, r.Size)
	for _, name := range r.SignedBy {
		fmt.Printf("  signed by %s\n", name)
	}
	for _, name := range r.CosignedBy {
		fmt.Printf("  cosigned by %s\n", name)
	}
	fmt.Printf("inclusion proofs verified: %d; record signatures verified: %d", r.ProofsVerified, r.SignaturesOK)
	if r.SignaturesV1 > 0 {
		fmt.Printf("; scheme v1 signatures not checked: %d", r.SignaturesV1)
	}
	fmt.Println()
	for _, note := range r.Notes {
		fmt.Printf("note: %s\n", note)
	}
	sort.SliceStable(r.Failures, func(i, j int) bool { return r.Failures[i].Position < r.Failures[j].Position })
	for _, f := range r.Failures {
		where := "export"
		if f.Position != 0 {
			where = fmt.Sprintf("position %d", f.Position)
		}
		fmt.Printf("FAILED %s: %s: %s\n", where, f.Kind, f.Detail)
	}
	if r.ok() {
		fmt.Println("verify: OK")
	} else {
		fmt.Printf("verify: %d failures\n", len(r.Failures))
	}
}
