#!/usr/bin/env bash
# TLS and tokens of offload-serve (our gRPC protocol and KServe v2), with a CA, server and client
# certificates made by openssl in this test's own folder:
#  1. TLS: a transmitter trusting the CA gets every event remote with the local run's digest; a
#     plaintext transmitter at the TLS port fails, told to give the CA;
#  2. mutual TLS: no client certificate, or one from another CA, is refused; the CA's is served;
#  3. tokens (both protocols): none or a wrong one is refused with UNAUTHENTICATED and its reason,
#     a good one is served; a client past its max_inflight gets `busy`; the service logs refusals;
#  4. SIGHUP re-reads the tokens file: the old token is refused, the new one served; a broken
#     file leaves the tokens in use as they were;
#  5. plaintext on an address that is not loopback is refused without --insecure.
#   security.sh OFFLOAD_SERVE OFFLOAD_RUN
set -u
serve=$1
run=$2
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }

# Certificates: a CA with a server (127.0.0.1, localhost) and a client; another CA with a client.
ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/$1.key" -out "$tmp/$1.pem" -days 2 -subj "/CN=$1"; }
leaf() {  # leaf NAME CA SUBJECT_ALT_NAME
  openssl req -newkey rsa:2048 -nodes -keyout "$tmp/$1.key" -out "$tmp/$1.csr" -subj "/CN=$1" &&
    printf 'subjectAltName=%s\n' "$3" >"$tmp/$1.ext" &&
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.pem" -CAkey "$tmp/$2.key" -CAcreateserial -out "$tmp/$1.pem" \
      -days 2 -extfile "$tmp/$1.ext"
}
{ ca ca && ca other && leaf server ca "IP:127.0.0.1,DNS:localhost" && leaf client ca "DNS:client" &&
  leaf stranger other "DNS:stranger"; } >"$tmp/openssl.out" 2>&1 || { cat "$tmp/openssl.out"; fail "openssl"; }
tls=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
mine=(--tls-ca "$tmp/ca.pem" --tls-client-cert "$tmp/client.pem" --tls-client-key "$tmp/client.key")

start_service() {  # start_service NAME ARGS...: offload-serve on free ports; sets $grpc_port, $kserve_port
  local name=$1; shift
  "$serve" --listen 127.0.0.1:0 --kserve 127.0.0.1:0 --port-file "$tmp/$name.port" "$@" >"$tmp/$name.log" 2>&1 &
  service=$!
  pids+=("$service")
  for _ in $(seq 100); do [ -s "$tmp/$name.port" ] && break; sleep 0.1; done  # (written whole, atomically)
  [ -s "$tmp/$name.port" ] || fail "$name: offload-serve wrote no port file"
  grpc_port=$(head -1 "$tmp/$name.port")
  kserve_port=$(tail -1 "$tmp/$name.port")
}
events=(--kernel mlp --events 40 --seed 5 --threads 2 --inflight 4)
tx() {  # tx NAME TRANSPORT PORT ARGS...: one transmitter process, its report in NAME.json
  local name=$1 transport=$2 port=$3; shift 3
  timeout -s KILL 60 "$run" --transport "$transport" --connect "127.0.0.1:$port" "${events[@]}" \
    --handshake-timeout-ms 2000 --json "$tmp/$name.json" "$@" >"$tmp/$name.log" 2>&1
}
field() { python3 -c "import json, sys; d = json.load(open(sys.argv[1]))['total']; print(d.get(sys.argv[2], 0))" "$@"; }
served() {  # served NAME: every event remote, no error, the local digest
  [ "$(field "$tmp/$1.json" status)" = ok ] && [ "$(field "$tmp/$1.json" remote)" = 40 ] &&
    [ "$(field "$tmp/$1.json" digest)" = "$local_digest" ] || fail "$1: not 40 remote results with the local digest"
}
refused() {  # refused NAME TEXT: the strict start failed, saying TEXT
  grep -q "status: FAILED" "$tmp/$1.log" && grep -qF -- "$2" "$tmp/$1.log" || fail "$1: not refused with '$2'"
}

timeout -s KILL 60 "$run" --mode local "${events[@]}" --json "$tmp/local.json" >"$tmp/local.log" 2>&1 ||
  fail "the local run exited $?"
local_digest=$(field "$tmp/local.json" digest)

# 1. TLS
start_service tls "${tls[@]}"
grep -q "(TLS)" "$tmp/tls.log" || fail "the start-up line does not say TLS"
tx tls_grpc grpc "$grpc_port" --tls-ca "$tmp/ca.pem" && served tls_grpc
tx tls_kserve kserve "$kserve_port" --tls-ca "$tmp/ca.pem" && served tls_kserve
tx plain_to_tls grpc "$grpc_port" --require-receivers
refused plain_to_tls "if the receiver serves TLS, give its CA (--tls-ca)"
kill "$service"

# 2. mutual TLS
start_service mtls "${tls[@]}" --tls-client-ca "$tmp/ca.pem"
grep -q "(mutual TLS)" "$tmp/mtls.log" || fail "the start-up line does not say mutual TLS"
tx no_cert grpc "$grpc_port" --tls-ca "$tmp/ca.pem" --require-receivers
refused no_cert "handshake failed"
tx stranger grpc "$grpc_port" --tls-ca "$tmp/ca.pem" --tls-client-cert "$tmp/stranger.pem" \
  --tls-client-key "$tmp/stranger.key" --require-receivers
refused stranger "handshake failed"
tx mtls grpc "$grpc_port" "${mine[@]}" && served mtls
kill "$service"

# 3. tokens, over mutual TLS, both protocols
printf '# clients of this test\nalice aaaaaaaaaaaaaaaaaaaaaaaa\nbob   bbbbbbbbbbbbbbbbbbbbbbbb max_inflight=1  # one at a time\n' \
  >"$tmp/tokens"
echo aaaaaaaaaaaaaaaaaaaaaaaa >"$tmp/alice.token"
echo bbbbbbbbbbbbbbbbbbbbbbbb >"$tmp/bob.token"
echo wrongwrongwrongwrongwrong >"$tmp/wrong.token"
start_service tokens "${tls[@]}" --tls-client-ca "$tmp/ca.pem" --tokens "$tmp/tokens"
grep -q "(mutual TLS, tokens (2 clients))" "$tmp/tokens.log" || fail "the start-up line does not say tokens"
for t in grpc kserve; do
  port=$grpc_port
  [ $t = kserve ] && port=$kserve_port
  tx "${t}_none" $t "$port" "${mine[@]}" --require-receivers
  refused "${t}_none" "no token (send the metadata 'authorization: Bearer TOKEN') (code 16)"
  tx "${t}_wrong" $t "$port" "${mine[@]}" --token-file "$tmp/wrong.token" --require-receivers
  refused "${t}_wrong" "the token is not one of this service's (code 16)"
  tx "${t}_alice" $t "$port" "${mine[@]}" --token-file "$tmp/alice.token" && served "${t}_alice"
  # bob may have one request in flight; 4 are sent at once: the rest are `busy` (then fall back)
  tx "${t}_bob" $t "$port" "${mine[@]}" --token-file "$tmp/bob.token" ||
    fail "${t}_bob exited $?"
  [ "$(field "$tmp/${t}_bob.json" digest)" = "$local_digest" ] || fail "${t}_bob: not the local digest"
  grep -qE "faults: .*busy [1-9]" "$tmp/${t}_bob.log" || fail "${t}_bob: no request was refused busy"
done
grep -q "refused a call from .*no token" "$tmp/tokens.log" || fail "the service did not log a refusal"

# 4. SIGHUP: alice's token changes; a broken file changes nothing
printf 'alice cccccccccccccccccccccccc\nbob bbbbbbbbbbbbbbbbbbbbbbbb\n' >"$tmp/tokens"
kill -HUP "$service"
for _ in $(seq 50); do grep -q "re-read .*: 2 client(s)" "$tmp/tokens.log" && break; sleep 0.1; done
grep -q "re-read .*: 2 client(s)" "$tmp/tokens.log" || fail "SIGHUP: the tokens file was not re-read"
tx old_token grpc "$grpc_port" "${mine[@]}" --token-file "$tmp/alice.token" --require-receivers
refused old_token "the token is not one of this service's"
echo cccccccccccccccccccccccc >"$tmp/alice.token"
tx new_token grpc "$grpc_port" "${mine[@]}" --token-file "$tmp/alice.token" && served new_token
echo "alice short" >"$tmp/tokens"
kill -HUP "$service"
for _ in $(seq 50); do grep -q "the tokens in use stay as they were" "$tmp/tokens.log" && break; sleep 0.1; done
grep -q "too short to be a secret (at least 16); the tokens in use stay as they were" "$tmp/tokens.log" ||
  fail "SIGHUP with a broken file: no error, or not kept"
tx kept_token grpc "$grpc_port" "${mine[@]}" --token-file "$tmp/alice.token" && served kept_token
kill -INT "$service"
wait "$service"
grep -q "stopped by a signal" "$tmp/tokens.log" || fail "offload-serve did not stop at SIGINT"

# 5. plaintext off loopback (refused before it listens)
"$serve" --listen 0.0.0.0:0 >"$tmp/insecure.log" 2>&1 && fail "plaintext on 0.0.0.0 was accepted without --insecure"
grep -q "in plaintext would let anyone on the network read and send requests: give --tls-cert and --tls-key, listen on loopback, or accept it with --insecure" \
  "$tmp/insecure.log" || fail "plaintext on 0.0.0.0: not the expected message"
echo "security: TLS, mutual TLS, tokens on both protocols, limits, SIGHUP and the plaintext rule as expected"
