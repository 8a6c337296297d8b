#!/usr/bin/env bash
# Test PKI for `hetal server serve` (mutual TLS) with Debian's openssl: a CA, a server
# certificate for localhost / 127.0.0.1, client certificates (the common name is the tenant),
# and, for refusal tests, a client certificate from another CA.
# Usage: scripts/make_certs.sh DIR [tenant ...]     (default tenants: tenant-a tenant-b)
# Writes DIR/ca.crt, DIR/server.{crt,key}, DIR/<tenant>.{crt,key}, DIR/rogue.{crt,key}.
set -euo pipefail
dir=$1
shift || true
tenants=("$@")
((${#tenants[@]})) || tenants=(tenant-a tenant-b)
mkdir -p "$dir"
cd "$dir"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -days 3650 -subj "$2" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {  # leaf NAME CN CA EXT
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "/CN=hetal test CA"
leaf server localhost ca "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
for t in "${tenants[@]}"; do
  leaf "$t" "$t" ca "extendedKeyUsage=clientAuth"
done
ca rogue-ca "/CN=another CA"
leaf rogue tenant-a rogue-ca "extendedKeyUsage=clientAuth"
rm -f ./*.srl rogue-ca.key
chmod 644 ./*.crt
echo "certificates in $dir: ca.crt, server.{crt,key}, ${tenants[*]/%/.{crt,key\}}, rogue.{crt,key}"
