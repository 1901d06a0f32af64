#!/usr/bin/env bash
# DEVELOPMENT ONLY. Makes the development CA and signing key in dev-keys/ (committed, public):
# anyone can sign a bundle these keys accept. Production boxes carry a different CA; see README.md.
#   firmware/rauc/make-dev-keys.sh           (re)make dev-keys/ (overwrites)
set -euo pipefail
cd "$(dirname "$0")/dev-keys"
days=7300   # 20 years: CI must not start failing because a development key expired.
cat > openssl.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -config openssl.cnf \
    -extensions v3_ca -subj "/O=Docket DEVELOPMENT ONLY/CN=Docket DEVELOPMENT CA - do not ship" \
    -days "$days" -keyout ca.key.pem -out ca.cert.pem
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -config openssl.cnf \
    -subj "/O=Docket DEVELOPMENT ONLY/CN=Docket DEVELOPMENT signing key 1 - do not ship" \
    -keyout development-1.key.pem -out development-1.csr.pem
openssl x509 -req -in development-1.csr.pem -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
    -extfile openssl.cnf -extensions v3_leaf -days "$days" -out development-1.cert.pem
rm -f development-1.csr.pem ca.cert.srl openssl.cnf
chmod 0644 ./*.pem
echo "made DEVELOPMENT ONLY keys in $PWD"
