package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// opensslSeed1 is `openssl pkey` output for the Ed25519 key whose seed is 32 bytes of 0x01
// (testKey(tb, 1)); opensslSeed1ID is the first 16 hex chars of the SHA-256 of its public key,
// computed with openssl too.
const (
	opensslSeed1 = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB
-----END PRIVATE KEY-----
`
	opensslSeed1ID = "34750f98bd59fcfc"
)

func TestKeyIDKnownAnswer(t *testing.T) {
	if got := testKey(t, 1).ID; got != opensslSeed1ID {
		t.Errorf("KeyID = %s, want %s", got, opensslSeed1ID)
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a.ID) {
		t.Errorf("ID = %q, want 16 lowercase hex chars", a.ID)
	}
	if got, want := a.ID, KeyID(a.Private.Public().(ed25519.PublicKey)); got != want {
		t.Errorf("ID = %s, want KeyID(public) = %s", got, want)
	}
	if a.ID == b.ID {
		t.Errorf("two generated keys share ID %s", a.ID)
	}
}

func TestMarshalKeyMatchesOpenSSL(t *testing.T) {
	got, err := MarshalKey(testKey(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(opensslSeed1, string(got)); diff != "" {
		t.Errorf("MarshalKey mismatch (-openssl +got):\n%s", diff)
	}
	if _, err := MarshalKey(Key{ID: "x", Private: make([]byte, 5)}); err == nil {
		t.Errorf("MarshalKey(5-byte key) = nil error, want one")
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	pem2, err := MarshalKey(k2)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	encode := func(typ string, b []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}))
	}
	rsaPKCS8 := encode("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(rsaKey)))
	ecPKCS8 := encode("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(ecKey)))
	ecSEC1 := encode("EC PRIVATE KEY", der(x509.MarshalECPrivateKey(ecKey)))
	rsaPKCS1 := encode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	pubKey := encode("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(k1.Private.Public())))

	tests := []struct {
		name    string
		in      string
		want    []Key
		wantErr string // substring of the error; "" means success
	}{
		{name: "openssl key", in: opensslSeed1, want: []Key{k1}},
		{name: "two keys in order, with text around", in: "current key\n" + opensslSeed1 + "\nretired key\n" + string(pem2) + "\n", want: []Key{k1, k2}},
		{name: "empty", in: "", wantErr: "no PEM"},
		{name: "no PEM at all", in: "MC4CAQAwBQYDK2VwBCIEIAEBAQEB", wantErr: "no PEM"},
		{name: "RSA in PKCS#8", in: rsaPKCS8, wantErr: "RSA keys are not supported"},
		{name: "ECDSA in PKCS#8", in: ecPKCS8, wantErr: "ECDSA keys are not supported"},
		{name: "SEC1 EC key", in: ecSEC1, wantErr: `"EC PRIVATE KEY" is not supported`},
		{name: "PKCS#1 RSA key", in: rsaPKCS1, wantErr: `"RSA PRIVATE KEY" is not supported`},
		{name: "public key", in: pubKey, wantErr: `"PUBLIC KEY" is not supported`},
		{name: "second block truncated", in: opensslSeed1 + string(pem2)[:60], wantErr: "pem block 2: malformed"},
		{name: "garbage DER", in: encode("PRIVATE KEY", []byte("not der")), wantErr: "parse PKCS#8"},
		{name: "same key twice", in: opensslSeed1 + opensslSeed1, wantErr: "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeys error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseKeys mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidKeyID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{id: "34750f98bd59fcfc", want: true},
		{id: "key-2026_01", want: true},
		{id: strings.Repeat("a", maxKeyIDLen), want: true},
		{id: "", want: false},
		{id: strings.Repeat("a", maxKeyIDLen+1), want: false},
		{id: "../../etc/passwd", want: false},
		{id: "a/b", want: false},
		{id: "a.b", want: false},
		{id: "a b", want: false},
		{id: "a\x00b", want: false},
		{id: "ключ", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := validKeyID(tt.id); got != tt.want {
				t.Errorf("validKeyID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}
