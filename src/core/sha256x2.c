/*
 * sha256x2.c — SHA-256 of two messages at once with the x86 SHA extensions
 * (sha256x2.h).
 *
 * One SHA-256 block is a chain of 32 sha256rnds2 instructions, each waiting
 * for the one before: a single message leaves the unit idle most of the
 * time (OpenSSL's code does just that).  Two independent messages, their
 * rounds interleaved, keep it busy: about 1.5 times the throughput on the
 * AMD and Intel cores measured.  The audit verifier hashes two records at a
 * time this way.
 *
 * Invariants: the results equal FIPS 180-4 SHA-256 (test/unit/test_sha256x2.c
 * checks published digests and compares with OpenSSL's for every length up
 * to several blocks); no
 * input byte is read past its length (the last partial block is copied);
 * nothing is allocated.  Compiled only on x86-64 with GCC or Clang
 * (PHIC_SHA256X2, sha256x2.h); used only when the CPU has the extensions.
 */
#include "sha256x2.h"

#include <string.h>

#ifdef PHIC_SHA256X2

#include <cpuid.h>
#include <immintrin.h>

#define TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static const uint32_t H256[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
};

/* One message's state, in the order sha256rnds2 wants: ABEF and CDGH. */
typedef struct State
{
	__m128i		abef,
				cdgh;
} State;

/* A shuffle that swaps the bytes of each 32-bit word (big-endian words). */
#define BSWAP32 _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)

/* Message words w[4g..4g+3] of block p. */
#define LOAD(p, g) \
	_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) ((p) + 16 * (g))), BSWAP32)

/* a (w[t-16..t-13]) becomes w[t..t+3], from b, c, d: the next three. */
#define SCHEDULE(a, b, c, d) \
	((a) = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((a), (b)), \
											  _mm_alignr_epi8((d), (c), 4)), (d)))

/* Rounds 4g..4g+3 of state s with message words w. */
#define ROUNDS(s, w, g) \
	do { \
		__m128i		m_ = _mm_add_epi32((w), _mm_loadu_si128((const __m128i *) &K256[4 * (g)])); \
		(s).cdgh = _mm_sha256rnds2_epu32((s).cdgh, (s).abef, m_); \
		(s).abef = _mm_sha256rnds2_epu32((s).abef, (s).cdgh, _mm_shuffle_epi32(m_, 0x0E)); \
	} while (0)

/* Group g of both messages: schedule (g >= 4: a from b, c, d), rounds. */
#define GROUP(g, a, b, c, d) \
	do { \
		SCHEDULE(x##a, x##b, x##c, x##d); \
		SCHEDULE(y##a, y##b, y##c, y##d); \
		ROUNDS(s0, x##a, g); \
		ROUNDS(s1, y##a, g); \
	} while (0)

/* One 64-byte block of each message, p into *st0 and q into *st1. */
static TARGET void
compress2(State *st0, const uint8_t *p, State *st1, const uint8_t *q)
{
	State		s0 = *st0,
				s1 = *st1;
	__m128i		x0 = LOAD(p, 0),
				x1 = LOAD(p, 1),
				x2 = LOAD(p, 2),
				x3 = LOAD(p, 3),
				y0 = LOAD(q, 0),
				y1 = LOAD(q, 1),
				y2 = LOAD(q, 2),
				y3 = LOAD(q, 3);

	ROUNDS(s0, x0, 0);
	ROUNDS(s1, y0, 0);
	ROUNDS(s0, x1, 1);
	ROUNDS(s1, y1, 1);
	ROUNDS(s0, x2, 2);
	ROUNDS(s1, y2, 2);
	ROUNDS(s0, x3, 3);
	ROUNDS(s1, y3, 3);
	GROUP(4, 0, 1, 2, 3);
	GROUP(5, 1, 2, 3, 0);
	GROUP(6, 2, 3, 0, 1);
	GROUP(7, 3, 0, 1, 2);
	GROUP(8, 0, 1, 2, 3);
	GROUP(9, 1, 2, 3, 0);
	GROUP(10, 2, 3, 0, 1);
	GROUP(11, 3, 0, 1, 2);
	GROUP(12, 0, 1, 2, 3);
	GROUP(13, 1, 2, 3, 0);
	GROUP(14, 2, 3, 0, 1);
	GROUP(15, 3, 0, 1, 2);
	st0->abef = _mm_add_epi32(st0->abef, s0.abef);
	st0->cdgh = _mm_add_epi32(st0->cdgh, s0.cdgh);
	st1->abef = _mm_add_epi32(st1->abef, s1.abef);
	st1->cdgh = _mm_add_epi32(st1->cdgh, s1.cdgh);
}

static TARGET void
state_init(State *s)
{
	__m128i		dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *) &H256[0]), 0xB1);
	__m128i		efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *) &H256[4]), 0x1B);

	s->abef = _mm_alignr_epi8(dcba, efgh, 8);
	s->cdgh = _mm_blend_epi16(efgh, dcba, 0xF0);
}

/* The digest: words A..H, each big-endian. */
static TARGET void
state_out(const State *s, uint8_t out[32])
{
	__m128i		feba = _mm_shuffle_epi32(s->abef, 0x1B);
	__m128i		dchg = _mm_shuffle_epi32(s->cdgh, 0xB1);

	_mm_storeu_si128((__m128i *) out, _mm_shuffle_epi8(_mm_blend_epi16(feba, dchg, 0xF0), BSWAP32));
	_mm_storeu_si128((__m128i *) (out + 16), _mm_shuffle_epi8(_mm_alignr_epi8(dchg, feba, 8), BSWAP32));
}

/* A message as its blocks: the whole ones in place, the padded end in tail. */
typedef struct Blocks
{
	const uint8_t *data;
	size_t		whole,			/* 64-byte blocks of data */
				count;			/* all blocks, the tail's included */
	uint8_t		tail[128];		/* the last n % 64 bytes, 0x80, zeros, bit length */
} Blocks;

static void
blocks_init(Blocks *b, const uint8_t *data, size_t n)
{
	size_t		rest = n % 64,
				tail = rest + 9 <= 64 ? 64 : 128;
	uint64_t	bits = (uint64_t) n * 8;

	b->data = data;
	b->whole = n / 64;
	b->count = b->whole + tail / 64;
	if (rest > 0)
		memcpy(b->tail, data + 64 * b->whole, rest);
	b->tail[rest] = 0x80;
	memset(b->tail + rest + 1, 0, tail - 8 - rest - 1);
	for (int i = 0; i < 8; i++)
		b->tail[tail - 1 - i] = (uint8_t) (bits >> (8 * i));
}

/* Block i of b, or NULL past its end. */
static const uint8_t *
block_at(const Blocks *b, size_t i)
{
	if (i < b->whole)
		return b->data + 64 * i;
	return i < b->count ? b->tail + 64 * (i - b->whole) : NULL;
}

TARGET void
phic_sha256x2(const uint8_t *d0, size_t n0, uint8_t out0[32],
			  const uint8_t *d1, size_t n1, uint8_t out1[32])
{
	Blocks		b0,
				b1;
	State		s0,
				s1,
				spare;
	size_t		count;

	blocks_init(&b0, d0, n0);
	blocks_init(&b1, d1, n1);
	state_init(&s0);
	state_init(&s1);
	state_init(&spare);
	count = b0.count > b1.count ? b0.count : b1.count;
	for (size_t i = 0; i < count; i++)
	{
		const uint8_t *p = block_at(&b0, i),
				   *q = block_at(&b1, i);

		/* the longer message goes on alone, paired with a spare state */
		if (p == NULL)
			compress2(&spare, q, &s1, q);
		else if (q == NULL)
			compress2(&s0, p, &spare, p);
		else
			compress2(&s0, p, &s1, q);
	}
	state_out(&s0, out0);
	state_out(&s1, out1);
}

bool
phic_sha256x2_available(void)
{
	static int	known = -1;

	if (known < 0)
	{
		unsigned int a,
					b,
					c,
					d;
		bool		sse = __get_cpuid(1, &a, &b, &c, &d) &&
			(c & bit_SSSE3) != 0 && (c & bit_SSE4_1) != 0;

		known = sse && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA) != 0;
	}
	return known == 1;
}

#endif
