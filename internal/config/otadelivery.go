package config

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// OTA delivery settings: S3-compatible package storage, diff packages and
// apps served over the Expo Updates protocol.

func (c *Config) otaDeliveryDefaults() {
	if c.CodePush.DiffCount == 0 {
		c.CodePush.DiffCount = 5
	}
	if c.CodePush.S3.Region == "" {
		c.CodePush.S3.Region = "us-east-1"
	}
	if c.CodePush.S3.PresignTTL == 0 {
		c.CodePush.S3.PresignTTL = Duration(time.Hour)
	}
	for i := range c.Apps {
		o := &c.Apps[i].OTA
		if o.Protocol == "" {
			o.Protocol = "codepush"
		}
		if o.Expo.DistAsset == "" {
			o.Expo.DistAsset = "expo-dist.tar.gz"
		}
		if o.Expo.KeyID == "" {
			o.Expo.KeyID = "main"
		}
	}
}

func (c *Config) validateOTADelivery() error {
	if c.CodePush.DiffCount < -1 || c.CodePush.DiffCount > 50 {
		return fmt.Errorf("codepush.diff_count: %d is not -1 (off) or from 1 to 50", c.CodePush.DiffCount)
	}
	if c.CodePush.Storage == "s3" {
		if err := c.CodePush.S3.validate("codepush.s3"); err != nil {
			return err
		}
	}
	for i, a := range c.Apps {
		p := fmt.Sprintf("apps[%d].ota", i)
		switch a.OTA.Protocol {
		case "codepush", "expo":
		default:
			return fmt.Errorf("%s.protocol: %q is not one of codepush, expo", p, a.OTA.Protocol)
		}
		if err := a.OTA.Expo.validate(p + ".expo"); err != nil {
			return err
		}
	}
	return nil
}

func (s S3) validate(p string) error {
	u, err := url.Parse(s.Endpoint)
	if s.Endpoint == "" {
		return fmt.Errorf("%s.endpoint: required for codepush.storage s3, e.g. https://s3.eu-west-1.amazonaws.com", p)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%s.endpoint: %q is not an http(s) URL without a path", p, s.Endpoint)
	}
	if s.Bucket == "" {
		return fmt.Errorf("%s.bucket: required for codepush.storage s3", p)
	}
	if !bucketName(s.Bucket) {
		return fmt.Errorf("%s.bucket: %q is not a bucket name (3 to 63 lowercase letters, digits, '.' or '-')", p, s.Bucket)
	}
	if strings.HasPrefix(s.Prefix, "/") {
		return fmt.Errorf("%s.prefix: %q must not start with /", p, s.Prefix)
	}
	if !s.AccessKeyID.IsSet() {
		return fmt.Errorf("%s.access_key_id: required for codepush.storage s3 (or access_key_id_file)", p)
	}
	if !s.SecretAccessKey.IsSet() {
		return fmt.Errorf("%s.secret_access_key: required for codepush.storage s3 (or secret_access_key_file)", p)
	}
	if s.PublicBaseURL != "" {
		if err := checkURL(p+".public_base_url", s.PublicBaseURL); err != nil {
			return err
		}
	}
	if d := s.PresignTTL.D(); d < time.Second || d > 7*24*time.Hour {
		return fmt.Errorf("%s.presign_ttl: %s is not from 1s to 168h (SigV4's limit)", p, d)
	}
	return nil
}

func bucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func (e Expo) validate(p string) error {
	if e.Certificate.IsSet() != e.PrivateKey.IsSet() {
		return fmt.Errorf("%s: certificate and private_key go together (code signing needs both)", p)
	}
	if strings.ContainsAny(e.KeyID, "\"\\") {
		return fmt.Errorf("%s.key_id: %q may not contain quotes or backslashes", p, e.KeyID)
	}
	if !e.Certificate.IsSet() {
		return nil
	}
	_, err := ParseExpoSigning(e)
	if err != nil {
		return fmt.Errorf("%s.%w", p, err)
	}
	return nil
}

// ExpoSigning is an app's parsed Expo code-signing material.
type ExpoSigning struct {
	Chain []*x509.Certificate // leaf first
	Key   *rsa.PrivateKey
	KeyID string
}

// ParseExpoSigning parses an Expo section's certificate chain and RSA key and
// checks that the key belongs to the leaf certificate. Errors name the key
// (certificate or private_key) but never its value.
func ParseExpoSigning(e Expo) (*ExpoSigning, error) {
	var chain []*x509.Certificate
	rest := []byte(e.Certificate.Value())
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: not a valid X.509 certificate: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("certificate: no PEM CERTIFICATE block")
	}
	b, _ := pem.Decode([]byte(e.PrivateKey.Value()))
	if b == nil {
		return nil, fmt.Errorf("private_key: no PEM block")
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("private_key: PEM type %q is not an RSA private key", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private_key: cannot parse: %v", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private_key: not an RSA key (Expo signs with rsa-v1_5-sha256)")
	}
	pub, ok := chain[0].PublicKey.(crypto.PublicKey).(*rsa.PublicKey)
	if !ok || !pub.Equal(&rk.PublicKey) {
		return nil, fmt.Errorf("private_key: does not belong to the certificate (the first certificate must be the signing leaf)")
	}
	return &ExpoSigning{Chain: chain, Key: rk, KeyID: e.KeyID}, nil
}
