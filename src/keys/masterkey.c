/*
 * masterkey.c — the key-encryption keys: loaded once in the postmaster.
 *
 * The key file or command output holds one master key (64 hex characters,
 * SPEC §1) or, for master-key rotation, up to MASTERKEY_MAX non-blank lines, each
 * "<64 hex>" or "<name>:<64 hex>".  The first line is the current master
 * key: every new wrap uses it.  Later lines are old keys, accepted only for
 * unwrapping until phi_master_key_rewrap() has moved every data key to the
 * current one (the wrapped format carries no key id, so unwrapping tries the
 * keys in order and the GCM tag decides).
 *
 * Invariants:
 * - The keys live only in one page from phic_secmem_alloc (locked,
 *   MADV_DONTDUMP).  Backends inherit it by fork(); each locks its copy again
 *   on first use because mlock() is not inherited.
 * - Every buffer that held key text is wiped before it is released.
 * - Loading is all or nothing: one malformed line, a repeated key or too
 *   many keys loads no key at all.
 * - When no key could be loaded, masterkey_problem says why (no secret in
 *   it, at most a line number) and every key-needing function fails with
 *   PH003 and that reason; the server itself still starts, so the database
 *   stays available.
 * - Settings hold a path or a command, never the key itself.  A key's
 *   fingerprint (first 4 bytes of SHA-256("phi_guard.mk.fp" || key), in hex)
 *   identifies it without revealing it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"

#include "common/errors.h"
#include "common/format.h"
#include "core/chain.h"
#include "core/hexkey.h"
#include "core/keywrap.h"
#include "core/secmem.h"
#include "keys/keys.h"
#include "keys/masterkey.h"
#include "phi_guard.h"

#define KEY_TEXT_MAX 4096
#define MK_AREA_LEN (MASTERKEY_MAX * PHIC_KEY_LEN)
#define FP_PREFIX "phi_guard.mk.fp"
#define FP_PREFIX_LEN 15

/* the settings (defined in _PG_init): a path or a command, never a key */
char	   *phi_guard_master_key_file = NULL;
char	   *phi_guard_master_key_command = NULL;

static uint8 *master_keys = NULL;	/* MASTERKEY_MAX keys, secure page */
static int	n_master_keys = 0;
static char key_names[MASTERKEY_MAX][MASTERKEY_NAME_MAX + 1];
static char key_fps[MASTERKEY_MAX][9];
static pid_t master_key_locked_by = 0;	/* process whose mlock covers it */
static char masterkey_problem[256] = "phi_guard.master_key_file and phi_guard.master_key_command are both empty";

static void set_problem(const char *fmt,...) pg_attribute_printf(1, 2);

static void
set_problem(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(masterkey_problem, sizeof(masterkey_problem), fmt, ap);
	va_end(ap);
}

/* Read at most KEY_TEXT_MAX bytes of key text from fd into buf; -1 on error. */
static ssize_t
read_all(int fd, char *buf)
{
	size_t		got = 0;

	while (got < KEY_TEXT_MAX)
	{
		ssize_t		n = read(fd, buf + got, KEY_TEXT_MAX - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t) n;
	}
	return (ssize_t) got;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Fingerprint of a key: 8 hex characters, not secret. */
static void
fingerprint(const uint8 *key, char out[9])
{
	uint8		buf[FP_PREFIX_LEN + PHIC_KEY_LEN];
	uint8		hash[PHIC_HASH_LEN];

	memcpy(buf, FP_PREFIX, FP_PREFIX_LEN);
	memcpy(buf + FP_PREFIX_LEN, key, PHIC_KEY_LEN);
	if (phic_sha256(buf, sizeof(buf), hash) != PHIC_OK)
		strlcpy(out, "????????", 9);
	else
		format_hex_into(out, hash, 4);
	phic_wipe(buf, sizeof(buf));
}

/*
 * Parse key text (one key, or one key per non-blank line as described in
 * the banner) into the secure page; sets the problem and loads nothing on
 * failure.  source names the setting in messages.
 */
static bool
install_keys(const char *text, ssize_t len, const char *source)
{
	uint8	   *page;
	int			locked = 0;
	int			n = 0;
	int			lineno = 0;
	int			key_line[MASTERKEY_MAX];
	char		names[MASTERKEY_MAX][MASTERKEY_NAME_MAX + 1];
	size_t		pos = 0;
	int			i;

	if (len < 0)
	{
		set_problem("%s did not yield exactly 64 hexadecimal characters", source);
		return false;
	}
	page = phic_secmem_alloc(MK_AREA_LEN, &locked);
	if (page == NULL)
	{
		set_problem("could not allocate protected memory for the master key");
		return false;
	}
	memset(names, 0, sizeof(names));

	while (pos < (size_t) len)
	{
		size_t		start = pos,
					end,
					colon;
		const char *hex;
		size_t		hexlen;

		while (pos < (size_t) len && text[pos] != '\n')
			pos++;
		end = pos;
		pos++;					/* past the newline */
		lineno++;
		while (start < end && is_blank(text[start]))
			start++;
		while (end > start && is_blank(text[end - 1]))
			end--;
		if (start == end)
			continue;			/* blank line */
		if (n == MASTERKEY_MAX)
		{
			set_problem("%s holds more than %d master keys", source, MASTERKEY_MAX);
			goto fail;
		}
		hex = text + start;
		hexlen = end - start;
		for (colon = start; colon < end && text[colon] != ':'; colon++)
			;
		if (colon < end)
		{
			size_t		ne = colon;

			while (ne > start && is_blank(text[ne - 1]))
				ne--;
			if (ne == start || ne - start > MASTERKEY_NAME_MAX)
			{
				set_problem("%s line %d has an invalid key name: it must be 1 to %d characters",
							source, lineno, MASTERKEY_NAME_MAX);
				goto fail;
			}
			for (i = 0; i < (int) (ne - start); i++)
				if (!is_name_char(text[start + i]))
				{
					set_problem("%s line %d has an invalid key name: only letters, digits, '_', '.' and '-' are allowed",
								source, lineno);
					goto fail;
				}
			memcpy(names[n], text + start, ne - start);
			names[n][ne - start] = '\0';
			hex = text + colon + 1;
			hexlen = end - colon - 1;
		}
		if (phic_hexkey_parse(hex, hexlen, page + n * PHIC_KEY_LEN) != PHIC_OK)
		{
			set_problem("%s line %d did not yield exactly 64 hexadecimal characters",
						source, lineno);
			goto fail;
		}
		for (i = 0; i < n; i++)
		{
			if (memcmp(page + i * PHIC_KEY_LEN, page + n * PHIC_KEY_LEN, PHIC_KEY_LEN) == 0)
			{
				set_problem("%s line %d repeats the master key of line %d",
							source, lineno, key_line[i]);
				goto fail;
			}
			if (names[n][0] && strcmp(names[i], names[n]) == 0)
			{
				set_problem("%s line %d repeats the key name of line %d",
							source, lineno, key_line[i]);
				goto fail;
			}
		}
		key_line[n] = lineno;
		n++;
	}
	if (n == 0)
	{
		set_problem("%s did not yield exactly 64 hexadecimal characters", source);
		goto fail;
	}

	if (!locked)
		ereport(WARNING,
				(errmsg("phi_guard: could not lock the master key in memory"),
				 errhint("Raise the memlock limit (ulimit -l) of the server.")));
	for (i = 0; i < n; i++)
	{
		strlcpy(key_names[i], names[i], sizeof(key_names[i]));
		fingerprint(page + i * PHIC_KEY_LEN, key_fps[i]);
	}
	master_keys = page;
	n_master_keys = n;
	master_key_locked_by = getpid();
	if (n > 1)
		ereport(LOG,
				(errmsg("phi_guard: loaded %d master keys; the current one has fingerprint %s",
						n, key_fps[0])));
	return true;

fail:
	phic_secmem_free(page, MK_AREA_LEN);
	return false;
}

static void
load_from_file(const char *path)
{
	char		text[KEY_TEXT_MAX];
	struct stat st;
	ssize_t		len;
	int			fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		set_problem("could not open phi_guard.master_key_file: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		set_problem("phi_guard.master_key_file is not a regular file");
		return;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		set_problem("phi_guard.master_key_file has group or world access");
		return;
	}
	len = read_all(fd, text);
	close(fd);
	if (len >= KEY_TEXT_MAX)
		len = -1;
	install_keys(text, len, "phi_guard.master_key_file");
	phic_wipe(text, sizeof(text));
}

static void
load_from_command(const char *command)
{
	char		text[KEY_TEXT_MAX];
	ssize_t		len;
	FILE	   *fh;
	int			rc;

	fflush(NULL);
	fh = popen(command, "r");
	if (fh == NULL)
	{
		set_problem("could not run phi_guard.master_key_command: %s", strerror(errno));
		return;
	}
	len = read_all(fileno(fh), text);
	rc = pclose(fh);
	if (len >= KEY_TEXT_MAX)	/* checked first: pclose may have killed it */
		set_problem("phi_guard.master_key_command printed more than %d bytes", KEY_TEXT_MAX);
	else if (rc != 0)
		set_problem("phi_guard.master_key_command failed (%s)",
					WIFEXITED(rc) ? "non-zero exit status" : "terminated by a signal");
	else
		install_keys(text, len, "phi_guard.master_key_command");
	phic_wipe(text, sizeof(text));
}

/*
 * Called from _PG_init in the postmaster.  Never throws: a problem is logged
 * (without secrets) and remembered for the error functions will raise.
 */
void
masterkey_load_at_startup(void)
{
	bool		has_file = phi_guard_master_key_file && phi_guard_master_key_file[0];
	bool		has_cmd = phi_guard_master_key_command && phi_guard_master_key_command[0];

	if (has_file && has_cmd)
		set_problem("phi_guard.master_key_file and phi_guard.master_key_command are both set");
	else if (has_file)
		load_from_file(phi_guard_master_key_file);
	else if (has_cmd)
		load_from_command(phi_guard_master_key_command);

	if (master_keys == NULL)
		ereport(WARNING,
				(errmsg("phi_guard: no master key loaded: %s", masterkey_problem),
				 errhint("Encryption functions will fail until the setting is fixed and the server restarted.")));
}

/* Fail with PH003 unless keys are loaded; lock them in this process. */
static void
require_keys(void)
{
	errors_require_preloaded(NULL);
	if (master_keys == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PHI_NO_MASTER_KEY),
				 errmsg("phi_guard has no master key"),
				 errdetail("At server start: %s.", masterkey_problem),
				 errhint("Set phi_guard.master_key_file (a file of mode 0600 holding 64 hex characters) or phi_guard.master_key_command, then restart the server.")));
	if (master_key_locked_by != MyProcPid)
	{
		/* first use in this backend: mlock() is not inherited by fork() */
		(void) mlock(master_keys, MK_AREA_LEN);
		master_key_locked_by = MyProcPid;
	}
}

/*
 * The current master key (the first one loaded), for every new wrap.
 * Fails with PH003 and a hint when phi_guard was not preloaded or no key
 * could be loaded.
 */
const uint8 *
masterkey_get(void)
{
	require_keys();
	return master_keys;
}

/* How many master keys are loaded (>= 1); PH003 like masterkey_get. */
int
masterkey_count(void)
{
	require_keys();
	return n_master_keys;
}

/*
 * Unwrap a data or index key (SPEC §2 format) with the loaded master keys,
 * current one first.  PHIC_OK with *slot = the 0-based index of the key that
 * opened it; PHIC_ERR_AUTH when none does (dek wiped); another status when
 * OpenSSL fails.  PH003 when no key is loaded.
 */
phic_status
masterkey_unwrap(uint32 key_id, const uint8 *wrapped, uint8 *dek, int *slot)
{
	int			i;

	require_keys();
	for (i = 0; i < n_master_keys; i++)
	{
		phic_status st = phic_key_unwrap(master_keys + i * PHIC_KEY_LEN, key_id,
										 wrapped, dek);

		if (st == PHIC_OK)
		{
			if (slot)
				*slot = i;
			return PHIC_OK;
		}
		if (st != PHIC_ERR_AUTH)
			return st;
	}
	phic_wipe(dek, PHIC_DEK_LEN);
	return PHIC_ERR_AUTH;
}

/* Fingerprint (8 hex characters) of loaded key slot (0-based). */
const char *
masterkey_fingerprint(int slot)
{
	require_keys();
	Assert(slot >= 0 && slot < n_master_keys);
	return key_fps[slot];
}

/* Name given to loaded key slot in the key text, or NULL when none. */
const char *
masterkey_name(int slot)
{
	require_keys();
	Assert(slot >= 0 && slot < n_master_keys);
	return key_names[slot][0] ? key_names[slot] : NULL;
}
