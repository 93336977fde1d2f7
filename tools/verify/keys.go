package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Trust is what the auditor brings from elsewhere than the export. A kind left empty is
// taken from the export itself, and the report says so.
type Trust struct {
	Logs      []note.Verifier
	Witnesses []Witness
	Records   map[string]ed25519.PublicKey // by key_id
	Origin    string
	Full      bool
}

// Witness is a cosigner's verifier key (c2sp.org/tlog-cosignature: type 0x04), which
// x/mod's note package does not know; its key hash is computed the same way.
type Witness struct {
	Name string
	Hash uint32
	Key  ed25519.PublicKey
}

const cosignatureType = 0x04

func loadTrust(vkeys, witnesses, recordKeys []string, origin string, full bool) (Trust, error) {
	trust := Trust{Records: map[string]ed25519.PublicKey{}, Origin: origin, Full: full}
	for _, vkey := range vkeys {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return trust, fmt.Errorf("-vkey %q: %v", vkey, err)
		}
		trust.Logs = append(trust.Logs, v)
	}
	for _, vkey := range witnesses {
		w, err := parseWitness(vkey)
		if err != nil {
			return trust, fmt.Errorf("-witness %q: %v", vkey, err)
		}
		trust.Witnesses = append(trust.Witnesses, w)
	}
	for _, path := range recordKeys {
		key, err := readPEMKey(path)
		if err != nil {
			return trust, fmt.Errorf("-record-key %s: %v", path, err)
		}
		trust.Records[keyID(key)] = key
	}
	return trust, nil
}

func parseWitness(vkey string) (Witness, error) {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 {
		return Witness{}, fmt.Errorf("not <name>+<hash>+<key>")
	}
	hash, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || len(parts[1]) != 8 {
		return Witness{}, fmt.Errorf("the key hash is not 8 hex digits")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != cosignatureType {
		return Witness{}, fmt.Errorf("not a type 0x04 Ed25519 key")
	}
	w := Witness{Name: parts[0], Hash: uint32(hash), Key: ed25519.PublicKey(raw[1:])}
	if w.Hash != keyHash(w.Name, raw) {
		return Witness{}, fmt.Errorf("the key hash does not match the name and key")
	}
	return w, nil
}

// keyHash is SHA-256(name || "\n" || type || key)[:4], big-endian (c2sp.org/signed-note).
func keyHash(name string, typedKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(typedKey)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

func (w Witness) vkey() string {
	raw := append([]byte{cosignatureType}, w.Key...)
	return fmt.Sprintf("%s+%08x+%s", w.Name, w.Hash, base64.StdEncoding.EncodeToString(raw))
}

// verify checks a cosignature line's signature (key hash || 8-byte time || Ed25519) over
// "cosignature/v1\ntime <t>\n" and the note's text; it returns the time.
func (w Witness) verify(text string, sig note.Signature) (uint64, bool) {
	raw, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(raw) != 4+8+ed25519.SignatureSize || binary.BigEndian.Uint32(raw) != w.Hash {
		return 0, false
	}
	when := binary.BigEndian.Uint64(raw[4:12])
	message := fmt.Sprintf("cosignature/v1\ntime %d\n%s", when, text)
	return when, ed25519.Verify(w.Key, []byte(message), raw[12:])
}

// keyID names a record key as docs/security.md says: the first 16 hex digits of the
// SHA-256 of the raw 32-byte public key.
func keyID(key ed25519.PublicKey) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])[:16]
}

func readPEMKey(path string) (ed25519.PublicKey, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(text)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := parsed.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an Ed25519 public key")
	}
	return key, nil
}
