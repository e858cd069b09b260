/*
 * tcp_auth.h — the authenticated handshake of the TCP transport
 * (docs/wire-protocol.md, "Authenticated handshake"): the frame layouts,
 * the per-connection state, and the pure encoders, decoders and proof of
 * tcp_auth_wire.c, separate from the connection logic of tcp_auth.c so
 * that test/tcp/fuzz_auth.c can drive the decoders directly and
 * test/tcp/test_tcp_auth.c can speak the protocol from raw sockets.
 */
#ifndef TCP_AUTH_H
#define TCP_AUTH_H

#include "seshat/codec.h"
#include "seshat/tcp.h"

#include <stddef.h>
#include <stdint.h>

/* Frame types of the authenticated handshake (the plain hello is 64). */
#define TCP_FRAME_AUTH_HELLO   65 /* connector: hello + its nonce */
#define TCP_FRAME_CHALLENGE    66 /* acceptor: its nonce + its proof */
#define TCP_FRAME_PROOF	       67 /* connector: its proof */

#define TCP_NONCE_SIZE	       32
#define TCP_MAC_SIZE	       32
#define TCP_AUTH_HELLO_PAYLOAD (SR_HELLO_PAYLOAD + TCP_NONCE_SIZE) /* 184 */
#define TCP_CHALLENGE_PAYLOAD  (TCP_NONCE_SIZE + TCP_MAC_SIZE)	   /* 64 */
#define TCP_PROOF_PAYLOAD      TCP_MAC_SIZE			   /* 32 */
#define TCP_AUTH_HELLO_FRAME   (SR_FRAME_HDR_SIZE + TCP_AUTH_HELLO_PAYLOAD)
#define TCP_CHALLENGE_FRAME    (SR_FRAME_HDR_SIZE + TCP_CHALLENGE_PAYLOAD)
#define TCP_PROOF_FRAME	       (SR_FRAME_HDR_SIZE + TCP_PROOF_PAYLOAD)
/* The largest payload a connection accepts before its handshake is
 * done. */
#define TCP_HS_MAX_PAYLOAD     TCP_AUTH_HELLO_PAYLOAD

/* Which side a proof comes from: part of what is MACed, so that a proof
 * made by one side is never accepted as the other's (reflection). */
#define TCP_PROVER_ACCEPTOR    1
#define TCP_PROVER_CONNECTOR   2

/* Secrets: 16 to 1024 bytes. */
#define TCP_SECRET_MIN	       16
#define TCP_SECRET_MAX	       1024

/* Recently seen connector nonces (replay detection). */
#define TCP_SEEN_NONCES	       64

/* Acceptor side, in each accepted connection. */
struct tcp_auth_in {
	int wait_proof; /* challenge sent, proof expected */
	uint8_t hello[TCP_AUTH_HELLO_PAYLOAD]; /* as received */
	uint8_t nonce[TCP_NONCE_SIZE];	       /* ours */
	uint32_t features; /* the auth hello's SR_FEATURE_* bits */
};

/* Connector side, in each peer. */
struct tcp_auth_out {
	int wait_challenge; /* auth hello sent, challenge expected */
	uint8_t nonce[TCP_NONCE_SIZE];
	uint8_t hello[TCP_AUTH_HELLO_PAYLOAD]; /* as sent */
	uint8_t rx[TCP_CHALLENGE_FRAME];
	size_t rx_len;
};

/* Per transport. */
struct tcp_auth {
	uint8_t *key, *key_prev; /* copies; NULL: none */
	size_t key_len, key_prev_len;
	uint8_t seen[TCP_SEEN_NONCES][TCP_NONCE_SIZE];
	unsigned seen_n, seen_next;
	sr_tcp_auth_stats st;
};

/* A connector's handshake state back to "not started" (its connection
 * closed). */
static inline void tcp_auth_out_reset(struct tcp_auth_out *ao)
{
	ao->wait_challenge = 0;
	ao->rx_len = 0;
}

/* ---- decoders (tcp_auth_wire.c: pure; fuzzed) ------------------------ */

/*
 * The header of a frame received before the handshake is done: a hello,
 * an auth hello or a proof (a challenge too when `challenge`, for the
 * connector).  Anything else is SR_EPROTO; a payload above
 * TCP_HS_MAX_PAYLOAD is SR_ETOOBIG; a known type whose length is not
 * its exact size is SR_EPROTO.
 */
int tcp_auth_decode_header(const void *buf, size_t len, int challenge,
			   sr_frame_hdr *h);

/* Decode whole frames (header, CRC, exact size, fields).  0 or
 * SR_EPROTO. */
int tcp_auth_decode_hello(const void *buf, size_t len, sr_hello *h,
			  uint8_t nonce[TCP_NONCE_SIZE]);
int tcp_auth_decode_challenge(const void *buf, size_t len,
			      uint8_t nonce[TCP_NONCE_SIZE],
			      uint8_t mac[TCP_MAC_SIZE]);
int tcp_auth_decode_proof(const void *buf, size_t len,
			  uint8_t mac[TCP_MAC_SIZE]);

/* ---- encoders (tcp_auth_wire.c) ------------------------------------ */

/* 0, or SR_EINVAL if h->addr does not fit with its NUL. */
int tcp_auth_encode_hello(const sr_hello *h,
			  const uint8_t nonce[TCP_NONCE_SIZE],
			  uint8_t out[TCP_AUTH_HELLO_FRAME]);
void tcp_auth_encode_challenge(const uint8_t nonce[TCP_NONCE_SIZE],
			       const uint8_t mac[TCP_MAC_SIZE],
			       uint8_t out[TCP_CHALLENGE_FRAME]);
void tcp_auth_encode_proof(const uint8_t mac[TCP_MAC_SIZE],
			   uint8_t out[TCP_PROOF_FRAME]);

/*
 * The proof a side sends: HMAC-SHA-256 under key of the context string,
 * the prover (TCP_PROVER_*), the auth hello's payload as sent (cluster,
 * both ids, address, the connector's nonce) and the acceptor's nonce.
 */
void tcp_auth_mac(const uint8_t *key, size_t key_len, int prover,
		  const uint8_t hello[TCP_AUTH_HELLO_PAYLOAD],
		  const uint8_t nonce_a[TCP_NONCE_SIZE],
		  uint8_t out[TCP_MAC_SIZE]);

#endif
