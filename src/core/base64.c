/*
 * base64.c — strict standard base64 (see base64.h).
 */
#include "base64.h"

static const char alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
phic_b64_encoded_len(size_t n)
{
	if (n > (((size_t) -1) / 4) * 3 - 2)
		return 0;
	return ((n + 2) / 3) * 4;
}

size_t
phic_b64_decoded_max(size_t n)
{
	return (n / 4) * 3;
}

void
phic_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t		i = 0;

	for (; i + 3 <= n; i += 3)
	{
		uint32_t	v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8) | in[i + 2];

		*out++ = alphabet[(v >> 18) & 63];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = alphabet[v & 63];
	}
	if (n - i == 1)
	{
		uint32_t	v = (uint32_t) in[i] << 16;

		*out++ = alphabet[(v >> 18) & 63];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	}
	else if (n - i == 2)
	{
		uint32_t	v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8);

		*out++ = alphabet[(v >> 18) & 63];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = '=';
	}
}

/* Value of a symbol of the standard (url = 0) or URL-safe (url = 1) alphabet. */
static int
sym_of(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static int
sym(unsigned char c)
{
	return sym_of(c, 0);
}

phic_status
phic_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
	size_t		i,
				o = 0;

	if (n % 4 != 0)
		return PHIC_ERR_FORMAT;
	for (i = 0; i < n; i += 4)
	{
		int			a = sym((unsigned char) in[i]);
		int			b = sym((unsigned char) in[i + 1]);
		int			c = sym((unsigned char) in[i + 2]);
		int			d = sym((unsigned char) in[i + 3]);
		int			last = (i + 4 == n);

		if (a < 0 || b < 0)
			return PHIC_ERR_FORMAT;
		if (c < 0 || d < 0)
		{
			/* only the final quantum may be padded: "xx==" or "xxx=" */
			if (!last || in[i + 3] != '=')
				return PHIC_ERR_FORMAT;
			if (c < 0)
			{
				if (in[i + 2] != '=' || (b & 15) != 0)
					return PHIC_ERR_FORMAT;
				out[o++] = (uint8_t) ((a << 2) | (b >> 4));
			}
			else
			{
				if ((c & 3) != 0)
					return PHIC_ERR_FORMAT;
				out[o++] = (uint8_t) ((a << 2) | (b >> 4));
				out[o++] = (uint8_t) (((b & 15) << 4) | (c >> 2));
			}
			break;
		}
		out[o++] = (uint8_t) ((a << 2) | (b >> 4));
		out[o++] = (uint8_t) (((b & 15) << 4) | (c >> 2));
		out[o++] = (uint8_t) (((c & 3) << 6) | d);
	}
	*outlen = o;
	return PHIC_OK;
}

int
phic_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		o = 0;

	if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
		return 0;
	for (size_t i = 0; i < n; i++)
	{
		int			v = sym_of((unsigned char) in[i], 1);

		if (v < 0)
			return 0;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (out != NULL)
				out[o] = (uint8_t) (acc >> bits);
			o++;
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)				/* unused bits of the last symbol */
		return 0;
	*outlen = o;
	return 1;
}
