/*
 * masterkey.c — the key-encryption key: loaded once in the postmaster.
 *
 * Invariants:
 * - The key lives only in one page from phic_secmem_alloc (locked,
 *   MADV_DONTDUMP).  Backends inherit it by fork(); each locks its copy again
 *   on first use because mlock() is not inherited.
 * - Every buffer that held key text is wiped before it is released.
 * - When no key could be loaded, masterkey_problem says why (no secret in
 *   it) and every key-needing function fails with PH003 and that reason; the
 *   server itself still starts, so the database stays available.
 * - Settings hold a path or a command, never the key itself.
 */
#include "postgres.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"

#include "core/hexkey.h"
#include "core/secmem.h"
#include "phi_guard.h"

#define KEY_TEXT_MAX 4096

static uint8 *master_key = NULL;
static pid_t master_key_locked_by = 0;	/* process whose mlock covers it */
static char masterkey_problem[256] = "phi_guard.master_key_file and phi_guard.master_key_command are both empty";

static void
set_problem(const char *fmt, const char *arg)
{
	snprintf(masterkey_problem, sizeof(masterkey_problem), fmt, arg);
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

/* Parse key text into the secure page; sets the problem on failure. */
static bool
install_key(const char *text, ssize_t len, const char *source)
{
	uint8	   *page;
	int			locked = 0;

	page = phic_secmem_alloc(PHIC_KEY_LEN, &locked);
	if (page == NULL)
	{
		set_problem("could not allocate protected memory for the master key%s", "");
		return false;
	}
	if (len < 0 || phic_hexkey_parse(text, (size_t) len, page) != PHIC_OK)
	{
		phic_secmem_free(page, PHIC_KEY_LEN);
		set_problem("%s did not yield exactly 64 hexadecimal characters", source);
		return false;
	}
	if (!locked)
		ereport(WARNING,
				(errmsg("phi_guard: could not lock the master key in memory"),
				 errhint("Raise the memlock limit (ulimit -l) of the server.")));
	master_key = page;
	master_key_locked_by = getpid();
	return true;
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
		set_problem("phi_guard.master_key_file is not a regular file%s", "");
		return;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		set_problem("phi_guard.master_key_file has group or world access%s", "");
		return;
	}
	len = read_all(fd, text);
	close(fd);
	if (len >= KEY_TEXT_MAX)
		len = -1;
	install_key(text, len, "phi_guard.master_key_file");
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
		set_problem("phi_guard.master_key_command printed more than %s bytes", "4096");
	else if (rc != 0)
		set_problem("phi_guard.master_key_command failed (%s)",
					WIFEXITED(rc) ? "non-zero exit status" : "terminated by a signal");
	else
		install_key(text, len, "phi_guard.master_key_command");
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
		set_problem("phi_guard.master_key_file and phi_guard.master_key_command are both set%s", "");
	else if (has_file)
		load_from_file(phi_guard_master_key_file);
	else if (has_cmd)
		load_from_command(phi_guard_master_key_command);

	if (master_key == NULL)
		ereport(WARNING,
				(errmsg("phi_guard: no master key loaded: %s", masterkey_problem),
				 errhint("Encryption functions will fail until the setting is fixed and the server restarted.")));
}

/*
 * The master key, for wrapping and unwrapping data keys.  Fails with PH003
 * and a hint when phi_guard was not preloaded or no key could be loaded.
 */
const uint8 *
masterkey_get(void)
{
	if (!phi_guard_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_PHI_NO_MASTER_KEY),
				 errmsg("phi_guard is not loaded through shared_preload_libraries"),
				 errhint("Add phi_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (master_key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PHI_NO_MASTER_KEY),
				 errmsg("phi_guard has no master key"),
				 errdetail("At server start: %s.", masterkey_problem),
				 errhint("Set phi_guard.master_key_file (a file of mode 0600 holding 64 hex characters) or phi_guard.master_key_command, then restart the server.")));
	if (master_key_locked_by != MyProcPid)
	{
		/* first use in this backend: mlock() is not inherited by fork() */
		(void) mlock(master_key, PHIC_KEY_LEN);
		master_key_locked_by = MyProcPid;
	}
	return master_key;
}
