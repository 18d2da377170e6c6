package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/kafkaio"
)

// StartSecureKafka is StartSecureCluster and StartMTLSCluster on one
// Apache Kafka node, with a listener each. c.Addr is a SASL_SSL listener
// (PLAIN from the JAAS config, SCRAM-SHA-256 and -512 users created at
// format time; a certificate for 127.0.0.1 and localhost signed by CA,
// given to Kafka as PEM); mtls.Addr is the same but requires a client
// certificate signed by CA. The standard authorizer grants each user its
// ACLs and nothing else. The PLAINTEXT listener the harness and the node's
// own controller traffic use is a super user (User:ANONYMOUS), like an
// inter-broker listener; the services never use it.
func StartSecureKafka(t testing.TB, users ...User) (c, mtls *SecureCluster) {
	t.Helper()
	dir := t.TempDir()
	ca := NewCA(t, dir, "votestream-test-ca")
	keystore := pemKeystore(t, dir, ca.Issue(t, "kafka", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, false))
	c = &SecureCluster{CA: ca, dir: dir, Admin: User{Mechanism: kafkaio.SASLScramSHA512, Name: "admin", Password: RandomPassword(t)}}
	all := append([]User{c.Admin}, users...)
	var plain []string
	var format []string
	for _, u := range all {
		if u.Mechanism == kafkaio.SASLPlain {
			plain = append(plain, fmt.Sprintf("user_%s=%q", u.Name, u.Password))
			continue
		}
		format = append(format, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", u.Mechanism, u.Name, u.Password))
	}
	const scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	props := map[string]string{
		"authorizer.class.name":                      "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                                "User:ANONYMOUS;User:" + c.Admin.Name,
		"sasl.enabled.mechanisms":                    "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.mtls.ssl.client.auth":         "required",
		"listener.name.mtls.ssl.truststore.type":     "PEM",
		"listener.name.mtls.ssl.truststore.location": ca.File,
	}
	for _, l := range []string{"secure", "mtls"} {
		props["listener.name."+l+".ssl.keystore.type"] = "PEM"
		props["listener.name."+l+".ssl.keystore.location"] = keystore
		props["listener.name."+l+".plain.sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required " + strings.Join(plain, " ") + ";"
		props["listener.name."+l+".scram-sha-256.sasl.jaas.config"] = scram
		props["listener.name."+l+".scram-sha-512.sasl.jaas.config"] = scram
	}
	k := StartKafka(t, KafkaOptions{
		FormatArgs: format,
		Props:      props,
		ExtraAddrs: 2,
		Node: func(n *KafkaNode, p map[string]string) {
			secure, mutual := n.Extra[0], n.Extra[1]
			p["listeners"] += ",SECURE://" + secure + ",MTLS://" + mutual
			p["advertised.listeners"] += ",SECURE://" + secure + ",MTLS://" + mutual
			p["listener.security.protocol.map"] += ",SECURE:SASL_SSL,MTLS:SASL_SSL"
		},
	})
	grantACLs(t, k, users)
	c.Addr = k.Nodes[0].Extra[0]
	m := *c
	m.Addr = k.Nodes[0].Extra[1]
	return c, &m
}

// pemKeystore writes a PEM key store (the key, then the certificate) as
// Kafka reads it with ssl.keystore.type=PEM.
func pemKeystore(t testing.TB, dir string, cert tls.Certificate) string {
	t.Helper()
	certFile, keyFile := SaveKeyPair(t, dir, "broker", cert)
	var b []byte
	for _, f := range []string{keyFile, certFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, data...)
	}
	file := filepath.Join(dir, "broker-keystore.pem")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// grantACLs creates each user's ACLs over the PLAINTEXT listener and waits
// until the node's authorizer lists them all.
func grantACLs(t testing.TB, k *Kafka, users []User) {
	t.Helper()
	var entries []kafka.ACLEntry
	for _, u := range users {
		for _, a := range u.ACLs {
			perm := kafka.ACLPermissionTypeAllow
			if !a.Allow {
				perm = kafka.ACLPermissionTypeDeny
			}
			entries = append(entries, kafka.ACLEntry{
				ResourceType: kafka.ResourceType(a.Resource), ResourceName: a.Name,
				ResourcePatternType: kafka.PatternType(a.Pattern), Principal: "User:" + u.Name, Host: "*",
				Operation: kafka.ACLOperationType(a.Operation), PermissionType: perm,
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, done := k.client()
	defer done()
	res, err := c.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: entries})
	if err != nil {
		t.Fatalf("create ACLs: %v", err)
	}
	for i, err := range res.Errors {
		if err != nil {
			t.Fatalf("create ACL %+v: %v", entries[i], err)
		}
	}
	for {
		n, err := countACLs(ctx, c)
		if err == nil && n >= len(entries) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the authorizer lists %d of %d ACLs (last error: %v)", n, len(entries), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countACLs(ctx context.Context, c *kafka.Client) (int, error) {
	res, err := c.DescribeACLs(ctx, &kafka.DescribeACLsRequest{Filter: kafka.ACLFilter{
		ResourceTypeFilter: kafka.ResourceTypeAny, ResourcePatternTypeFilter: kafka.PatternTypeAny,
		Operation: kafka.ACLOperationTypeAny, PermissionType: kafka.ACLPermissionTypeAny,
	}})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range res.Resources {
		n += len(r.ACLs)
	}
	return n, nil
}
