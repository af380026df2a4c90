package serve

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// FuzzVerifySignature: only the exact HMAC of the body verifies.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("s3cret"), []byte(`{"zen":"x"}`), "sha256=00")
	f.Add([]byte("k"), []byte(""), "sha1=0000000000000000000000000000000000000000")
	f.Add([]byte(""), []byte("body"), "")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !verifySignature(secret, body, good) {
			t.Fatal("the right signature does not verify")
		}
		if header != good && verifySignature(secret, body, header) {
			// Only hex case may differ and still be the same MAC.
			got, _ := hex.DecodeString(header[len("sha256="):])
			if !hmac.Equal(got, mac.Sum(nil)) {
				t.Fatalf("a wrong signature verifies: %q", header)
			}
		}
	})
}
